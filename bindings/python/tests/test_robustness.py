"""Races, lifecycles and grpcio parity of edge cases (regressions found in review).

Every wait is bounded (BOUND seconds, reached only on failure); nothing sleeps to
synchronise. Servers listen on port 0; everything is stopped / closed at teardown.
"""

import gc
import os
import subprocess
import sys
import textwrap
import threading
from concurrent import futures

import grpc
import pytest

import grpchelper
from _util import bytes_handlers
from grpchelper import _ffi

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)  # bindings/python
BOUND = 10


def in_thread(fn):
    """Runs fn() on a thread; returns a function that joins it (BOUND) and returns
    ("ok", result) / ("raised", exception), or fails the test if fn() is still running."""
    out = {}

    def run():
        try:
            out["r"] = ("ok", fn())
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out["r"] = ("raised", e)

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join():
        t.join(BOUND)
        assert not t.is_alive(), "the call did not return within %s s" % BOUND
        return out["r"]
    return join


# --- the channel: close() racing with calls ----------------------------------------

def echo(req, ctx):
    return req


def two(req, ctx):
    yield req
    yield req


def collect(it, ctx):
    return b"".join(it)


def each(it, ctx):
    for r in it:
        yield r


ECHO = bytes_handlers(E=grpc.unary_unary_rpc_method_handler(echo),
                S=grpc.unary_stream_rpc_method_handler(two),
                C=grpc.stream_unary_rpc_method_handler(collect),
                B=grpc.stream_stream_rpc_method_handler(each))

PATTERN_CALLS = {
    "unary": lambda ch, md: ch.unary_unary("/t.T/E")(b"x", timeout=BOUND, metadata=md),
    "unary-future": lambda ch, md: ch.unary_unary("/t.T/E").future(
        b"x", timeout=BOUND, metadata=md).result(BOUND),
    "server-stream": lambda ch, md: list(ch.unary_stream("/t.T/S")(b"x", timeout=BOUND, metadata=md)),
    "client-stream": lambda ch, md: ch.stream_unary("/t.T/C")(iter([b"x"]), timeout=BOUND, metadata=md),
    "client-stream-future": lambda ch, md: ch.stream_unary("/t.T/C").future(
        iter([b"x"]), timeout=BOUND, metadata=md).result(BOUND),
    "bidi": lambda ch, md: list(ch.stream_stream("/t.T/B")(iter([b"x"]), timeout=BOUND, metadata=md)),
}


@pytest.mark.parametrize("pattern", sorted(PATTERN_CALLS))
def test_close_during_call_setup_never_starts_a_call_on_a_freed_channel(serve, pattern):
    """close() while a call is being set up (here: from the iteration of its metadata,
    which runs between gh_call_new and the start). The library never fails a call started
    after gh_channel_free on a channel that had connected — it waits forever, deadline
    included — so the binding must not start it: the call ends (ValueError: closed channel)
    instead of hanging."""
    s, target = serve(ECHO)
    ch = grpchelper.insecure_channel(target)
    try:
        assert ch.unary_unary("/t.T/E")(b"warm", timeout=BOUND) == b"warm"  # connected

        def metadata():
            ch.close()
            yield ("k", "v")

        result = in_thread(lambda: PATTERN_CALLS[pattern](ch, metadata()))()
        assert result[0] == "raised", result
        e = result[1]
        assert isinstance(e, ValueError) or (
            isinstance(e, grpc.RpcError) and e.code() == grpc.StatusCode.CANCELLED), repr(e)
    finally:
        ch.close()


def test_close_while_calls_start_in_other_threads(serve):
    """Threads keep making calls of every pattern while the channel is closed under them:
    every call ends (OK, CANCELLED, or ValueError for a closed channel) within the bound,
    and nothing else is raised."""
    s, target = serve(ECHO)
    for _ in range(10):
        ch = grpchelper.insecure_channel(target)
        assert ch.unary_unary("/t.T/E")(b"warm", timeout=BOUND) == b"warm"
        stop = threading.Event()
        flowing = threading.Event()
        unexpected = []
        ok_calls = []

        def worker():
            while not stop.is_set():
                for name, call in sorted(PATTERN_CALLS.items()):
                    try:
                        call(ch, None)
                        ok_calls.append(name)
                        if len(ok_calls) >= 8:
                            flowing.set()
                    except ValueError:
                        return  # closed
                    except grpc.RpcError as e:
                        if e.code() != grpc.StatusCode.CANCELLED:
                            unexpected.append(e)
                    except Exception as e:  # noqa: BLE001 - reported below
                        unexpected.append(e)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        assert flowing.wait(BOUND), unexpected
        ch.close()
        stop.set()
        for t in threads:
            t.join(BOUND)
        assert not any(t.is_alive() for t in threads), "a call hung after close()"
        assert unexpected == []


def test_close_cancels_calls_in_flight(serve):
    release = threading.Event()
    entered = threading.Semaphore(0)

    def hold(req, ctx):
        entered.release()
        release.wait(BOUND)
        return req

    def hold_stream(req, ctx):
        yield req
        entered.release()
        release.wait(BOUND)

    s, target = serve(bytes_handlers(H=grpc.unary_unary_rpc_method_handler(hold),
                               HS=grpc.unary_stream_rpc_method_handler(hold_stream)))
    ch = grpchelper.insecure_channel(target)
    try:
        blocking = in_thread(lambda: ch.unary_unary("/t.T/H")(b"b", timeout=BOUND))
        stream = in_thread(lambda: list(ch.unary_stream("/t.T/HS")(b"s", timeout=BOUND)))
        fut = ch.unary_unary("/t.T/H").future(b"f", timeout=BOUND)
        for _ in range(3):
            assert entered.acquire(timeout=BOUND)
        ch.close()
        for join in (blocking, stream):
            kind, e = join()
            assert kind == "raised" and e.code() == grpc.StatusCode.CANCELLED, (kind, e)
        assert fut.exception(BOUND).code() == grpc.StatusCode.CANCELLED
    finally:
        release.set()


# --- the client: interpreter exit with calls in use on other threads -----------------

EXIT_SCRIPT = """
    import threading, grpc, grpchelper

    def stream(req, ctx):
        while ctx.is_active():
            yield b"x"
    def hold(req, ctx):
        ended = threading.Event()
        ctx.add_callback(ended.set)
        ended.wait()                    # until the exit's free cancels the call
        return req
    def collect(it, ctx):
        return b"".join(it)

    s = grpchelper.server(8, handlers=(grpc.method_handlers_generic_handler("t.T", {
        "S": grpc.unary_stream_rpc_method_handler(stream),
        "H": grpc.unary_unary_rpc_method_handler(hold),
        "C": grpc.stream_unary_rpc_method_handler(collect)}),))
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    ch = grpchelper.insecure_channel("127.0.0.1:%d" % port)
    busy = threading.Semaphore(0)

    def reader():                       # blocked in gh_call_recv at exit
        for i, _ in enumerate(ch.unary_stream("/t.T/S")(b"")):
            if i == 0:
                busy.release()
    def blocking():                     # blocked in gh_call_recv / gh_call_wait at exit
        busy.release()
        ch.unary_unary("/t.T/H")(b"")
    def requests():                     # the sender blocked in gh_call_send at exit
        busy.release()
        while True:
            yield b"x" * 65536

    for fn in (reader, blocking, reader, blocking):
        threading.Thread(target=fn, daemon=True).start()
    waiting = ch.unary_stream("/t.T/S")(b"")
    waiting.add_done_callback(lambda call: None)  # a thread blocked in gh_call_wait
    future = ch.stream_unary("/t.T/C").future(requests())
    for _ in range(5):
        assert busy.acquire(timeout=10)
    print("exiting", flush=True)
"""


def test_interpreter_exit_with_calls_blocked_in_other_threads():
    """At exit the finalizers run while daemon threads are still inside gh_call_recv,
    gh_call_wait and gh_call_send; freeing those calls under them crashed the process
    (SIGSEGV). Calls are not freed at exit; the channel and the server are."""
    for _ in range(4):
        r = subprocess.run([sys.executable, "-c", textwrap.dedent(EXIT_SCRIPT)], cwd=PKG_ROOT,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
        assert r.stdout.strip() == "exiting"


# --- the client: what grpcio reports ------------------------------------------------

def test_stream_unary_future_with_a_non_iterable_ends_the_call(serve, channels):
    """A request "iterator" that is not iterable: as grpcio, the call ends UNKNOWN
    "Exception iterating requests!" (it raised TypeError after the call had started and
    left it open, its handler waiting for requests until the channel closed)."""
    s, target = serve(ECHO)
    ch = channels(target)
    fut = ch.stream_unary("/t.T/C").future(5)  # no deadline: an open call would stay open
    e = fut.exception(BOUND)
    assert e.code() == grpc.StatusCode.UNKNOWN
    assert e.details() == "Exception iterating requests!"
    with pytest.raises(grpc.RpcError) as blocking:
        ch.stream_unary("/t.T/C")(5)
    assert blocking.value.code() == grpc.StatusCode.UNKNOWN
    assert list(ch.stream_stream("/t.T/B")([b"a", b"b"], timeout=BOUND)) == [b"a", b"b"]


def test_unary_ok_without_a_response_is_internal(serve, channels):
    """A server that ends a unary call OK without a message (here grpcio serving the
    method as server-streaming): every unary path reports INTERNAL; the blocking call
    raised an RpcError whose code() was OK."""
    s, target = serve(bytes_handlers(Z=grpc.unary_stream_rpc_method_handler(lambda r, c: iter(()))),
                      kind="grpcio")
    ch = channels(target)
    for call in (lambda: ch.unary_unary("/t.T/Z")(b"", timeout=BOUND),
                 lambda: ch.unary_unary("/t.T/Z").with_call(b"", timeout=BOUND),
                 lambda: ch.unary_unary("/t.T/Z").future(b"", timeout=BOUND).result(BOUND),
                 lambda: ch.stream_unary("/t.T/Z")(iter([b""]), timeout=BOUND)):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.INTERNAL
        assert e.value.details() == "no response message for a unary call"


@pytest.mark.parametrize("kind", ["grpcio", "grpchelper"])
def test_cancel_details_and_outcome(serve, channels, kind):
    release = threading.Event()

    def hold(req, ctx):
        release.wait(BOUND)
        return req

    def stream(req, ctx):
        yield req
        release.wait(BOUND)

    s, target = serve(bytes_handlers(H=grpc.unary_unary_rpc_method_handler(hold),
                               S=grpc.unary_stream_rpc_method_handler(stream)))
    ch = channels(target, kind=kind)
    try:
        fut = ch.unary_unary("/t.T/H").future(b"", timeout=BOUND)
        assert fut.cancel() is True
        assert fut.cancelled() and fut.code() == grpc.StatusCode.CANCELLED
        assert fut.details() == "Locally cancelled by application!"
        with pytest.raises(grpc.FutureCancelledError):
            fut.result(BOUND)
        it = ch.unary_stream("/t.T/S")(b"x", timeout=BOUND)
        assert next(it) == b"x"
        assert it.cancel() is True
        with pytest.raises(grpc.RpcError) as e:
            next(it)
        assert e.value.code() == grpc.StatusCode.CANCELLED
        assert it.details() == "Locally cancelled by application!"
        assert it.cancel() is False
    finally:
        release.set()


def test_wait_for_ready_after_a_failed_connect():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ch = grpchelper.insecure_channel("127.0.0.1:%d" % port)
    s = grpchelper.server(2, handlers=(ECHO,))
    try:
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/t.T/E")(b"", timeout=BOUND)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        fut = ch.unary_unary("/t.T/E").future(b"ready", timeout=3, wait_for_ready=True)
        assert s.add_insecure_port("127.0.0.1:%d" % port) == port
        s.start()
        assert fut.result(BOUND) == b"ready"
    finally:
        ch.close()
        s.stop(None).wait(BOUND)


# --- the server: what grpcio reports ------------------------------------------------

def code_99(req, ctx):
    ctx.add_callback(lambda: None)  # a watcher thread waits for the end of the call
    ctx.set_code(99)
    return b"x"


def code_str(req, ctx):
    ctx.set_code("NOT_FOUND")
    ctx.set_details("as a string")


def bad_initial(req, ctx):
    ctx.send_initial_metadata((("Bad Key", "v"),))
    return b"x"


def bad_trailing(req, ctx):
    ctx.set_trailing_metadata((("Bad Key", "v"),))
    return b"x"


SERVER_CASES = {
    # method: (handler, expected code, expected details)
    "Code99": (grpc.unary_unary_rpc_method_handler(code_99), grpc.StatusCode.UNKNOWN, ""),
    "CodeStr": (grpc.unary_unary_rpc_method_handler(code_str), grpc.StatusCode.UNKNOWN,
                "as a string"),
    "StreamNone": (grpc.unary_stream_rpc_method_handler(lambda r, c: None),
                   grpc.StatusCode.UNKNOWN,
                   "Exception iterating responses: 'NoneType' object is not an iterator"),
    "StreamInt": (grpc.unary_stream_rpc_method_handler(lambda r, c: 5), grpc.StatusCode.UNKNOWN,
                  "Exception iterating responses: 'int' object is not an iterator"),
    "StreamList": (grpc.unary_stream_rpc_method_handler(lambda r, c: [b"a"]),
                   grpc.StatusCode.UNKNOWN,
                   "Exception iterating responses: 'list' object is not an iterator"),
    "BadInitial": (grpc.unary_unary_rpc_method_handler(bad_initial), grpc.StatusCode.INTERNAL,
                   "Invalid metadata"),
    "BadTrailing": (grpc.unary_unary_rpc_method_handler(bad_trailing), grpc.StatusCode.INTERNAL,
                    "Invalid metadata"),
}


@pytest.mark.parametrize("kind", ["grpcio", "grpchelper"])
def test_server_statuses_as_grpcio(serve, channels, kind):
    """set_code with something that is not a StatusCode (99 hung the call until the client's
    deadline when a callback was registered), streaming handlers that return no iterator
    (answered OK), invalid initial / trailing metadata (UNKNOWN with an exception in the
    handler): all as grpcio."""
    s, target = serve(bytes_handlers(**{m: h for m, (h, _, _) in SERVER_CASES.items()}), kind=kind)
    ch = channels(target, kind="grpcio")
    for m, (h, code, details) in sorted(SERVER_CASES.items()):
        with pytest.raises(grpc.RpcError) as e:
            if h.response_streaming:
                list(ch.unary_stream("/t.T/" + m)(b"", timeout=BOUND))
            else:
                ch.unary_unary("/t.T/" + m)(b"", timeout=BOUND)
        assert (m, e.value.code(), e.value.details()) == (m, code, details)


def test_trailing_metadata_from_a_generator(serve, channels):
    def trailers(req, ctx):
        ctx.set_trailing_metadata((k, v) for k, v in [("x-t", "v")])
        return req

    s, target = serve(bytes_handlers(T=grpc.unary_unary_rpc_method_handler(trailers)))
    _, call = channels(target).unary_unary("/t.T/T").with_call(b"", timeout=BOUND)
    assert ("x-t", "v") in call.trailing_metadata()


# --- the server: lifecycle ------------------------------------------------------------

@pytest.fixture
def started_threads(monkeypatch):
    """start() → the names of the Python threads started from then on (none, once the
    library frees servers on its own threads: no more grpchelper-server-free)."""
    names = []
    real_start = threading.Thread.start

    def record():
        monkeypatch.setattr(threading.Thread, "start",
                            lambda t: (names.append(t.name), real_start(t))[1])
        return names
    return record


def _port_is_free(port):
    import socket
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()


def test_dropping_a_running_server_does_not_block_the_collecting_thread(channels, started_threads,
                                                                       released_on):
    """Garbage collection of a server that was not stopped gives it up with
    gh_server_release, which waits for nothing: the collecting thread goes on (it waited
    for the handler, here until the bound: a deadlock when the handler waits for that
    thread), the call is cancelled (as by stop(0)), and the library frees the server on a
    thread of its own once the handler has returned. No Python thread is started."""
    release = threading.Event()
    entered = threading.Event()
    handler = {}

    def hold(req, ctx):
        entered.set()
        handler["released"] = release.wait(BOUND)  # False: the bound passed first
        return req

    s = grpchelper.server(2, handlers=(bytes_handlers(H=grpc.unary_unary_rpc_method_handler(hold)),))
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    fut = channels("127.0.0.1:%d" % port).unary_unary("/t.T/H").future(b"", timeout=BOUND)
    assert entered.wait(BOUND)
    started = started_threads()
    handle, keys = s._handle, list(s._life.keys)
    del s
    gc.collect()
    assert handle.closed  # given up: the handle lends the pointer no more
    release.set()  # what the handler waits for, set by the collecting thread
    assert fut.exception(BOUND) is not None  # cancelled by the release (as stop(0))
    assert released_on(keys) == {"gh-shutdown"}, "not freed by the library"
    assert handler == {"released": True}, "the collecting thread waited for the handler"
    assert started == []
    _port_is_free(port)


def test_a_server_collected_on_one_of_its_handlers(channels, started_threads, released_on):
    """The finaliser run by a handler of the server (which the server's shutdown waits
    for) waits for nothing: the handler goes on and returns, its call ends (answered or
    cancelled by the release), the library frees the server afterwards, on its own
    thread. No Python thread is started."""
    box = {}
    went_on = threading.Event()

    def drop(req, ctx):
        del box["server"]                         # its last reference
        gc.collect()
        went_on.set()
        return req

    s = grpchelper.server(2, handlers=(bytes_handlers(D=grpc.unary_unary_rpc_method_handler(drop)),))
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    handle, keys = s._handle, list(s._life.keys)
    box["server"] = s
    del s
    started = started_threads()
    try:
        assert channels("127.0.0.1:%d" % port).unary_unary("/t.T/D")(b"x", timeout=BOUND) == b"x"
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.CANCELLED, e
    assert went_on.wait(BOUND)
    assert released_on(keys) == {"gh-shutdown"}, "not freed by the library"
    assert handle.closed and "server" not in box
    assert started == []
    _port_is_free(port)


def test_server_and_channel_are_grpcio_types():
    s = grpchelper.server(1)
    ch = grpchelper.insecure_channel("127.0.0.1:1")
    try:
        assert isinstance(s, grpc.Server)
        assert isinstance(ch, grpc.Channel)
    finally:
        ch.close()
        s.stop(None)


@pytest.mark.parametrize("kind", ["grpcio", "grpchelper"])
def test_stop_before_start_does_nothing(channels, kind):
    s = (grpchelper.server(2) if kind == "grpchelper"
         else grpc.server(futures.ThreadPoolExecutor(2)))
    s.add_generic_rpc_handlers((ECHO,))
    port = s.add_insecure_port("127.0.0.1:0")
    stopped = s.stop(None)
    assert stopped.is_set()
    assert s.wait_for_termination(0) is True  # not terminated: it never ran
    s.start()
    try:
        assert channels("127.0.0.1:%d" % port).unary_unary("/t.T/E")(b"hi", timeout=BOUND) == b"hi"
    finally:
        assert s.stop(None).wait(BOUND)
    assert s.wait_for_termination(BOUND) is False


def _held_server():
    """A started grpchelper server whose /t.T/H handler holds until `release` is set; it
    records in `seen` whether the server's stop event was set when it returned."""
    release, entered, returning = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def hold(req, ctx):
        entered.set()
        seen["released"] = release.wait(BOUND)
        seen["stopped_before_return"] = seen["event"].is_set()
        returning.set()
        return req

    s = grpchelper.server(2, handlers=(bytes_handlers(H=grpc.unary_unary_rpc_method_handler(hold),
                                                      E=grpc.unary_unary_rpc_method_handler(echo)),))
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    return s, "127.0.0.1:%d" % port, release, entered, returning, seen


def _unavailable(channel):
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary("/t.T/E")(b"", timeout=BOUND)
    return e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_stop_returns_at_once_refuses_new_calls_and_starts_no_thread(channels, monkeypatch):
    """stop(grace) returns while a handler is held, the server takes no new call once it
    has returned (on the call's own channel and on a new one), its event is set only after
    the held handler returned, and no Python thread is started on the way: the library's
    shutdown thread runs the grace and sets the event."""
    from grpchelper._native.callbacks import registry
    s, target, release, entered, returning, seen = _held_server()
    ch = channels(target)
    try:
        assert ch.unary_unary("/t.T/E")(b"ok", timeout=BOUND) == b"ok"
        fut = ch.unary_unary("/t.T/H").future(b"held", timeout=BOUND)
        assert entered.wait(BOUND)
        started = []
        real_start = threading.Thread.start
        monkeypatch.setattr(threading.Thread, "start",
                            lambda t: (started.append(t.name), real_start(t)))
        threads = set(threading.enumerate())

        stopped = s.stop(BOUND)
        seen["event"] = stopped
        assert not returning.is_set(), "stop() waited for the held handler"
        assert not stopped.is_set()
        assert _unavailable(ch), "a new call on the open connection was served"
        assert _unavailable(channels(target)), "a new connection was served"
        assert s.stop(0) is stopped                 # a second stop(): the first's event
        assert s.wait_for_termination(0) is True    # not terminated yet
        assert not stopped.is_set()

        release.set()
        assert stopped.wait(BOUND)
        assert seen == {"released": True, "stopped_before_return": False, "event": stopped}
        assert s.wait_for_termination(BOUND) is False
        assert started == [], "stop() started Python threads: %r" % started
        assert not [t for t in set(threading.enumerate()) - threads
                    if not isinstance(t, threading._DummyThread)]
        assert fut.result(BOUND) == b"held"         # the grace let the call finish
        assert s._handle.closed                      # wait_for_termination freed it
        assert registry.count("server-stop") == 0
    finally:
        release.set()
        s.stop(None).wait(BOUND)


def test_a_stopping_server_dropped_by_its_caller_finishes_its_grace(channels, started_threads,
                                                                     released_on):
    """stop(grace) then dropping the server: the grace goes on (as in grpcio), the held
    call completes, the event is set, and the server is freed after: its last reference
    went with on_stopped, on the library's shutdown thread, which gh_server_free would
    wait for; gh_server_release there, and the library frees it on a thread of its own.
    No Python thread is started."""
    s, target, release, entered, returning, seen = _held_server()
    ch = channels(target)
    fut = ch.unary_unary("/t.T/H").future(b"held", timeout=BOUND)
    try:
        assert entered.wait(BOUND)
        started = started_threads()
        seen["event"] = stopped = s.stop(BOUND)
        handle, keys = s._handle, list(s._life.keys)
        del s
        gc.collect()
        assert not handle.closed, "a stopping server was freed (its grace cut short)"
        assert _unavailable(channels(target))
        release.set()
        assert fut.result(BOUND) == b"held"
        assert stopped.wait(BOUND)
        assert seen["stopped_before_return"] is False
        assert handle.closed  # finalised on the shutdown thread, before the event
        assert released_on(keys) == {"gh-shutdown"}, "not freed by the library"
        assert started == []
    finally:
        release.set()


def test_a_handler_may_stop_its_own_server(channels):
    """stop() from a handler of the server: it returns at once (the handler goes on and
    its call completes within the grace), and the event is set once it has returned."""
    box = {}

    def stop_me(req, ctx):
        box["event"] = box["server"].stop(BOUND)
        box["set_in_handler"] = box["event"].is_set()
        return b"stopping"

    s = grpchelper.server(2, handlers=(bytes_handlers(S=grpc.unary_unary_rpc_method_handler(stop_me)),))
    box["server"] = s
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    try:
        ch = channels("127.0.0.1:%d" % port)
        assert ch.unary_unary("/t.T/S")(b"", timeout=BOUND) == b"stopping"
        assert box["event"].wait(BOUND)
        assert box["set_in_handler"] is False
        assert s.wait_for_termination(BOUND) is False
    finally:
        del box["server"]
        s.stop(None).wait(BOUND)


STOPPING_AT_EXIT_SCRIPT = """
    import atexit, threading, grpc, grpchelper

    release, entered = threading.Event(), threading.Event()
    def hold(req, ctx):
        entered.set()
        print("handler released:", release.wait(20), flush=True)
        return req

    s = grpchelper.server(2, handlers=(grpc.method_handlers_generic_handler("t.T", {
        "H": grpc.unary_unary_rpc_method_handler(hold)}),))
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    ch = grpchelper.insecure_channel("127.0.0.1:%d" % port)
    future = ch.unary_unary("/t.T/H").future(b"")
    assert entered.wait(10)
    event = s.stop(30)
    # Runs after the main thread ended and Python's threads were joined, before the
    # finalisers' exit hook (registered earlier, at import): the handler goes on then.
    atexit.register(lambda: (print("exiting", flush=True), release.set()))
"""


def test_interpreter_exit_waits_for_a_stopping_server():
    """The main thread ends while a stop's grace runs a handler, released only once the
    interpreter is exiting: the exit waits for the handler (the server's finaliser at exit
    waits for the shutdown under way, its grace unchanged) and ends cleanly."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(STOPPING_AT_EXIT_SCRIPT)],
                       cwd=PKG_ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert r.stdout.splitlines() == ["exiting", "handler released: True"]
    assert r.stderr == ""


RELEASED_AT_EXIT_SCRIPT = """
    import atexit, gc, threading, time, grpc, grpchelper
    from grpchelper._native.callbacks import registry

    release, entered = threading.Event(), threading.Event()
    def hold(req, ctx):
        entered.set()
        released = release.wait(20)
        time.sleep(0.5)      # not a synchronisation: still running when the exit would go on
        print("handler released:", released, flush=True)
        return req

    s = grpchelper.server(2, handlers=(grpc.method_handlers_generic_handler("t.T", {
        "H": grpc.unary_unary_rpc_method_handler(hold)}),))
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    keys = set(s._life.keys)
    real_release = registry.release
    def reporting_release(key):
        if key in keys:
            with open("/proc/thread-self/comm") as f:
                print("freed on", f.read().strip(), flush=True)
        return real_release(key)
    registry.release = reporting_release

    ch = grpchelper.insecure_channel("127.0.0.1:%d" % port)
    future = ch.unary_unary("/t.T/H").future(b"")
    assert entered.wait(10)
    del s
    gc.collect()             # the finaliser: gh_server_release; the handler still runs
    # Runs after the main thread ended and Python's threads were joined, before the
    # exit hook that waits for released servers (registered earlier, at import).
    atexit.register(lambda: (print("exiting", flush=True), release.set()))
"""


def test_interpreter_exit_waits_for_a_released_server():
    """A server given up with gh_server_release (collected while running) whose handler
    is released only once the interpreter is exiting: the exit waits until the library
    has freed the server (after the handler), as it waited for the binding's own free
    thread before, and ends cleanly."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(RELEASED_AT_EXIT_SCRIPT)],
                       cwd=PKG_ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    # Both registry entries of the server (its path's dispatcher, the other paths' one) are
    # released by the library's free, on its shutdown thread
    assert r.stdout.splitlines() == ["exiting", "handler released: True",
                                     "freed on gh-shutdown", "freed on gh-shutdown"], \
        r.stdout + r.stderr
    assert r.stderr == ""


@pytest.mark.parametrize("kind", ["grpcio", "grpchelper"])
def test_future_callbacks_run_in_the_order_given(serve, channels, kind):
    """add_callback and add_done_callback share one order, as in grpcio (the add_callback
    ones all ran first)."""
    release = threading.Event()

    def hold(req, ctx):
        release.wait(BOUND)
        return req

    s, target = serve(bytes_handlers(H=grpc.unary_unary_rpc_method_handler(hold)))
    fut = channels(target, kind=kind).unary_unary("/t.T/H").future(b"", timeout=BOUND)
    order = []
    late = threading.Event()
    try:
        assert fut.add_callback(lambda: order.append("cb1"))
        fut.add_done_callback(lambda f: order.append("done1"))
        assert fut.add_callback(lambda: order.append("cb2"))
        fut.add_done_callback(lambda f: order.append("done2"))
    finally:
        release.set()
    assert fut.result(BOUND) == b""
    fut.add_done_callback(lambda f: (order.append("late"), late.set()))
    assert late.wait(BOUND)
    assert order == ["cb1", "done1", "cb2", "done2", "late"]


def test_close_while_a_done_callback_starts_a_call(serve):
    """close() waits for queued completion callbacks; one that starts a call on the same
    channel must see it closed, not wait for the lock close() holds (a deadlock)."""
    release = threading.Event()
    s, target = serve(bytes_handlers(H=grpc.unary_unary_rpc_method_handler(
        lambda req, ctx: release.wait(BOUND) and req)))
    ch = grpchelper.insecure_channel(target)
    seen = []

    def on_done(fut):
        try:
            ch.unary_unary("/t.T/H")(b"again", timeout=BOUND)
            seen.append("no error")
        except ValueError as e:
            seen.append(str(e))

    fut = ch.unary_unary("/t.T/H").future(b"x")
    fut.add_done_callback(on_done)
    closer = threading.Thread(target=ch.close, daemon=True)
    closer.start()
    closer.join(BOUND)
    release.set()
    assert not closer.is_alive(), "close() deadlocked with a done callback starting a call"
    assert seen == ["Cannot invoke RPC on closed channel!"]
    assert fut.code() == grpc.StatusCode.CANCELLED
