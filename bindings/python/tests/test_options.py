"""grpcio's options (channel arguments) with their grpcio meaning: each case runs the same
code with grpcio's server and channel and with this package's, and expects the same
outcome (README "Options"). grpc.so_reuseport is in test_binding.py."""

import gzip
import threading
from concurrent import futures

import grpc
import pytest

import grpchelper

MODULES = [grpc, grpchelper]
IDS = ["grpcio", "grpchelper"]
BIG = b"hello " * 2000           # compresses well: grpcio sends it compressed


class Servers:
    def __init__(self):
        self.started = []

    def __call__(self, module, handlers, options=()):
        s = module.server(futures.ThreadPoolExecutor(4), options=list(options))
        s.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.O", handlers),))
        port = s.add_insecure_port("127.0.0.1:0")
        s.start()
        self.started.append(s)
        return "127.0.0.1:%d" % port


@pytest.fixture
def start():
    servers = Servers()
    channels = []

    def run(module, handlers, server_options=(), channel_options=()):
        target = servers(module, handlers, server_options)
        ch = module.insecure_channel(target, options=list(channel_options))
        channels.append(ch)
        return ch

    yield run
    for ch in channels:
        ch.close()
    for s in servers.started:
        s.stop(None)


def unary(fn):
    return grpc.unary_unary_rpc_method_handler(fn)


def echo(request, context):
    return request


def failure(ch, method, request, **kwargs):
    with pytest.raises(grpc.RpcError) as e:
        ch.unary_unary(method)(request, timeout=10, **kwargs)
    return e.value.code(), e.value.details()


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_max_send_message_length(module, start):
    ch = start(module, {"Echo": unary(echo), "Big": unary(lambda r, c: b"y" * 100)},
               server_options=[("grpc.max_send_message_length", 50)],
               channel_options=[("grpc.max_send_message_length", 10)])
    assert ch.unary_unary("/t.O/Echo")(b"x" * 10, timeout=10) == b"x" * 10
    assert failure(ch, "/t.O/Echo", b"x" * 20) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED, "CLIENT: Sent message larger than max (20 vs. 10)")
    assert failure(ch, "/t.O/Big", b"") == (
        grpc.StatusCode.RESOURCE_EXHAUSTED, "SERVER: Sent message larger than max (100 vs. 50)")
    # A streamed request over the limit ends the call the same way.
    with pytest.raises(grpc.RpcError) as e:
        ch.stream_unary("/t.O/Echo")(iter([b"x" * 20]), timeout=10)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_unlimited_send_and_receive(module, start):
    big = b"z" * (5 * 1024 * 1024)       # over the 4 MiB default receive limit
    ch = start(module, {"Echo": unary(echo)},
               server_options=[("grpc.max_receive_message_length", -1),
                               ("grpc.max_send_message_length", -1)],
               channel_options=[("grpc.max_receive_message_length", -1),
                                ("grpc.max_send_message_length", -1)])
    assert ch.unary_unary("/t.O/Echo")(big, timeout=30) == big


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_max_receive_message_length(module, start):
    ch = start(module, {"Echo": unary(echo), "Big": unary(lambda r, c: b"y" * 100)},
               server_options=[("grpc.max_receive_message_length", 50)],
               channel_options=[("grpc.max_receive_message_length", 80)])
    assert failure(ch, "/t.O/Echo", b"x" * 60)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure(ch, "/t.O/Big", b"")[0] == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_server_without_per_message_decompression(module, start):
    seen = []

    def keep(request, context):
        seen.append(request)
        return b"ok"

    ch = start(module, {"Keep": unary(keep)},
               server_options=[("grpc.per_message_decompression", 0)])
    assert ch.unary_unary("/t.O/Keep")(BIG, timeout=10, compression=grpc.Compression.Gzip) == b"ok"
    assert seen[0][:2] == b"\x1f\x8b" and gzip.decompress(seen[0]) == BIG
    # Uncompressed requests are unchanged.
    assert ch.unary_unary("/t.O/Keep")(b"plain", timeout=10) == b"ok" and seen[1] == b"plain"


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_channel_without_per_message_decompression(module, start):
    def compressed(request, context):
        context.set_compression(grpc.Compression.Gzip)
        return BIG

    ch = start(module, {"Big": unary(compressed)},
               channel_options=[("grpc.per_message_decompression", 0)])
    got = ch.unary_unary("/t.O/Big")(b"", timeout=10)
    assert got[:2] == b"\x1f\x8b" and gzip.decompress(got) == BIG


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_default_compression_algorithm(module, start):
    """The channel's and the server's default compression, seen by peers that keep
    messages compressed."""
    seen = []

    def keep(request, context):
        seen.append(request)
        return BIG

    target_ch = start(module, {"Keep": unary(keep)},
                      server_options=[("grpc.per_message_decompression", 0)],
                      channel_options=[("grpc.default_compression_algorithm",
                                        grpc.Compression.Gzip)])
    target_ch.unary_unary("/t.O/Keep")(BIG, timeout=10)
    assert seen[0][:2] == b"\x1f\x8b"
    ch = start(module, {"Keep": unary(keep)},
               server_options=[("grpc.default_compression_algorithm", grpc.Compression.Gzip)],
               channel_options=[("grpc.per_message_decompression", 0)])
    got = ch.unary_unary("/t.O/Keep")(b"", timeout=10)
    assert got[:2] == b"\x1f\x8b" and gzip.decompress(got) == BIG


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_user_agents_and_user_agent_metadata(module, start):
    """primary before and secondary after the library's own user-agent; a user-agent in a
    call's metadata is dropped, as grpcio drops it (also the other keys gRPC sets itself)."""
    seen = []

    def record(request, context):
        seen.append(dict(context.invocation_metadata()))
        return b""

    ch = start(module, {"Record": unary(record)},
               channel_options=[("grpc.primary_user_agent", "first/1"),
                                ("grpc.secondary_user_agent", "last/2")])
    call = ch.unary_unary("/t.O/Record")
    call(b"", timeout=10)
    call(b"", timeout=10, metadata=[("user-agent", "custom/3"), ("te", "x"),
                                    ("content-type", "x"), ("grpc-timeout", "1S"),
                                    ("grpc-encoding", "x"), ("x-kept", "yes")])
    for md in seen:
        ua = md["user-agent"]
        assert ua.startswith("first/1 ") and ua.endswith(" last/2") and "custom" not in ua, ua
    assert seen[1]["x-kept"] == "yes" and seen[1].get("te") is None
    assert seen[1].get("content-type") is None and seen[1].get("grpc-encoding") is None


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_max_concurrent_streams(module, start):
    """One stream per connection: a second call on the channel waits for the first."""
    inside = threading.Semaphore(0)
    release = threading.Event()
    running = []
    lock = threading.Lock()

    def hold(request, context):
        with lock:
            running.append(1)
            now = len(running)
        inside.release()
        assert release.wait(20)
        with lock:
            running.pop()
        return bytes([now])

    ch = start(module, {"Hold": unary(hold)}, server_options=[("grpc.max_concurrent_streams", 1)])
    call = ch.unary_unary("/t.O/Hold")
    first = call.future(b"", timeout=20)
    assert inside.acquire(timeout=20)
    second = call.future(b"", timeout=20)
    # The second call cannot reach the server while the first holds the one stream.
    assert not inside.acquire(timeout=0.5)
    release.set()
    assert first.result() == b"\x01" and second.result() == b"\x01"


def test_worker_share_and_wait_are_the_librarys_own_options():
    """grpchelper.max_workers_per_connection / grpchelper.worker_wait_timeout_ms (no grpcio
    equivalent): a connection's calls beyond its share wait, and past the wait end
    RESOURCE_EXHAUSTED without their handler having run; another connection is served."""
    release = threading.Event()
    holding = threading.Event()
    ran = []

    def hold(request, context):
        ran.append(request)
        holding.set()
        release.wait(10)
        return request

    servers = Servers()
    target = servers(grpchelper, {"Hold": unary(hold), "Echo": unary(echo)},
                     options=[("grpchelper.max_workers_per_connection", 1),
                              ("grpchelper.worker_wait_timeout_ms", 300)])
    ch = grpchelper.insecure_channel(target)
    other = grpchelper.insecure_channel(target)
    try:
        held = ch.unary_unary("/t.O/Hold").future(b"first", timeout=10)
        assert holding.wait(10)
        # The connection's one worker is held: its next call waits, then is refused.
        code, details = failure(ch, "/t.O/Hold", b"second")
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "no worker free for this call within 0.3 s" in details
        assert ran == [b"first"]
        # Another connection has a worker of its own.
        assert other.unary_unary("/t.O/Echo")(b"x", timeout=10) == b"x"
        release.set()
        assert held.result() == b"first"
    finally:
        release.set()
        ch.close()
        other.close()
        for s in servers.started:
            s.stop(None)
