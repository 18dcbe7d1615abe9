"""Keepalive (issue 15), as gRPC's keepalive.md: pings after the keepalive time, a peer
that does not answer within the timeout is dropped (a stopped process is noticed and its
calls fail UNAVAILABLE), the server's ping policy ("too_many_pings") against a bare peer
and against grpcio's client, ours against grpcio's server, idle and maximum-age GOAWAYs."""
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
import pytest

import h2raw as h
from conftest import binary, start_listening, stop_process
from echo_peer import SERVICE

BOUND = 20


def serve(gh, handlers, options):
    """A grpchelper server in this process with `options` (grpcio's names); (server, port)."""
    server = gh.server(futures.ThreadPoolExecutor(max_workers=4), options=options)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.K", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def hold_handler(entered, release, ended=None):
    """A bidi handler that holds its call until `release` (or the call's end: `ended`)."""
    def hold(request_iterator, context):
        entered.set()
        done = ended or threading.Event()
        context.add_callback(done.set)
        while not release.is_set() and not done.is_set():
            release.wait(0.05)
        return iter(())
    return grpc.stream_stream_rpc_method_handler(hold)


def test_the_server_pings_and_drops_a_peer_that_does_not_answer(grpchelper_module):
    server, port = serve(grpchelper_module, {}, [("grpc.keepalive_time_ms", 200),
                                                 ("grpc.keepalive_timeout_ms", 300),
                                                 ("grpc.keepalive_permit_without_calls", 1)])
    try:
        # A peer that does not answer is closed once the timeout has passed.
        bad = h.Peer(port)
        bad.handshake()
        for f in bad.frames_until(lambda f: f[0] == h.PING and not f[1] & h.ACK):
            pass
        pinged = time.monotonic()
        bad.drain_to_close()
        assert time.monotonic() - pinged >= 0.25
        assert bad.closed
        # One that answers stays: three PINGs answered, then it is served a PING of its own.
        good = h.Peer(port)
        good.handshake()
        for _ in range(3):
            ping = next(f for f in good.frames_until(lambda f: f[0] == h.PING and not f[1] & h.ACK)
                        if f[0] == h.PING)
            assert ping[3] == b"keepaliv"
            good.send(h.frame(h.PING, h.ACK, 0, ping[3]))
        good.send(h.frame(h.PING, 0, 0, b"mine0001"))
        ack = next(f for f in good.frames_until(lambda f: f[0] == h.PING and f[1] & h.ACK)
                   if f[0] == h.PING and f[1] & h.ACK)
        assert ack[3] == b"mine0001"
        good.close()
        bad.close()
    finally:
        server.stop(None)


def test_a_channel_notices_a_stopped_server(grpchelper_module):
    """The server process is stopped (SIGSTOP): its socket stays open but nothing answers.
    The channel's keepalive PING goes unanswered, and the call in flight ends UNAVAILABLE
    within keepalive time + timeout."""
    gh = grpchelper_module
    proc, port = start_listening([binary("echo-server"), "0"])
    ch = gh.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.keepalive_time_ms", 200),
                                                          ("grpc.keepalive_timeout_ms", 500)])
    try:
        requests = iter_until()
        call = ch.stream_stream(f"/{SERVICE}/Bidi")(requests, timeout=BOUND)
        requests.put(b"one")
        assert next(call) == b"one"
        proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            next(call)
        elapsed = time.monotonic() - stopped
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "keepalive ping not answered within 0.5 s" in e.value.details()
        assert 0.5 <= elapsed < 5, elapsed
        requests.close()
    finally:
        ch.close()
        proc.send_signal(signal.SIGCONT)
        stop_process(proc)


class iter_until:
    """A request iterator fed by the test: put() adds a message, close() ends it."""

    def __init__(self):
        self.cond = threading.Condition()
        self.items = []
        self.done = False

    def put(self, item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def close(self):
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def __iter__(self):
        return self

    def __next__(self):
        with self.cond:
            while not self.items and not self.done:
                self.cond.wait()
            if self.items:
                return self.items.pop(0)
            raise StopIteration


CLIENT = """
import sys, grpc
ch = grpc.insecure_channel(sys.argv[1])
def requests():
    yield b"hello"
    while True:
        import time; time.sleep(3600)
call = ch.stream_stream("/t.K/Hold")(requests(), timeout=60)
print("ready", flush=True)
for _ in call:
    pass
"""


def test_the_server_notices_a_stopped_client(grpchelper_module):
    """A grpcio client process opens a call and is stopped: the server's keepalive PING
    goes unanswered, the connection is dropped and the handler's call is cancelled."""
    entered, release = threading.Event(), threading.Event()
    cancelled = threading.Event()

    def hold(request_iterator, context):
        context.add_callback(cancelled.set)
        entered.set()
        for _ in request_iterator:
            pass
        return iter(())

    server, port = serve(grpchelper_module, {"Hold": grpc.stream_stream_rpc_method_handler(hold)},
                         [("grpc.keepalive_time_ms", 200), ("grpc.keepalive_timeout_ms", 500)])
    client = subprocess.Popen([sys.executable, "-c", CLIENT, f"127.0.0.1:{port}"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "ready"
        assert entered.wait(BOUND)
        client.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        assert cancelled.wait(BOUND), "the stopped client's call was never cancelled"
        assert time.monotonic() - stopped < 5
    finally:
        release.set()
        client.send_signal(signal.SIGCONT)
        client.kill()
        client.wait()
        client.stdout.close()
        server.stop(None)


def test_too_many_pings_from_a_bare_peer_end_its_connection(grpchelper_module):
    """gRPC's ping policy with its defaults: with no call open a client may PING once in
    2 hours; the third PING too soon is one strike past the two allowed."""
    server, port = serve(grpchelper_module, {}, [])
    try:
        p = h.Peer(port)
        p.handshake()
        for i in range(4):
            p.send(h.frame(h.PING, 0, 0, b"p%07d" % i))
        last, code, debug = p.goaway()
        assert code == h.ENHANCE_YOUR_CALM and debug == b"too_many_pings"
        p.drain_to_close()
        p.close()
    finally:
        server.stop(None)


def test_grpcio_client_pinging_too_often_is_told_too_many_pings(grpchelper_module):
    """grpcio's client with a 100 ms keepalive against our server's default policy: its
    call in flight ends UNAVAILABLE once the server ends the connection (too_many_pings),
    and the handler's call is cancelled."""
    entered, release = threading.Event(), threading.Event()
    server, port = serve(grpchelper_module, {"Hold": hold_handler(entered, release)}, [])
    ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=[
        ("grpc.keepalive_time_ms", 100), ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0)])
    try:
        call = ch.stream_stream("/t.K/Hold")(iter([b"x"]), timeout=BOUND)
        with pytest.raises(grpc.RpcError) as e:
            list(call)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
        assert entered.is_set()
    finally:
        release.set()
        ch.close()
        server.stop(None)


def test_our_channel_pinging_too_often_is_told_by_grpcios_server():
    """The other way round: grpcio's server (default policy) and our channel pinging every
    100 ms during a call: grpcio ends the connection (too_many_pings) and our call says so."""
    import grpchelper as gh
    entered, release = threading.Event(), threading.Event()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("t.K", {"Hold": hold_handler(entered, release)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    ch = gh.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.keepalive_time_ms", 100)])
    try:
        call = ch.stream_stream("/t.K/Hold")(iter([b"x"]), timeout=BOUND)
        with pytest.raises(grpc.RpcError) as e:
            list(call)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
        assert "too many pings" in e.value.details().lower().replace("_", " ")
    finally:
        release.set()
        ch.close()
        server.stop(None)


def test_an_idle_connection_gets_a_goaway(grpchelper_module):
    server, port = serve(grpchelper_module, {}, [("grpc.max_connection_idle_ms", 200)])
    try:
        p = h.Peer(port)
        p.handshake()
        started = time.monotonic()
        last, code, _ = p.goaway()
        assert (last, code) == (2 ** 31 - 1, h.NO_ERROR)
        assert time.monotonic() - started >= 0.15
        p.close()
    finally:
        server.stop(None)


def test_an_old_connection_gets_a_goaway_and_its_calls_the_grace(grpchelper_module):
    entered, release, cancelled = threading.Event(), threading.Event(), threading.Event()
    server, port = serve(grpchelper_module, {"Hold": hold_handler(entered, release, cancelled)},
                         [("grpc.max_connection_age_ms", 300), ("grpc.max_connection_age_grace_ms", 300)])
    try:
        p = h.Peer(port)
        p.handshake()
        p.headers(1, h.grpc_request("/t.K/Hold"))
        assert entered.wait(BOUND)
        last, code, _ = p.goaway()
        assert (last, code) == (2 ** 31 - 1, h.NO_ERROR)
        noticed = time.monotonic()
        # The call in flight is cut when the grace is over: the connection closes.
        p.drain_to_close()
        assert time.monotonic() - noticed >= 0.2
        assert cancelled.wait(BOUND)
        p.close()
    finally:
        release.set()
        server.stop(None)
