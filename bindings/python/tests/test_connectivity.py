"""Channel connectivity: Channel.subscribe / unsubscribe, grpc.channel_ready_future and
grpc.ChannelConnectivity, on grpchelper's channel and, with the same code, on grpcio's.

The `matrix` cases run on the four pairings of {grpcio, grpchelper} server x client (see
conftest.py); the others compare grpchelper's channel with grpcio's where grpcio's
behaviour is the reference (`kind`), or check what only grpchelper promises (every
change delivered, in order; nothing after close(); no registry entry left).

Every wait is bounded (BOUND seconds, reached only on failure); nothing sleeps to
synchronise: the tests wait for the states they expect.
"""

import logging
import os
import subprocess
import sys
import textwrap
import threading

import grpc
import pytest

import grpchelper
from conftest import implementation
from grpchelper._grpc.connectivity import SUBSCRIPTION_KIND
from grpchelper._native import ffi
from grpchelper._native.callbacks import registry

BOUND = 10

CC = grpc.ChannelConnectivity
IDLE, CONNECTING, READY = CC.IDLE, CC.CONNECTING, CC.READY
TRANSIENT_FAILURE, SHUTDOWN = CC.TRANSIENT_FAILURE, CC.SHUTDOWN

PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ("grpcio", "grpchelper")


class Recorder(object):
    """A subscription callback recording the states it is given (`raises`: then raising)."""

    def __init__(self, raises=False):
        self.states = []
        self.raises = raises
        self._cond = threading.Condition()

    def __call__(self, state):
        with self._cond:
            self.states.append(state)
            self._cond.notify_all()
        if self.raises:
            raise RuntimeError("a failing subscription callback")

    def wait(self, predicate, what):
        """Waits (bounded) until predicate(states) holds; the states then."""
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self.states), BOUND), \
                "%s: states %s" % (what, self.states)
            return list(self.states)

    def wait_last(self, state):
        return self.wait(lambda s: s and s[-1] is state, "last state %s" % state)

    def wait_count(self, n):
        return self.wait(lambda s: len(s) >= n, "%d states" % n)

    def snapshot(self):
        with self._cond:
            return list(self.states)


def unary(matrix, channel):
    """One unary call on `channel` (the matrix's Unary echoes)."""
    return matrix.pb.MatrixStub(channel).Unary(matrix.Msg(text="hi"), timeout=BOUND)


def echo(matrix):
    return matrix.servicer(Unary=lambda request, context: matrix.Msg(text=request.text))


def reserve_port(matrix):
    """A port nothing listens on any more (a server of the pairing bound it, then stopped)."""
    rs = matrix.start_server(echo(matrix))
    assert rs.server.stop(None).wait(BOUND)
    return rs.port


def wait_released(kind=SUBSCRIPTION_KIND):
    """Asserts that the library releases every registry entry of `kind` (bounded)."""
    keys = registry.snapshot(kind)
    assert registry.wait_released(keys, BOUND), registry.snapshot(kind)
    assert registry.count(kind) == 0


# --- the equivalence matrix ------------------------------------------------------------

def test_subscribe_sees_idle_then_ready_after_a_call_then_idle_when_the_server_stops(matrix):
    rs = matrix.start_server(echo(matrix))
    ch = matrix.channel(rs)
    rec = Recorder()
    ch.subscribe(rec)
    assert rec.wait_count(1) == [IDLE]           # the current state, and no connection
    assert unary(matrix, ch).text == "hi"
    states = rec.wait_last(READY)
    if matrix.client_impl == "grpchelper":
        assert states == [IDLE, CONNECTING, READY]   # every change, in order
    else:
        # grpcio polls the state: a short CONNECTING may be skipped.
        assert states in ([IDLE, CONNECTING, READY], [IDLE, READY])
    assert rs.server.stop(None).wait(BOUND)
    states = rec.wait_last(IDLE)                 # the connection is gone; none is made
    assert states[:-1][-1] is READY and TRANSIENT_FAILURE not in states
    ch.unsubscribe(rec)


def test_subscribe_with_try_to_connect_connects(matrix):
    rs = matrix.start_server(echo(matrix))
    ch = matrix.channel(rs)
    rec = Recorder()
    ch.subscribe(rec, try_to_connect=True)
    states = rec.wait_last(READY)                # without any call
    assert states[0] is IDLE and set(states) <= {IDLE, CONNECTING, READY}, states
    if matrix.client_impl == "grpchelper":
        assert states == [IDLE, CONNECTING, READY]
    ch.unsubscribe(rec)
    assert unary(matrix, ch).text == "hi"


def test_channel_ready_future_waits_for_a_server_that_starts_late(matrix):
    port = reserve_port(matrix)
    ch = matrix.channel(port)
    rec = Recorder()
    ch.subscribe(rec)
    future = implementation(matrix.client_impl).channel_ready_future(ch)
    assert isinstance(future, grpc.Future)
    done, called = [], threading.Event()
    future.add_done_callback(lambda f: (done.append(f), called.set()))
    rec.wait(lambda s: TRANSIENT_FAILURE in s, "a failed attempt")   # nothing listens
    with pytest.raises(grpc.FutureTimeoutError):
        future.result(timeout=0.05)
    assert future.running() and not future.done() and not future.cancelled() and not done
    matrix.start_server(echo(matrix), address="127.0.0.1:%d" % port)
    assert future.result(timeout=BOUND) is None
    assert future.done() and not future.running() and not future.cancelled()
    assert future.exception() is None and future.traceback() is None
    assert called.wait(BOUND) and done == [future]   # on the delivering thread
    late = []
    future.add_done_callback(late.append)        # done: called at once
    assert late == [future]
    states = rec.wait_last(READY)
    assert states[0] is IDLE and TRANSIENT_FAILURE in states
    assert future.cancel() is False
    ch.unsubscribe(rec)
    assert unary(matrix, ch).text == "hi"


def test_unsubscribe_stops_deliveries(matrix):
    rs = matrix.start_server(echo(matrix))
    ch = matrix.channel(rs)
    gone, kept = Recorder(), Recorder()
    ch.subscribe(gone)
    ch.subscribe(kept)
    gone.wait_count(1)
    ch.unsubscribe(gone)
    ch.unsubscribe(Recorder())                   # never subscribed: nothing happens
    assert unary(matrix, ch).text == "hi"
    kept.wait_last(READY)
    assert gone.snapshot() == [IDLE]
    ch.unsubscribe(kept)


# --- grpchelper's channel, grpcio's as the reference -----------------------------------

@pytest.fixture
def echo_server(serve):
    """A grpchelper server answering /t.T/Echo; its target."""
    handler = grpc.method_handlers_generic_handler(
        "t.T", {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request)})
    return serve(handler)[1]


@pytest.mark.parametrize("kind", KINDS)
def test_a_raising_callback_is_logged_and_later_states_still_come(kind, echo_server, channels,
                                                                  caplog):
    caplog.set_level(logging.ERROR)
    ch = channels(echo_server, kind=kind)
    failing, other = Recorder(raises=True), Recorder()
    ch.subscribe(failing)
    ch.subscribe(other)
    failing.wait_count(1)
    assert ch.unary_unary("/t.T/Echo")(b"x", timeout=BOUND) == b"x"
    other.wait_last(READY)
    failing.wait_last(READY)                     # it raised at IDLE, and was called again
    messages = [r.getMessage() for r in caplog.records]
    assert "Exception calling channel subscription callback!" in messages, messages
    record = caplog.records[messages.index("Exception calling channel subscription callback!")]
    assert record.exc_info[0] is RuntimeError
    ch.unsubscribe(failing)
    ch.unsubscribe(other)


class Named(Recorder):
    """Recorders equal to one another when their names are (grpcio compares with ==)."""

    def __init__(self, name):
        super(Named, self).__init__()
        self.name = name

    def __eq__(self, other):
        return isinstance(other, Named) and other.name == self.name

    __hash__ = None


@pytest.mark.parametrize("kind", KINDS)
def test_unsubscribe_ends_the_first_equal_subscription_and_works_from_the_callback(
        kind, echo_server, channels):
    ch = channels(echo_server, kind=kind)
    first, second = Named("a"), Named("a")
    ch.subscribe(first)
    ch.subscribe(second)
    once = Recorder()

    def leave(state):
        once(state)
        ch.unsubscribe(leave)                    # from its own delivery

    ch.subscribe(leave)
    for rec in (first, second, once):
        rec.wait_count(1)
    ch.unsubscribe(Named("a"))                   # the first equal one only
    assert ch.unary_unary("/t.T/Echo")(b"x", timeout=BOUND) == b"x"
    assert second.wait_last(READY)[0] is IDLE
    assert first.snapshot() == [IDLE]
    assert once.snapshot() == [IDLE]
    ch.unsubscribe(second)


def test_every_change_is_delivered_in_order_and_try_to_connect_keeps_connecting(serve, channels):
    """grpchelper only: a subscription with try_to_connect=True keeps the channel connecting
    while it lasts (grpcio's channel, once IDLE, waits for a call or another
    try_to_connect), and every state it goes through is delivered."""
    handler = grpc.method_handlers_generic_handler(
        "t.T", {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request)})
    server, target = serve(handler)
    port = int(target.rsplit(":", 1)[1])
    ch = channels(target)
    rec = Recorder()
    ch.subscribe(rec, try_to_connect=True)
    assert rec.wait_last(READY) == [IDLE, CONNECTING, READY]
    assert server.stop(None).wait(BOUND)
    states = rec.wait_last(TRANSIENT_FAILURE)    # lost, then reconnecting at once
    assert states[:6] == [IDLE, CONNECTING, READY, IDLE, CONNECTING, TRANSIENT_FAILURE]
    assert set(states[5:]) <= {CONNECTING, TRANSIENT_FAILURE}
    again = grpchelper.server(2, handlers=(handler,))
    try:
        assert again.add_insecure_port("127.0.0.1:%d" % port) == port
        again.start()
        states = rec.wait_last(READY)            # no call needed: it kept trying
        assert states[-2] is CONNECTING
        ch.unsubscribe(rec)
    finally:
        assert again.stop(None).wait(BOUND)


# --- grpchelper's close, cancel, and what is left behind -------------------------------

def test_close_ends_subscriptions_without_shutdown(echo_server):
    ch = grpchelper.insecure_channel(echo_server)
    quiet, connecting = Recorder(), Recorder()
    ch.subscribe(quiet)
    ch.subscribe(connecting, try_to_connect=True)
    connecting.wait_last(READY)
    quiet.wait_last(READY)
    assert registry.count(SUBSCRIPTION_KIND) == 2
    ch.close()
    # grpcio's close unsubscribes all: nothing more, SHUTDOWN neither (the library
    # delivers SHUTDOWN to its watches before gh_channel_free returns: the binding drops it).
    assert quiet.snapshot() == connecting.snapshot() == [IDLE, CONNECTING, READY]
    assert registry.count(SUBSCRIPTION_KIND) == 0     # the free ended the watches
    ch.subscribe(quiet, try_to_connect=True)     # closed: nothing happens, as with grpcio
    ch.unsubscribe(connecting)
    never = grpchelper.channel_ready_future(ch)
    with pytest.raises(grpchelper.FutureTimeoutError):    # as grpcio's on a closed channel
        never.result(timeout=0.05)
    assert registry.count(SUBSCRIPTION_KIND) == 0
    assert quiet.snapshot() == [IDLE, CONNECTING, READY]


def test_close_from_a_subscription_callback(echo_server):
    ch = grpchelper.insecure_channel(echo_server)
    closed = threading.Event()
    rec = Recorder()

    def close_when_ready(state):
        rec(state)
        if state is READY:
            ch.close()
            closed.set()

    ch.subscribe(close_when_ready, try_to_connect=True)
    assert closed.wait(BOUND)
    assert rec.snapshot() == [IDLE, CONNECTING, READY]
    with pytest.raises(ValueError):
        ch.unary_unary("/t.T/Echo")(b"x")
    wait_released()


def test_a_dropped_channel_ends_its_subscriptions(echo_server):
    ch = grpchelper.insecure_channel(echo_server)
    rec = Recorder()
    ch.subscribe(rec, try_to_connect=True)
    rec.wait_last(READY)
    del ch                                       # the finaliser: as close()
    assert rec.snapshot() == [IDLE, CONNECTING, READY]
    wait_released()


def test_channel_ready_future_cancel_and_timeout():
    # A port nothing listens on: the future cannot become done by itself.
    probe = grpchelper.server(1)
    port = probe.add_insecure_port("127.0.0.1:0")
    probe.start()
    assert probe.stop(None).wait(BOUND)
    ch = grpchelper.insecure_channel("127.0.0.1:%d" % port)
    try:
        future = grpchelper.channel_ready_future(ch)
        assert isinstance(future, grpchelper.Future)
        assert registry.count(SUBSCRIPTION_KIND) == 1
        with pytest.raises(grpchelper.FutureTimeoutError):
            future.result(timeout=0.05)
        with pytest.raises(grpchelper.FutureTimeoutError):
            future.exception(timeout=0)
        assert future.running() and not future.done()
        called = []
        future.add_done_callback(called.append)
        future.add_done_callback(lambda f: 1 / 0)    # logged; the others still run
        future.add_done_callback(called.append)
        assert future.cancel() is True
        assert called == [future, future]
        assert future.cancelled() and future.done() and not future.running()
        for wait in (future.result, future.exception, future.traceback):
            with pytest.raises(grpchelper.FutureCancelledError):
                wait(timeout=BOUND)
        after = []
        future.add_done_callback(after.append)
        assert after == [future]
        assert future.cancel() is True             # grpcio's second cancel() raises TypeError
        wait_released()                            # cancel() unsubscribed
    finally:
        ch.close()


def test_grpcio_channel_ready_future_on_a_grpchelper_channel_and_back(echo_server):
    """grpc.channel_ready_future needs only subscribe / unsubscribe: it works on our
    channel (unsubscribing from inside a delivery), and ours on grpcio's channel."""
    with grpchelper.insecure_channel(echo_server) as ours:
        assert grpc.channel_ready_future(ours).result(timeout=BOUND) is None
        wait_released()
    with grpc.insecure_channel(echo_server) as theirs:
        assert grpchelper.channel_ready_future(theirs).result(timeout=BOUND) is None


def test_many_subscriptions_leave_nothing_behind(echo_server):
    before = ffi_handles()
    ch = grpchelper.insecure_channel(echo_server)
    recs = [Recorder() for _ in range(50)]
    for round_ in range(4):
        for rec in recs:
            ch.subscribe(rec, try_to_connect=bool(round_ % 2))
        for rec in recs:
            rec.wait_count(round_ + 1)
            ch.unsubscribe(rec)
        wait_released()
    ready = grpchelper.channel_ready_future(ch)
    assert ready.result(timeout=BOUND) is None
    wait_released()
    ch.close()
    assert ffi_handles() == before


def ffi_handles():
    """The live handles of each kind but servers: the servers of earlier tests are released
    on a library thread of their own, and may go while this test runs."""
    from grpchelper._native.handle import live_handles
    return {k: v for k, v in live_handles().items() if k != "server"}


# --- the states themselves -------------------------------------------------------------

def test_channel_connectivity_is_grpcios_and_matches_the_library():
    assert grpchelper.ChannelConnectivity is grpc.ChannelConnectivity
    assert "ChannelConnectivity" in grpchelper.__all__
    assert "channel_ready_future" in grpchelper.__all__
    assert [(m.name, m.value) for m in grpchelper.ChannelConnectivity] == [
        ("IDLE", (ffi.GH_CONNECTIVITY_IDLE, "idle")),
        ("CONNECTING", (ffi.GH_CONNECTIVITY_CONNECTING, "connecting")),
        ("READY", (ffi.GH_CONNECTIVITY_READY, "ready")),
        ("TRANSIENT_FAILURE", (ffi.GH_CONNECTIVITY_TRANSIENT_FAILURE, "transient failure")),
        ("SHUTDOWN", (ffi.GH_CONNECTIVITY_SHUTDOWN, "shutdown")),
    ]


def test_without_grpcio_our_enum_has_grpcios_names_and_values():
    expected = [(m.name, m.value) for m in grpc.ChannelConnectivity]
    code = """
        import sys
        sys.modules["grpc"] = None          # import grpc now fails
        import threading
        import grpchelper as g
        assert not g.HAVE_GRPCIO
        print([(m.name, m.value) for m in g.ChannelConnectivity])
        s = g.server(2)
        port = s.add_insecure_port("127.0.0.1:0")
        s.start()
        with g.insecure_channel("127.0.0.1:%d" % port) as ch:
            seen, ready = [], threading.Event()
            def cb(state):
                seen.append(state)
                if state is g.ChannelConnectivity.READY:
                    ready.set()
            ch.subscribe(cb, try_to_connect=True)
            assert ready.wait(10), seen
            ch.unsubscribe(cb)
            assert g.channel_ready_future(ch).result(timeout=10) is None
            assert isinstance(g.channel_ready_future(ch), g.Future)
        s.stop(None).wait()
        print([m.name for m in seen])
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=PKG_ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    values, seen = r.stdout.strip().splitlines()
    assert values == repr(expected)
    assert seen == repr(["IDLE", "CONNECTING", "READY"])
