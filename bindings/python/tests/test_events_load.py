"""The events service under load, against a real grpchelper RpcServer(with_events=True) and
grpcio clients (the raw EventService / RpcServerService stubs of grpchelper.api):

- listen streams hold no thread: 1,000 concurrent listeners on a server with
  rpc-max-workers 30 all get every event, in order, while other clients' unary calls are
  answered promptly (the events service's methods are async handlers, on Swift's
  concurrency pool — one thread per core — as the built-in services' unary methods:
  rpc-max-workers bounds the blocking, C and Python, handlers);
- a listener that stops reading blocks neither `send` nor the other listeners, and its
  queue's memory is bounded (rpc-event-queue-max, its oldest events dropped with a warning
  in EventsManager.log): measured on the RSS of a server run in a child process.
"""

import asyncio
import os
import shutil
import sys
import tempfile
import threading
import time

import grpc
import pytest

from _util import LineProcess, proc_status
from grpchelper import Folders, RpcServer
from grpchelper.api import (Empty, Event, EventFilter, EventInterrupt, EventProperty,
                            EventServiceStub, EventStatus, Filter, RpcServerServiceStub)

HERE = os.path.dirname(os.path.abspath(__file__))
BINDINGS_PYTHON = os.path.dirname(HERE)

# Bound of every wait (seconds): reached only when something is broken.
BOUND = 60
# A unary call answered later than this is one that waited for a thread the listen streams
# held (measured otherwise: a few ms, < 0.1 s under load).
PROMPT = 1.0

# One channel per connection: grpcio shares a subchannel (a TCP connection) between the
# channels of one target unless told otherwise, and the server advertises
# MAX_CONCURRENT_STREAMS 100 per connection.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


@pytest.fixture
def temp_folder():
    path = tempfile.mkdtemp(prefix="grpchelper-events-load-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def thread_count():
    return len(os.listdir("/proc/self/task"))


def timed_unary_calls(target, count=1, until=None):
    """`count` rounds (or, given the threading.Event `until`, rounds until it is set) of
    srv.info and events.inspect from a fresh client (its own channel): the seconds each
    call took, and the last inspect's client ids."""
    with grpc.insecure_channel(target, options=OWN_CONNECTION) as ch:
        srv, events = RpcServerServiceStub(ch), EventServiceStub(ch)
        took, ids = [], None
        while not took or (not until.is_set() if until is not None else len(took) < 2 * count):
            t0 = time.monotonic()
            info = srv.info(Filter(), timeout=BOUND)
            took.append(time.monotonic() - t0)
            assert {s.name for s in info.items} >= {"srv", "events"}, info
            t0 = time.monotonic()
            ids = list(events.inspect(Empty(), timeout=BOUND).client_ids)
            took.append(time.monotonic() - t0)
        return took, ids


# ---- 1. 1,000 listeners on 30 workers --------------------------------------------------

LISTENERS = 1000
CHANNELS = 20              # 50 streams per connection (the server allows 100)
EVENTS = 20
WORKERS = 30


def test_a_thousand_listeners_hold_no_thread_and_other_calls_stay_prompt(temp_folder):
    srv = RpcServer(0, [], Folders(workspace=os.path.join(temp_folder, "wks")),
                    {"rpc-shutdown-grace": "1", "rpc-max-workers": str(WORKERS),
                     "rpc-event-keepalive-timeout": "3600"},
                    with_events=True)
    try:
        target = "127.0.0.1:%d" % srv.port
        expected = ["e%02d" % i for i in range(EVENTS)]
        _, ids = timed_unary_calls(target)                      # warm-up
        assert ids == []
        threads_before = thread_count()
        report = asyncio.run(_thousand_listeners(srv, target, expected))
        took_opening, took_idle, took_busy, ids_seen, threads_open, ended, t_open, t_events = \
            report
        print("\n1,000 listeners: all open in %.2f s, %d events to all in %.2f s; threads "
              "%d -> %d; unary calls: max %.1f ms (%d calls while the streams open), max "
              "%.1f ms (open, idle), max %.1f ms (while the events go to them)"
              % (t_open, EVENTS, t_events, threads_before, threads_open,
                 1000 * max(took_opening), len(took_opening), 1000 * max(took_idle),
                 1000 * max(took_busy)))
        assert ids_seen == list(range(1, LISTENERS + 1))
        assert max(took_idle + took_busy) < PROMPT, (took_idle, took_busy)
        # A thread per listener would add ~1,000 (grpcio's client threads: a few).
        assert threads_open - threads_before < 100, (threads_before, threads_open)
        assert ended == {"ok": LISTENERS}, ended
        # The server still answers, its 1,000 queues interrupted (kept for the retain timeout).
        took, ids = timed_unary_calls(target, 2)
        assert max(took) < PROMPT, took
        assert ids == list(range(1, LISTENERS + 1))
        # Last: while the listeners connected. (Found with this test: every new queue's
        # listen writes queues.json with all the queues, on the Swift concurrency pool the
        # built-in services' unary methods run on too — one thread per core — so 1,000
        # listeners connecting at once hold those threads for O(n^2) work, and a unary
        # call that arrives meanwhile waits for them all: 7-17 s on two cores. Resuming
        # 1,000 queues at once, which writes nothing, keeps unary calls under ~0.1 s.)
        slow = [round(t, 2) for t in took_opening if t >= PROMPT]
        assert not slow, ("%d of %d unary calls made while 1,000 listeners connected took "
                          "over %.1f s: %s s (all open in %.1f s)"
                          % (len(slow), len(took_opening), PROMPT, slow, t_open))
    finally:
        srv.shutdown()
        srv.close()


async def _thousand_listeners(srv, target, expected):
    channels = [grpc.aio.insecure_channel(target, options=OWN_CONNECTION)
                for _ in range(CHANNELS)]
    sender = grpc.aio.insecure_channel(target, options=OWN_CONNECTION)
    calls, tasks = [], []
    try:
        loop = asyncio.get_running_loop()
        first = asyncio.Queue()
        got = [[] for _ in range(LISTENERS)]
        complete = asyncio.Event()
        remaining = [LISTENERS]

        async def listen(i, call):
            try:
                m = await call.read()
            except grpc.RpcError as e:
                m = e
            first.put_nowait(m.client_id if isinstance(m, EventStatus) else m)
            names = got[i]
            while True:
                m = await call.read()
                if m is grpc.aio.EOF:
                    code = await call.code()
                    return "ok" if code == grpc.StatusCode.OK else str(code)
                if m.r.code:
                    return "error %s" % m.r
                if not m.event.name:
                    continue                                    # a keep-alive
                names.append(m.event.name)
                if len(names) == len(expected):
                    remaining[0] -= 1
                    if not remaining[0]:
                        complete.set()

        # Unary calls from a fresh client while the 1,000 listen streams open...
        opened = threading.Event()
        opening = loop.run_in_executor(None, timed_unary_calls, target, 0, opened)
        t0 = time.monotonic()
        for i in range(LISTENERS):
            call = EventServiceStub(channels[i % CHANNELS]).listen(EventFilter())
            calls.append(call)
            tasks.append(asyncio.ensure_future(listen(i, call)))
        ids = []
        try:
            for _ in range(LISTENERS):
                ids.append(await asyncio.wait_for(first.get(), BOUND))
                assert isinstance(ids[-1], int), "a listen stream failed: %r" % (ids[-1],)
        finally:
            opened.set()
        t_open = time.monotonic() - t0
        took_opening, _ = await opening
        threads_open = thread_count()

        # ...once they are open...
        took_idle, inspected = await loop.run_in_executor(None, timed_unary_calls, target, 5)
        assert inspected == list(range(1, LISTENERS + 1))

        # ...and while the events go to them: half through `send` from another client,
        # half in-process, one after the other (so their order is defined).
        busy = loop.run_in_executor(None, timed_unary_calls, target, 5)
        events = EventServiceStub(sender)
        t0 = time.monotonic()
        for n, name in enumerate(expected):
            e = Event(name=name, properties=[EventProperty(name="n", value=str(n))])
            if n % 2:
                srv.send_event(e)
            else:
                r = await events.send(e, timeout=BOUND)
                assert r.r.code == 0, r
        await asyncio.wait_for(complete.wait(), BOUND)
        t_events = time.monotonic() - t0
        took_busy, _ = await busy
        wrong = [i for i in range(LISTENERS) if got[i] != expected]
        assert not wrong, "%d listeners got other events, e.g. #%d: %s" % (
            len(wrong), wrong[0], got[wrong[0]])

        # Every listener interrupted: its stream ends (status OK).
        results = await asyncio.wait_for(asyncio.gather(
            *(events.interrupt(EventInterrupt(client_id=i), timeout=BOUND) for i in ids)), BOUND)
        assert all(r.r.code == 0 for r in results)
        ends = await asyncio.wait_for(asyncio.gather(*tasks), BOUND)
        ended = {}
        for e in ends:
            ended[e] = ended.get(e, 0) + 1
        return (took_opening, took_idle, took_busy, sorted(ids), threads_open, ended, t_open,
                t_events)
    finally:
        for call in calls:
            call.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ch in channels + [sender]:
            await ch.close()


# ---- 2. a listener that stops reading --------------------------------------------------

QUEUE_MAX = 1000
PAD = 1024                  # bytes of each event's "pad" property
BATCH = 400                 # events sent in a row
WARM_UP = 30 * BATCH        # before the RSS baseline: the non-reader's HTTP/2 buffers
                            # (~5,000 events) and its queue already full
TOTAL = 100_000             # ~1.15 KiB each in the server when kept: ~115 MiB
RPC_EVERY = 10              # batches 5, 15, 25...: through concurrent `send` RPCs (their
                            # events reach the queues in any order); the others in-process
                            # in the server's process, in order (faster to send). So the
                            # last one, and the one holding TOTAL - QUEUE_MAX, are in order.
IN_FLIGHT = 40              # concurrent `send` RPCs (each timed)
# The longest a send may take (s). Measured: 20-170 ms (the RPCs, 40 at a time), 5-35 ms
# (in-process); ~430 / ~260 ms with a busy loop and a compiler on the two cores. A send
# that waited for the non-reader would wait for the rest of the test (BOUND).
SEND_PROMPT = 2.0
# The server's RSS growth allowed past the baseline (MiB). Measured (two cores, this
# library, TOTAL events): with rpc-event-queue-max 1000 the server's peak RSS stays within
# ~1-2 MiB of the baseline taken after the warm-up (~63 MiB at the start, ~67.5 MiB after
# the warm-up, ~68.5 MiB at the peak); with the queue unbounded (rpc-event-queue-max
# 100000000, same test) it grows by ~1.2 KiB per event kept, ~+110 MiB past the baseline.
# 32 MiB leaves room for the allocator's noise and still fails if the server kept more than
# a quarter of what the non-reader did not read.
RSS_GROWTH_MAX_MIB = 32

# The server's process: prints its port, then runs the commands of its stdin:
# "burst START COUNT" sends events START..START+COUNT-1 in-process (srv.send_event) and
# answers "ok WORST_SECONDS"; "quit" (or the end of stdin) shuts it down and answers "bye".
SERVER_SCRIPT = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from grpchelper import Folders, RpcServer
from grpchelper.api import Event, EventProperty
srv = RpcServer(0, [], Folders(workspace=sys.argv[2]),
                {"rpc-shutdown-grace": "1", "rpc-event-keepalive-timeout": "3600",
                 "rpc-event-queue-max": sys.argv[3]}, with_events=True)
pad = "x" * int(sys.argv[4])
print("port", srv.port, flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] != "burst":
        break
    worst = 0.0
    for i in range(int(cmd[1]), int(cmd[1]) + int(cmd[2])):
        t = time.monotonic()
        srv.send_event(Event(name="ev", properties=[EventProperty(name="seq", value=str(i)),
                                                    EventProperty(name="pad", value=pad)]))
        worst = max(worst, time.monotonic() - t)
    print("ok", worst, flush=True)
srv.shutdown()
srv.close()
print("bye", flush=True)
"""


def kind_of(batch):
    return "rpc" if batch % RPC_EVERY == RPC_EVERY // 2 and batch * BATCH >= WARM_UP \
        else "in-process"


def assert_in_order(seqs):
    """Events received once each, batch after batch, in order within an in-process batch
    (a batch of concurrent RPCs in any order)."""
    assert len(set(seqs)) == len(seqs), "an event received twice"
    batches = [s // BATCH for s in seqs]
    assert batches == sorted(batches), "batches out of order"
    for b in set(batches):
        if kind_of(b) == "in-process":
            inside = [s for s in seqs if s // BATCH == b]
            assert inside == sorted(inside), (b, inside[:10])


def event(seq):
    return Event(name="ev", properties=[EventProperty(name="seq", value=str(seq)),
                                        EventProperty(name="pad", value="x" * PAD)])


def seq_of(status):
    assert status.event.name == "ev" and status.event.properties[0].name == "seq", status
    assert len(status.event.properties[1].value) == PAD
    return int(status.event.properties[0].value)


class ServerProcess(LineProcess):
    """SERVER_SCRIPT in a child process: `port`, `pid`, `command(line)` → its answer."""

    BOUND = BOUND

    def __init__(self, folder, queue_max):
        script = os.path.join(folder, "server.py")
        with open(script, "w") as f:
            f.write(SERVER_SCRIPT)
        super().__init__([sys.executable, script, BINDINGS_PYTHON, os.path.join(folder, "wks"),
                          str(queue_max), str(PAD)], os.path.join(folder, "server.stderr"))
        self.wait_port()


class Reader:
    """A listener that reads every message on a thread of its own: `seqs` (in the order
    received), `client_id`; `wait_for(count)` → whether `count` events arrived in time."""

    def __init__(self, channel):
        self.call = EventServiceStub(channel).listen(EventFilter(), timeout=4 * BOUND)
        self.client_id = next(self.call).client_id
        self.seqs = []
        self.error = None
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for m in self.call:
                if m.event.name:
                    s = seq_of(m)
                    with self.cond:
                        self.seqs.append(s)
                        self.cond.notify_all()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self.error = e
        except Exception as e:  # noqa: BLE001 - reported by wait_for
            self.error = e
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, count):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.seqs) >= count or self.error is not None
                                    or not self.thread.is_alive(), BOUND)
            assert self.error is None, self.error
            return ok and len(self.seqs) >= count

    def close(self):
        self.call.cancel()
        self.thread.join(BOUND)


def timed_sends(sender, seqs):
    """Sends events `seqs` through concurrent `send` RPCs (IN_FLIGHT at a time); the
    longest a call took (seconds)."""
    took = []
    for first in range(0, len(seqs), IN_FLIGHT):
        futures = []
        for seq in seqs[first:first + IN_FLIGHT]:
            t0 = time.monotonic()
            f = sender.send.future(event(seq), timeout=BOUND)
            f.add_done_callback(lambda _, t0=t0: took.append(time.monotonic() - t0))
            futures.append(f)
        for f in futures:
            assert f.result(BOUND).r.code == 0
    return max(took)


def test_a_listener_that_stops_reading_blocks_nothing_and_its_queue_is_bounded(temp_folder):
    server = ServerProcess(temp_folder, QUEUE_MAX)
    target = "127.0.0.1:%d" % server.port
    # Each listener on a connection of its own (an HTTP/2 connection's window is shared).
    channels = [grpc.insecure_channel(target, options=OWN_CONNECTION) for _ in range(3)]
    reader = None
    stalled = None
    try:
        reader = Reader(channels[0])
        # The non-reader: its first message read, then never again until the end. grpcio
        # asks for a message only when iterated: the server's HTTP/2 window fills.
        stalled = EventServiceStub(channels[1]).listen(EventFilter(), timeout=4 * BOUND)
        stalled_id = next(stalled).client_id
        assert (reader.client_id, stalled_id) == (1, 2)
        sender = EventServiceStub(channels[2])

        worst = {"rpc": 0.0, "in-process": 0.0}     # the longest send of each kind (s)
        rss_start = proc_status(server.pid, "VmRSS")
        rss = []                   # the server's VmRSS (KiB) after each batch
        baseline = None
        t_start = time.monotonic()
        for sent in range(0, TOTAL, BATCH):
            # The reader never has more than 2 batches pending (< QUEUE_MAX): it loses
            # nothing, whatever the speeds.
            assert reader.wait_for(sent - BATCH), (sent, len(reader.seqs))
            if sent == WARM_UP:
                assert reader.wait_for(sent)
                baseline = proc_status(server.pid, "VmRSS")
            if kind_of(sent // BATCH) == "rpc":
                took = timed_sends(sender, range(sent, sent + BATCH))
                worst["rpc"] = max(worst["rpc"], took)
            else:
                answer = server.command("burst %d %d" % (sent, BATCH))
                assert answer.startswith("ok "), answer
                worst["in-process"] = max(worst["in-process"], float(answer.split()[1]))
            rss.append(proc_status(server.pid, "VmRSS"))
        assert reader.wait_for(TOTAL), len(reader.seqs)
        t_flood = time.monotonic() - t_start
        peak = max(max(rss), proc_status(server.pid, "VmHWM"))

        # The non-reader resumes: what was already on its way when it stopped reading (the
        # first events, in grpcio's and the server's HTTP/2 buffers), then its queue: the
        # newest QUEUE_MAX events.
        resumed = []
        for m in stalled:
            if m.event.name:
                resumed.append(seq_of(m))
                if resumed[-1] == TOTAL - 1:          # the last batch is an in-process one
                    break
        early, queued = resumed[:-QUEUE_MAX], resumed[-QUEUE_MAX:]
        print("\nnon-reading listener: %d events of %d B in %.1f s (%.0f/s); longest send: "
              "%.1f ms (RPC), %.1f ms (in-process); server RSS: %.1f MiB at the start, "
              "baseline (after %d events) %.1f MiB, peak %.1f MiB; the non-reader, resumed: "
              "%d events up to #%d, then %d events #%d..#%d"
              % (TOTAL, PAD, t_flood, TOTAL / t_flood, 1000 * worst["rpc"],
                 1000 * worst["in-process"], rss_start / 1024, WARM_UP, baseline / 1024,
                 peak / 1024, len(early), max(early or [-1]), len(queued),
                 min(queued or [-1]), max(queued or [-1])))

        # Every send was prompt: none waited for the non-reader.
        assert worst["rpc"] < SEND_PROMPT and worst["in-process"] < SEND_PROMPT, worst
        # The reader got every event, in order.
        assert_in_order(reader.seqs)
        assert len(reader.seqs) == TOTAL
        # The server's memory stayed bounded although the non-reader read nothing.
        assert (peak - baseline) / 1024 < RSS_GROWTH_MAX_MIB, \
            "the server's RSS grew from %.1f MiB to %.1f MiB" % (baseline / 1024, peak / 1024)
        # The non-reader lost the events between the first ones and its queue's.
        assert_in_order(resumed)
        assert 0 < len(early) < TOTAL // 4, len(resumed)
        assert set(range(max(early) // BATCH * BATCH)) <= set(early), "a hole in the first"
        # (TOTAL - QUEUE_MAX is inside an in-process batch: the queue's first is that one.)
        assert queued == list(range(TOTAL - QUEUE_MAX, TOTAL)), (queued[:3], queued[-3:])
        dropped = TOTAL - len(resumed)
    finally:
        if reader is not None:
            reader.close()
        if stalled is not None:
            stalled.cancel()
        for ch in channels:
            ch.close()
        status = server.stop()
    assert status == 0
    with open(os.path.join(temp_folder, "wks", "logs", "EventsManager",
                           "EventsManager.log")) as f:
        log = f.read()
    assert ("Event queue #2 is full (rpc-event-queue-max %d undelivered events): dropping "
            "its oldest events" % QUEUE_MAX) in log, log[-2000:]
    assert "Event queue #1 is full" not in log, log[-2000:]
    # Once the non-reader had read everything (its queue empty again): how many went. (The
    # server logs it when the listen stream finds the queue empty, just after it sent the
    # last event; the checks above came between that and the stream's cancellation.)
    assert "Event queue #2: listener caught up; %d events were dropped" % dropped in log, \
        log[-2000:]
