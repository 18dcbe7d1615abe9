"""The native layer's infrastructure: the callback registry (user_data keys → Python
objects) and the native-handle class."""

import ctypes
import gc
import sys
import threading
import time
import weakref

import grpc
import pytest

import grpchelper
from _util import bytes_handlers
from grpchelper._native import ffi
from grpchelper._native.callbacks import CallbackRegistry, registry
from grpchelper._native.handle import NativeHandle, live_handles

BOUND = 10


# --- the callback registry ----------------------------------------------------------------

def test_registry_keys_objects_by_kind():
    r = CallbackRegistry()
    a, b = object(), object()
    ka, kb = r.add("one", a), r.add("two", b)
    assert ka >= 1 and kb >= 1 and ka != kb
    assert r.get(ka) is a and r.get(kb) is b
    assert r.snapshot("one") == {ka: a} and r.count() == 2 and r.count("two") == 1
    assert r.release(ka) is a
    assert r.get(ka) is None and r.release(ka) is None
    assert r.snapshot() == {kb: b}


def test_free_user_data_is_a_c_function_that_releases_its_key():
    r = CallbackRegistry()
    key = r.add("k", "value")
    free = ctypes.cast(r.free_user_data, ctypes.c_void_p)        # what the library gets
    ffi.GH_FREE_FN(free.value)(key)                              # called as C calls it
    assert r.get(key) is None
    ffi.GH_FREE_FN(free.value)(None)                             # NULL user_data: nothing


def test_registry_is_thread_safe():
    r = CallbackRegistry()
    keys = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def work(out):
        start.wait(BOUND)
        for i in range(2000):
            out.append(r.add("t", i))
        for k in out[::2]:
            assert r.release(k) is not None

    threads = [threading.Thread(target=work, args=(out,)) for out in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    assert not any(t.is_alive() for t in threads)
    every = [k for out in keys for k in out]
    assert len(set(every)) == len(every) == 16000
    assert set(r.snapshot("t")) == {k for out in keys for k in out[1::2]}


def test_entry_points_let_no_exception_reach_c(monkeypatch):
    r = CallbackRegistry()
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    @r.entry_point(ffi.GH_RPC_HANDLER_FN, on_error=lambda e: 7 if isinstance(e, KeyError) else 8)
    def handler(call, key):
        raise r.get(key)

    @r.entry_point(ffi.GH_FREE_FN)
    def void(key):
        raise RuntimeError("into C?")

    # Called through their C function pointers, as the library calls them.
    as_c = ffi.GH_RPC_HANDLER_FN(ctypes.cast(handler, ctypes.c_void_p).value)
    assert as_c(None, r.add("e", KeyError("k"))) == 7
    assert as_c(None, r.add("e", ValueError("v"))) == 8
    ffi.GH_FREE_FN(ctypes.cast(void, ctypes.c_void_p).value)(None)
    assert unraisable == []
    with pytest.raises(TypeError):                  # an int result needs on_error
        r.entry_point(ffi.GH_RPC_HANDLER_FN)


def test_library_releases_user_data_also_when_the_call_fails():
    """gh_config_new refuses a bad name and releases the validator's key itself."""
    from grpchelper import Config, RpcException
    from grpchelper.api import ConfigValidator

    def validator(name, value):
        pass

    before = registry.count("config-validator")
    with pytest.raises(RpcException):
        Config(name="Bad_name", validator=ConfigValidator.CONFIG_VALID_CUSTOM,
               custom_validator=validator)
    assert validator not in registry.snapshot("config-validator").values()
    assert registry.count("config-validator") == before


# --- the native-handle class --------------------------------------------------------------

class Frees:
    """A free function that records (pointer, thread name) of each call."""

    def __init__(self, order=None):
        self.calls = []
        self.order = order

    def __call__(self, ptr):
        self.calls.append((ptr, threading.current_thread().name))
        if self.order is not None:
            self.order.append(ptr)


def wait_until(predicate):
    """Spins (no sleep) until predicate() holds; fails after BOUND seconds."""
    deadline = time.monotonic() + BOUND
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"


def test_handle_lends_frees_once_and_counts():
    free = Frees()
    h = NativeHandle("test-kind", ctypes.c_void_p(0x1234), free, what="Thing")
    assert live_handles().get("test-kind") == 1
    with h.use() as ptr:
        assert ptr == 0x1234 == h.address
    assert h.close() is True and h.close() is False
    assert free.calls == [(0x1234, threading.current_thread().name)]
    assert h.acquire() is None and h.closed
    with pytest.raises(ValueError, match="Thing is closed"):
        with h.use():
            pass
    assert "test-kind" not in live_handles()


def test_close_waits_for_the_calls_using_the_pointer():
    free = Frees()
    h = NativeHandle("test-kind", 1, free)
    assert h.acquire() == 1                          # a call in progress
    closer = threading.Thread(target=h.close, name="closer")
    closer.start()
    wait_until(lambda: h.closed)                     # no new use from now on
    assert h.acquire() is None
    assert free.calls == []                          # not under the call in progress
    h.release()
    closer.join(BOUND)
    assert free.calls == [(1, "closer")]


def test_deferred_close_leaves_the_free_to_the_last_use():
    free = Frees()
    h = NativeHandle("test-kind", 2, free, deferred=True)
    assert h.acquire() == 2 and h.acquire() == 2
    assert h.close() is True                         # returns at once
    assert free.calls == []
    h.release()
    assert free.calls == []
    user = threading.Thread(target=h.release, name="last-user")
    user.start()
    user.join(BOUND)
    assert free.calls == [(2, "last-user")]
    free2 = Frees()
    idle = NativeHandle("test-kind", 3, free2, deferred=True)
    idle.close()                                     # nobody uses it: freed at once
    assert free2.calls == [(3, threading.current_thread().name)]


def test_closing_a_parent_closes_its_children_first():
    order = []
    parent = NativeHandle("test-kind", 10, Frees(order))
    first = NativeHandle("test-kind", 11, Frees(order), parent=parent)
    second = NativeHandle("test-kind", 12, Frees(order), parent=parent, deferred=True)
    gone = NativeHandle("test-kind", 13, Frees(order), parent=parent)
    gone.close()                                     # closed alone: forgotten by the parent
    borrowed = NativeHandle(None, 14, parent=parent)  # frees nothing
    assert second.acquire() == 12                    # in use: its free waits for the use
    parent.close()
    assert order == [13, 11, 10]                     # children (youngest first), then parent
    assert first.closed and second.closed and borrowed.closed
    second.release()
    assert order == [13, 11, 10, 12]
    with pytest.raises(ValueError, match="handle is closed"):
        NativeHandle("test-kind", 15, Frees(order), parent=parent)
    assert order[-1] == 15                           # a refused child is freed at once
    assert "test-kind" not in live_handles()


def test_a_parent_closed_without_its_children_leaves_them_open():
    """close(False, children=False): the parent stops lending and is freed at once (no
    use), takes no new child; its children stay open until each closes itself (a server
    given up with gh_server_release while its handlers still hold their calls)."""
    order = []
    parent = NativeHandle("test-kind", 40, Frees(order))
    held = parent.new_child(lambda ptr: 41, (), None, what="call", lease_parent=False,
                            deferred=True)
    assert parent.close(False, children=False) is True
    assert order == [40] and parent.closed
    assert not held.closed and held.acquire() == 41  # the handler's call: still usable
    held.release()
    assert parent.new_child(lambda ptr: 42, (), None) is None
    held.release(close=True, wait=True)              # the handler's end closes it
    assert held.closed and not parent._children
    assert "test-kind" not in live_handles()


def test_a_borrowed_use_holds_the_parent():
    free = Frees()
    parent = NativeHandle("test-kind", 20, free)
    view = NativeHandle(None, 21, what="view", parent=parent)
    assert view.acquire() == 21
    closer = threading.Thread(target=parent.close)
    closer.start()
    wait_until(lambda: view.closed)                  # the child is closed first
    assert free.calls == []                          # the parent waits for the view's use
    view.release()
    closer.join(BOUND)
    assert [p for p, _ in free.calls] == [20]


def test_dropping_the_owner_finalises_the_handle():
    class Owner:
        pass

    free = Frees()
    owner = Owner()
    h = NativeHandle("test-kind", 30, free)
    weakref.finalize(owner, h.close)
    ref = weakref.ref(owner)
    del owner
    gc.collect()
    assert ref() is None and free.calls and h.closed


def test_concurrent_uses_and_close_free_exactly_once():
    for _ in range(20):
        free = Frees()
        h = NativeHandle("test-kind", 40, free)
        start = threading.Barrier(9)
        bad = []

        def use():
            start.wait(BOUND)
            for _ in range(500):
                ptr = h.acquire()
                if ptr is None:
                    return
                if free.calls:
                    bad.append("used after free")
                h.release()

        threads = [threading.Thread(target=use) for _ in range(8)]
        for t in threads:
            t.start()
        start.wait(BOUND)
        h.close()
        for t in threads:
            t.join(BOUND)
        assert bad == [] and len(free.calls) == 1


# --- the tree in the package: channels and calls, servers and calls ---------------------

def _stream_handlers(release):
    def three(req, ctx):
        for i in range(3):
            yield b"%d" % i

    def held(req, ctx):
        yield b"first"
        release.wait(BOUND)

    return bytes_handlers(Three=grpc.unary_stream_rpc_method_handler(three),
                          Held=grpc.unary_stream_rpc_method_handler(held))


def test_closing_a_channel_closes_its_calls_first(serve):
    release = threading.Event()
    s, target = serve(_stream_handlers(release))
    ch = grpchelper.insecure_channel(target)
    try:
        ended = ch.unary_stream("/t.T/Three")(b"")
        assert ended.exception(BOUND) is None        # ended; its responses not read yet
        running = ch.unary_stream("/t.T/Held")(b"")
        assert next(running) == b"first"
        idle = ch.unary_stream("/t.T/Held")(b"")      # running, not read
        calls_before = live_handles().get("call", 0)
        ch.close()
        assert ended._call.handle.closed and running._call.handle.closed
        # The idle calls are freed with the channel; the one being read (its iterator
        # uses it) when its reader is done with it: the channel's free has cancelled it.
        assert live_handles().get("call", 0) == calls_before - 2
        for stream in (running, idle):
            with pytest.raises(grpc.RpcError) as e:
                next(stream)
            assert e.value.code() == grpc.StatusCode.CANCELLED
            assert e.value.details() == "channel closed"
        assert live_handles().get("call", 0) == calls_before - 3
        # What an ended call said before the channel closed is kept: its responses not
        # read yet, its status and metadata.
        assert list(ended) == [b"0", b"1", b"2"] and ended.code() == grpc.StatusCode.OK
        assert ended.done() and running.done() and not running.cancel()
    finally:
        release.set()
        ch.close()


def test_a_servicer_context_outliving_its_call_reads_nothing_native(serve, channels):
    kept = []

    def keep(req, ctx):
        ctx.invocation_metadata()
        kept.append(ctx)
        return req

    s, target = serve(bytes_handlers(K=grpc.unary_unary_rpc_method_handler(keep)))
    assert channels(target).unary_unary("/t.T/K")(b"x", timeout=BOUND) == b"x"
    ctx = kept[0]
    # The response can reach the client before the handler's thread has closed the call's
    # handle (just after it finished the call): the stopped server's handlers have returned.
    assert s.stop(None).wait(BOUND)
    assert ctx._handle.closed                        # closed when the handler returned
    assert not ctx.is_active() and ctx.peer() == "" and ctx.time_remaining() == 0.0
    assert any(k == "user-agent" for k, _ in ctx.invocation_metadata())   # read before


class _Marker(object):
    pass


def test_library_threads_keep_their_python_thread_state(serve, channels):
    """A handler's thread-local data lives on between the calls a library thread runs (its
    Python thread state is kept, not made and deleted per callback: grpchelper/_native/
    threadstate.py), and goes once the server's threads have ended."""
    from grpchelper._native import threadstate
    if not threadstate.ENABLED:
        pytest.skip("thread states are not kept on CPython 3.12+ (see threadstate.ENABLED)")
    local = threading.local()
    made = []
    lock = threading.Lock()

    def echo(req, ctx):
        if getattr(local, "marker", None) is None:
            local.marker = _Marker()
            with lock:
                made.append(weakref.ref(local.marker))
        return req

    s, target = serve(bytes_handlers(Echo=grpc.unary_unary_rpc_method_handler(echo)), pool=2)
    ch = channels(target)
    for i in range(50):
        assert ch.unary_unary("/t.T/Echo")(b"%d" % i, timeout=BOUND) == b"%d" % i
    # One per worker thread that ran a call (a thread state per call: 50); the pool has
    # max_workers (2) threads and one in reserve, and a call may run on any of them.
    assert 1 <= len(made) <= 3
    assert s.stop(None).wait(BOUND)
    # The worker threads end after the stop: their kept states are deleted then.
    gc.collect()
    wait_until(lambda: gc.collect() is not None and all(r() is None for r in made))
