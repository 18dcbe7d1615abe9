#!/usr/bin/env python3
"""Events service benchmark: our RpcServer(with_events=True) vs the original grpc-helper's.

    python3 bench/events_bench.py [--seconds S] [--quick] [--listeners 1,10,100]
                                  [--latency-rates 1000,100] [--latency-listeners N]
                                  [--sender h2load|python] [--concurrency M]
                                  [--per-process K] [--drain S] [--repeat N]
                                  [--servers ours,original]

Two servers, each in a subprocess of its own (this script with --serve KIND), measured by
the same client code in one run:

  ours      grpchelper.RpcServer(0, [], Folders(workspace=<temp>), config, with_events=True)
            from bindings/python (the events service itself is the library's, in Swift)
  original  grpc_helper.RpcServer(port, [], Folders(workspace=<temp>), config,
            with_events=True) of grpc-helper 2.3.1 (grpcio and its Python EventsManager),
            run from its cache folder (~/.cache/libgrpchelper/grpc-helper-2.3.1, first on the
            child's PYTHONPATH; installed by Tests/interop_helper/original.py when missing)

Both get the same config (-c): rpc-max-workers 130 (the original holds a worker thread per
listen stream: its default 30 would all be taken by the first 30 listeners),
rpc-shutdown-grace 1,
rpc-shutdown-timeout 1; keep-alive (60 s) and retain (300 s) timeouts, and ours'
rpc-event-queue-max (10 000), at their defaults. Every row gets a fresh server and
workspace (a temporary folder, removed afterwards), so no queue of an earlier row collects
events; the server is stopped with "shutdown" on its stdin (srv.shutdown()) and must exit 0.

Wire: EventService (no package): listen(EventFilter) -> stream EventStatus, send(Event) ->
ResultStatus, interrupt(EventInterrupt), inspect(Empty); calls carry api_version 2.

Rows:

  throughput, N listeners (N in --listeners, default 1, 10, 100)
      N listen streams open, each has received its first message (its client_id: ids
      1..N) and `inspect` lists N queues. Then the sender sends for S seconds as fast as
      the server answers: h2load (default) on one HTTP/2 connection with --concurrency (64)
      sends in flight, each the same event (name "bench-event", one property); or, with
      --sender python, --concurrency (4) threads of blocking calls on a grpchelper channel.
      (The rate is bound by round trips: with 8 sends in flight ours took about 2/3 of
      what it takes with 32-64; 64 stays below the 100 streams a connection may carry.) Then one end-marker event is sent: a queue delivers in order, so
      a listener that got the marker has got everything sent before it. Listeners have up
      to --drain seconds after the last send for that. Reported:
        sent/s       sends answered OK per second of the send window (h2load's count)
        delivered/s  messages carrying the event, summed over the listeners, divided by the
                     time from the first send to the last delivery (so a backlog drained
                     after the sends counts against the server)
        missing      listeners x events the server took - events received; every send puts
                     the event in every queue, so all counts must be equal (h2load stops
                     with a few sends in flight, which the server may still have taken:
                     the count must lie between h2load's succeeded and started ones)
        drain        seconds from the end of the sends to the last delivery
        cpu          cores used over the same span: all client processes (listeners, the
                     sender and h2load; the busiest process in brackets), the server
                     process, and the whole machine (getrusage, /proc/<pid>/stat, /proc/stat)
      Then every listener calls interrupt(client_id) and its stream must end with OK (when
      something was left undelivered, the streams are cancelled instead).
  latency, 10 listeners (--latency-listeners) at R events/s (R in --latency-rates, 1000
  and 100)
      The listeners and a paced sender in ONE process (one clock): --latency-senders (8)
      threads take the ticks of an R/s schedule in turn, each a blocking `send` (a
      grpchelper channel) of an event whose property carries time.perf_counter_ns at the
      send; a listener parses every message and takes its receive time minus that.
      S seconds after 0.5 s of warm-up (excluded). Reported: p50, p99, max in ms over every
      delivery of every measured event, the send rate achieved (below R when the server
      answers slower than the pace), missing deliveries (not in the percentiles), cpu.
      The 100 events/s row shows both servers below their limits.

Ratio columns: ours / original for delivered/s, original / ours for latencies (both: how
many times better ours is). Keep-alives (events with an empty name) are never counted.

The client (the same for both servers) must not be the bottleneck; choices:
- sends come from h2load (C, nghttp2): ~12-16 us of CPU per send against ~90 us for a
  Python grpchelper call (~200 us with .future()), measured here; a Python sender took up
  to half a core at 10 listeners and starved the listeners and the server on 2 cores. With
  --sender python the run needs no h2load (chosen automatically when it is not installed);
- listeners use the grpchelper binding's channel (grpchelper.insecure_channel): cheaper
  per streamed message than grpcio's (bench/python_bench.py: ~190k vs ~8k msgs/s), and the
  same wire for both servers;
- raw bytes (identity deserializers): a throughput listener only checks that a message
  starts with the exact bytes of the event sent (EventStatus.event is field 2, serialized
  first: 0x12, its length, the Event's bytes), so protobuf parsing costs nothing; any other
  message is parsed (keep-alive: ignored; the marker; anything else: reported);
- listeners are spread over processes of at most --per-process (25) streams each, i.e. 1,
  1 and 4 processes for 1, 10 and 100 listeners, with at most 25 streams per channel (a
  server advertises 100 concurrent streams per HTTP/2 connection), so no one Python
  process (one GIL) receives everything.
The report prints the clients' CPU so this can be checked: clients, sender and server
share the machine's cores; a machine at ~100 % means the row is bound by CPU, and the
server's share says how much of it the server needed. The original is bound by its own
GIL (its server process stays near 1 core whatever the clients do).

--repeat N runs everything N times, interleaved (repetition 1 of every row of both servers,
then 2, ...); the table shows the median repetition of each row (the lower one of an even
count), then every repetition's figures and ours / original per repetition.

Defaults: S = 5 s, drain 10 s, 1 repetition; the whole run takes about 2 minutes. --quick: S = 1 s,
drain 3 s (smoke test, ~30 s). grpchelper is imported from bindings/python (the library
found as the binding finds it: GRPCHELPER_LIBRARY if set, else pkg-config, the linker
path, build/lib/libgrpchelper.so.1); EVENTS_BENCH_BINDING=<dir> imports it from another
copy of the binding (e.g. `git archive` of a commit, when the working tree's binding and
the library at hand are of different versions).
"""

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
# EVENTS_BENCH_BINDING: another copy of the binding (e.g. `git archive` of a commit) when the
# working tree's bindings/python and the library at hand are of different versions.
BINDING = os.path.abspath(os.environ.get("EVENTS_BENCH_BINDING")
                          or os.path.join(ROOT, "bindings", "python"))
ORIGINAL_VERSION = "2.3.1"

LISTEN = "/EventService/listen"
SEND = "/EventService/send"
INTERRUPT = "/EventService/interrupt"
INSPECT = "/EventService/inspect"
API_MD = (("api_version", "2"),)          # EventApiVersion current, as RpcClient sends it

KINDS = ("ours", "original")
SERVER_CONFIG = {"rpc-max-workers": "130", "rpc-shutdown-grace": "1",
                 "rpc-shutdown-timeout": "1"}
STREAMS_PER_CHANNEL = 25
EVENT_NAME = "bench-event"
WARMUP_NAME = "warm-up"
END_NAME = "bench-end"                    # sent once after the measured sends
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("== " + msg, file=sys.stderr, flush=True)


# ====================================================================== servers

def original_dir():
    explicit = os.environ.get("GRPCHELPER_ORIGINAL_DIR")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "libgrpchelper", "grpc-helper-%s" % ORIGINAL_VERSION)


def ensure_original():
    """The original's install folder; installed (pip --target, once) when missing."""
    target = original_dir()
    if os.path.isfile(os.path.join(target, ".installed.json")):
        return target
    sys.path.insert(0, os.path.join(ROOT, "Tests"))
    try:
        from interop_helper import original        # imports nothing of grpc_helper
    finally:
        sys.path.pop(0)
    return str(original.ensure_installed())


def serve(kind, workspace, port):
    """Subprocess body: a managed server with events; prints "READY <port>", serves until
    "shutdown" or EOF on stdin (or SIGTERM), shuts down and prints "STOPPED"."""
    config = dict(SERVER_CONFIG)
    if kind == "ours":
        sys.path.insert(0, BINDING)
        import grpchelper
        assert "grpc_helper" not in sys.modules
        srv = grpchelper.RpcServer(0, [], grpchelper.Folders(workspace=workspace), config,
                                   with_events=True)
        port = srv.port
    else:
        import grpc_helper
        assert "grpchelper" not in sys.modules
        assert os.path.dirname(os.path.dirname(grpc_helper.__file__)) == original_dir(), \
            grpc_helper.__file__
        from grpc_helper_api import ResultCode
        from pathlib import Path
        try:
            srv = grpc_helper.RpcServer(port, [], grpc_helper.Folders(workspace=Path(workspace)),
                                        config, with_events=True)
        except grpc_helper.RpcException as e:
            if e.rc == ResultCode.ERROR_PORT_BUSY:
                print("BUSY %d" % port, flush=True)
                os._exit(3)
            raise

    def stop_on_stdin():
        for line in sys.stdin:
            if line.strip() == "shutdown":
                break
        srv.shutdown()

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    threading.Thread(target=stop_on_stdin, daemon=True).start()
    print("READY %d" % port, flush=True)
    srv.wait_shutdown()
    if kind == "ours":
        srv.close()
    print("STOPPED", flush=True)
    sys.stdout.flush()
    os._exit(0)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


class ServerProcess(object):
    """A server subprocess with a temporary workspace; stop() ends it and removes the
    folder (idempotent)."""

    def __init__(self, kind):
        self.kind = kind
        self.tmp = tempfile.mkdtemp(prefix="events-bench-%s-" % kind)
        self.proc = None
        self.port = None
        try:
            for attempt in range(10):
                port = 0 if kind == "ours" else free_port()
                env = dict(os.environ)
                if kind == "ours":
                    env["PYTHONPATH"] = os.pathsep.join(
                        [BINDING] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
                else:
                    env["PYTHONPATH"] = ensure_original()
                    env.pop("GRPCHELPER_LIBRARY", None)
                    env["PYTHONWARNINGS"] = "ignore:pkg_resources is deprecated as an API:UserWarning"
                self.stderr = open(os.path.join(self.tmp, "server.stderr"), "w+")
                self.proc = subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "--serve", kind,
                     "--workspace", os.path.join(self.tmp, "wks"), "--port", str(port)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                    env=env, cwd=self.tmp)
                _live.add(self)
                line = self._read_line(60.0)
                if line.startswith("READY "):
                    self.port = int(line.split()[1])
                    return
                if line.startswith("BUSY "):
                    self._end()
                    continue
                raise RuntimeError("%s server said %r; stderr:\n%s" % (kind, line, self._err()))
            raise RuntimeError("%s server: no free port in 10 tries" % kind)
        except BaseException:
            self.stop()
            raise

    def _err(self):
        try:
            self.stderr.flush()
            self.stderr.seek(0)
            return self.stderr.read()[-3000:]
        except (OSError, ValueError):
            return ""

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
                if b"\n" in buf:
                    return buf.split(b"\n", 1)[0].decode(errors="replace")
            elif self.proc.poll() is not None:
                break
        raise RuntimeError("%s server did not start (exit status %s); stderr:\n%s"
                           % (self.kind, self.proc.poll(), self._err()))

    def cpu_seconds(self):
        """utime + stime of the server process so far."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(CLK_TCK)

    def rss_mib(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return None

    def _end(self):
        p = self.proc
        if p is None:
            return None
        clean = False
        if p.poll() is None:
            try:
                p.stdin.write(b"shutdown\n")
                p.stdin.flush()
                p.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                p.wait(30)
                clean = True
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        try:
            self.stderr.close()
        except (OSError, ValueError):
            pass
        self.proc = None
        return clean and p.returncode == 0

    def stop(self):
        """Graceful stop ("shutdown" on stdin, then SIGTERM, SIGKILL); True if it was clean."""
        clean = self._end()
        shutil.rmtree(self.tmp, ignore_errors=True)
        _live.discard(self)
        return clean

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


_live = set()


# ====================================================================== client processes
# Run under multiprocessing's "spawn": they import grpchelper from bindings/python (the
# parent's sys.path), never the original.

def _client_imports():
    if BINDING not in sys.path:
        sys.path.insert(0, BINDING)
    import grpchelper
    from grpchelper.api import events_pb2
    return grpchelper, events_pb2


def _event_bytes(events_pb2):
    ev = events_pb2.Event(name=EVENT_NAME,
                          properties=[events_pb2.EventProperty(name="source", value="events_bench")])
    return ev.SerializeToString()


def _rusage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class _Listener(object):
    """One listen stream read on a thread of its own."""

    def __init__(self, channel, events_pb2, mode, prefix=None):
        self.pb = events_pb2
        self.mode = mode                    # "count" or "latency"
        self.prefix = prefix
        self.client_id = None
        self.count = 0                      # events received
        self.first = None                   # perf_counter of the first / last event
        self.last = None
        self.other = []                     # unexpected messages (parsed)
        self.keepalives = 0
        self.latencies = []                 # (send_ns, latency_ns), latency mode
        self.error = None
        self.ended_ok = False
        self.marker_at = None               # perf_counter when END_NAME arrived
        self.ready = threading.Event()
        self.call = channel.unary_stream(LISTEN)(self.pb.EventFilter().SerializeToString(),
                                                 metadata=API_MD)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        clock = time.perf_counter
        try:
            it = iter(self.call)
            st = self.pb.EventStatus.FromString(next(it))
            self.client_id = st.client_id
            if st.r.code or not st.client_id:
                raise RuntimeError("first message %r" % st)
            self.ready.set()
            if self.mode == "count":
                prefix = self.prefix
                n = 0
                for raw in it:
                    if raw.startswith(prefix):
                        n += 1
                        self.count = n
                        self.last = clock()
                        if n == 1:
                            self.first = self.last
                    else:
                        self._unexpected(raw)
            else:
                now_ns = time.perf_counter_ns
                lat = self.latencies
                for raw in it:
                    t = now_ns()
                    st = self.pb.EventStatus.FromString(raw)
                    if st.event.name == EVENT_NAME:
                        sent = int(st.event.properties[0].value)
                        lat.append((sent, t - sent))
                        self.count += 1
                        self.last = clock()
                    else:
                        self._unexpected(raw)
            self.ended_ok = True
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            self.ready.set()

    def _unexpected(self, raw):
        st = self.pb.EventStatus.FromString(raw)
        if not st.event.name and not st.r.code:
            self.keepalives += 1
        elif st.event.name == WARMUP_NAME:
            pass
        elif st.event.name == END_NAME:
            self.marker_at = time.perf_counter()
        else:
            self.other.append(str(st)[:200])


def _open_listeners(grpchelper, events_pb2, port, n, mode, prefix=None, timeout=60.0):
    channels = []
    listeners = []
    for i in range(n):
        if i % STREAMS_PER_CHANNEL == 0:
            channels.append(grpchelper.insecure_channel("127.0.0.1:%d" % port))
        listeners.append(_Listener(channels[-1], events_pb2, mode, prefix))
    deadline = time.monotonic() + timeout
    for l in listeners:
        l.ready.wait(max(0.0, deadline - time.monotonic()))
    bad = [l.error or "no first message in %gs" % timeout for l in listeners if l.client_id is None]
    if bad:
        raise RuntimeError("listeners did not start: %s" % bad[:3])
    return channels, listeners


def _wait_markers(listeners, deadline):
    """Waits until every listener got the end marker (events of one queue come in order, so
    it has then got every event sent before it), or its stream ended, or `deadline`."""
    while time.perf_counter() < deadline:
        if all(l.marker_at is not None or not l.thread.is_alive() for l in listeners):
            return True
        time.sleep(0.002)
    return all(l.marker_at is not None for l in listeners)


def _close_listeners(channels, listeners, interrupt, timeout=20.0):
    """interrupt: each listener's queue is interrupted (its stream must end OK); otherwise
    the streams are cancelled (a backlog the server would still deliver first)."""
    if interrupt:
        from grpchelper.api import common_pb2, events_pb2
        call = channels[0].unary_unary(INTERRUPT)
        for l in listeners:
            raw = call(events_pb2.EventInterrupt(client_id=l.client_id).SerializeToString(),
                       metadata=API_MD, timeout=10)
            r = common_pb2.ResultStatus.FromString(raw).r
            if r.code:
                raise RuntimeError("interrupt %d: %s" % (l.client_id, r))
    else:
        for l in listeners:
            l.call.cancel()
    deadline = time.monotonic() + timeout
    for l in listeners:
        l.thread.join(max(0.0, deadline - time.monotonic()))
    still = sum(1 for l in listeners if l.thread.is_alive())
    ended_ok = sum(1 for l in listeners if l.ended_ok)
    for c in channels:
        c.close()
    return still, ended_ok


def listener_main(conn, port, n):
    """A throughput listener process: n listen streams. Protocol with the parent (pipe):
    -> ("ready", ids) ; <- ("go",) ; <- ("drain", deadline) ;
    -> ("counts", ...) ; <- ("stop", interrupt) ; -> ("stopped", ...)"""
    try:
        grpchelper, events_pb2 = _client_imports()
        ev = _event_bytes(events_pb2)
        prefix = b"\x12" + bytes([len(ev)]) + ev
        assert len(ev) < 128
        channels, listeners = _open_listeners(grpchelper, events_pb2, port, n, "count", prefix)
        conn.send(("ready", [l.client_id for l in listeners]))
        msg = conn.recv()
        assert msg[0] == "go"
        cpu0 = _rusage()
        msg = conn.recv()
        assert msg[0] == "drain"
        _wait_markers(listeners, msg[1])
        cpu1 = _rusage()
        conn.send(("counts", {
            "counts": [l.count for l in listeners],
            "markers": sum(1 for l in listeners if l.marker_at is not None),
            "first": min([l.first for l in listeners if l.first] or [0]),
            "last": max([l.last for l in listeners if l.last] or [0]),
            "cpu": cpu1 - cpu0,
            "other": sum(len(l.other) for l in listeners),
            "other_sample": [o for l in listeners for o in l.other][:3],
            "keepalives": sum(l.keepalives for l in listeners),
            "errors": [l.error for l in listeners if l.error][:3],
        }))
        msg = conn.recv()
        assert msg[0] == "stop"
        still, ended_ok = _close_listeners(channels, listeners, interrupt=msg[1])
        conn.send(("stopped", {"still": still, "ended_ok": ended_ok}))
    except BaseException as e:  # noqa: BLE001
        import traceback
        conn.send(("error", "%s\n%s" % (e, traceback.format_exc()[-2000:])))
    finally:
        conn.close()
        sys.stdout.flush()
        os._exit(0)


def _h2load(port, body, concurrency, seconds):
    """h2load sending `body` (one gRPC message) to send() for `seconds` over one connection
    with `concurrency` streams; (succeeded, started, seconds measured, cpu seconds, output)."""
    cmd = ["h2load", "-c1", "-t1", "-m%d" % concurrency, "-D%g" % seconds, "-d", body,
           "-H", "content-type: application/grpc", "-H", "te: trailers",
           "-H", "api_version: %s" % API_MD[0][1], "http://127.0.0.1:%d%s" % (port, SEND)]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    out = []
    reader = threading.Thread(target=lambda: out.append(p.stdout.read()), daemon=True)
    reader.start()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    reader.join(10)
    text = out[0].decode(errors="replace") if out else ""
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored", text)
    f = re.search(r"finished in ([0-9.]+)(m?s)", text)
    if p.returncode != 0 or not m or not f:
        raise RuntimeError("h2load failed (%s):\n%s" % (p.returncode, text[-2000:]))
    if int(m.group(5)) or int(m.group(6)):
        raise RuntimeError("h2load: failed or errored requests:\n%s" % text[-2000:])
    measured = float(f.group(1)) / (1000.0 if f.group(2) == "ms" else 1.0)
    return (int(m.group(4)), int(m.group(2)), measured, ru.ru_utime + ru.ru_stime, text)


def sender_main(conn, port, mode, concurrency, seconds, expected_queues):
    """The throughput sender process: checks `inspect`, then on ("go",) sends for
    `seconds` — mode "h2load": h2load with `concurrency` streams on one connection; mode
    "python": `concurrency` threads making blocking calls on one grpchelper channel — then
    sends the end marker; reports ("sent", ...)."""
    try:
        grpchelper, events_pb2 = _client_imports()
        from grpchelper.api import common_pb2
        ev = _event_bytes(events_pb2)
        channel = grpchelper.insecure_channel("127.0.0.1:%d" % port)
        ids = events_pb2.EventQueueStatus.FromString(
            channel.unary_unary(INSPECT)(b"", metadata=API_MD, timeout=10)).client_ids
        if len(ids) != expected_queues:
            raise RuntimeError("inspect lists %d queues, expected %d" % (len(ids), expected_queues))
        send = channel.unary_unary(SEND)
        tmp = tempfile.mkdtemp(prefix="events-bench-send-")
        body = os.path.join(tmp, "send.grpc")
        with open(body, "wb") as f:
            f.write(b"\x00" + len(ev).to_bytes(4, "big") + ev)   # gRPC framing, uncompressed
        counts = [0] * concurrency
        errors = []
        start = threading.Event()
        times = [None] * concurrency
        conn.send(("ready", len(ids)))
        msg = conn.recv()
        assert msg[0] == "go"

        def worker(i):
            start.wait()
            clock = time.perf_counter
            end = t_start + seconds
            n = 0
            try:
                while True:
                    raw = send(ev, metadata=API_MD)
                    if raw:
                        r = common_pb2.ResultStatus.FromString(raw).r
                        if r.code:
                            errors.append(str(r)[:200])
                            break
                    n += 1
                    counts[i] = n
                    if clock() >= end:
                        break
            except BaseException as e:  # noqa: BLE001
                errors.append("%s: %s" % (type(e).__name__, e))
            times[i] = clock()

        cpu0 = _rusage()
        extra_cpu = 0.0
        if mode == "h2load":
            t_start = time.perf_counter()
            sent, started, measured, extra_cpu, _ = _h2load(port, body, concurrency, seconds)
            t_end = time.perf_counter()
        else:
            ts = [threading.Thread(target=worker, args=(i,), daemon=True)
                  for i in range(concurrency)]
            for t in ts:
                t.start()
            t_start = time.perf_counter()
            start.set()
            for t in ts:
                t.join()
            t_end = max(times)
            sent = started = sum(counts)
            measured = t_end - t_start
        cpu1 = _rusage()
        # the end marker: once a listener has it, it has every event sent before
        raw = send(events_pb2.Event(name=END_NAME).SerializeToString(), metadata=API_MD, timeout=30)
        if raw and common_pb2.ResultStatus.FromString(raw).r.code:
            errors.append("end marker: %s" % common_pb2.ResultStatus.FromString(raw).r)
        conn.send(("sent", {"sent": sent, "started": started, "t_start": t_start, "t_end": t_end,
                            "measured": measured, "cpu": cpu1 - cpu0 + extra_cpu,
                            "errors": errors[:3]}))
        channel.close()
        shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as e:  # noqa: BLE001
        import traceback
        conn.send(("error", "%s\n%s" % (e, traceback.format_exc()[-2000:])))
    finally:
        conn.close()
        sys.stdout.flush()
        os._exit(0)


def latency_main(conn, port, n, rate, seconds, warmup, drain, senders):
    """The latency process: n listeners and the paced senders (`senders` threads taking the
    ticks in turn, blocking calls on one grpchelper channel) in one process."""
    try:
        grpchelper, events_pb2 = _client_imports()
        from grpchelper.api import common_pb2
        channels, listeners = _open_listeners(grpchelper, events_pb2, port, n, "latency")
        send_channel = grpchelper.insecure_channel("127.0.0.1:%d" % port)
        send = send_channel.unary_unary(SEND)
        # one warm-up send on the sending channel (connects it); its deliveries are dropped
        send(events_pb2.Event(name=WARMUP_NAME).SerializeToString(), metadata=API_MD, timeout=10)
        conn.send(("ready", [l.client_id for l in listeners]))
        msg = conn.recv()
        assert msg[0] == "go"
        total = int(rate * (warmup + seconds))
        period = 1e9 / rate
        clock = time.perf_counter_ns
        Event, Prop = events_pb2.Event, events_pb2.EventProperty
        errors = []
        late = [0] * senders
        last_send = [0] * senders
        go = threading.Event()

        def pace(k):
            # ticks k, k + senders, ...: a blocking send each, at its time (late: sent at once)
            go.wait()
            try:
                for i in range(k, total, senders):
                    target = t0 + int(i * period)
                    now = clock()
                    if target > now:
                        time.sleep((target - now) / 1e9)
                    elif now - target > 2_000_000:
                        late[k] += 1                 # more than 2 ms late
                    data = Event(name=EVENT_NAME, properties=[Prop(name="t", value=str(clock()))])
                    raw = send(data.SerializeToString(), metadata=API_MD, timeout=30)
                    if raw and common_pb2.ResultStatus.FromString(raw).r.code:
                        errors.append(str(common_pb2.ResultStatus.FromString(raw).r)[:200])
                        return
            except BaseException as e:  # noqa: BLE001
                errors.append("%s: %s" % (type(e).__name__, e))
            last_send[k] = clock()

        threads = [threading.Thread(target=pace, args=(k,), daemon=True) for k in range(senders)]
        for t in threads:
            t.start()
        cpu0 = _rusage()
        w0 = time.perf_counter()
        t0 = clock() + 20_000_000
        measured_from = t0 + int(warmup * 1e9)
        go.set()
        for t in threads:
            t.join()
        t_last_send = max(last_send)
        behind = sum(late)
        send(Event(name=END_NAME).SerializeToString(), metadata=API_MD, timeout=30)
        _wait_markers(listeners, time.perf_counter() + drain)
        w1 = time.perf_counter()
        cpu1 = _rusage()
        lat = sorted(l_ns for l in listeners for (s, l_ns) in l.latencies if s >= measured_from)
        measured_events = sum(1 for i in range(total) if t0 + int(i * period) >= measured_from)
        conn.send(("latency", {
            "sent": total, "send_seconds": (t_last_send - t0) / 1e9, "late_sends": behind,
            "errors": errors[:3],
            "received": sum(l.count for l in listeners),
            "missing": total * n - sum(l.count for l in listeners),
            "measured": len(lat), "measured_expected": measured_events * n,
            "p50": lat[len(lat) // 2] / 1e6 if lat else None,
            "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e6 if lat else None,
            "max": lat[-1] / 1e6 if lat else None,
            "cpu": cpu1 - cpu0, "wall": w1 - w0,
            "listener_errors": [l.error for l in listeners if l.error][:3],
            "other": [o for l in listeners for o in l.other][:3],
        }))
        send_channel.close()
        msg = conn.recv()
        assert msg[0] == "stop"
        still, ended_ok = _close_listeners(channels, listeners, interrupt=msg[1])
        conn.send(("stopped", {"still": still, "ended_ok": ended_ok}))
    except BaseException as e:  # noqa: BLE001
        import traceback
        conn.send(("error", "%s\n%s" % (e, traceback.format_exc()[-2000:])))
    finally:
        conn.close()
        sys.stdout.flush()
        os._exit(0)


# ====================================================================== orchestration

class Child(object):
    """A client process (multiprocessing, spawn) and its end of the pipe."""

    def __init__(self, target, *args):
        ctx = mp.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(child_conn,) + args, daemon=True)
        self.proc.start()
        child_conn.close()
        _children.add(self)

    def send(self, *msg):
        self.conn.send(msg)

    def recv(self, expect, timeout):
        if not self.conn.poll(timeout):
            raise RuntimeError("client process: no %r within %gs" % (expect, timeout))
        msg = self.conn.recv()
        if msg[0] == "error":
            raise RuntimeError("client process failed: %s" % msg[1])
        if msg[0] != expect:
            raise RuntimeError("client process said %r, expected %r" % (msg[0], expect))
        return msg[1]

    def end(self):
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()
        _children.discard(self)


_children = set()


def machine_busy():
    """(busy, total) jiffies of the whole machine so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle, sum(v[:8])


def throughput_row(server, n, args):
    per = max(1, args.per_process)
    sizes = [per] * (n // per) + ([n % per] if n % per else [])
    listeners = [Child(listener_main, server.port, k) for k in sizes]
    sender = None
    try:
        ids = []
        for c in listeners:
            ids += c.recv("ready", 90)
        if sorted(ids) != list(range(1, n + 1)):
            raise RuntimeError("client ids %s" % sorted(ids))
        sender = Child(sender_main, server.port, args.sender, args.concurrency, args.seconds, n)
        sender.recv("ready", 60)
        time.sleep(0.2)
        cpu_s0, busy0 = server.cpu_seconds(), machine_busy()
        for c in listeners:
            c.send("go")
        sender.send("go")
        sent = sender.recv("sent", args.seconds + 60)
        if sent["errors"]:
            raise RuntimeError("send errors: %s" % sent["errors"])
        for c in listeners:
            c.send("drain", sent["t_end"] + args.drain)
        got = [c.recv("counts", args.drain + 60) for c in listeners]
        cpu_s1, busy1 = server.cpu_seconds(), machine_busy()
        rss = server.rss_mib()
        counts = [x for g in got for x in g["counts"]]
        drained = sum(g["markers"] for g in got) == n
        delivered = sum(counts)
        last = max(g["last"] for g in got)
        span = (last if last else time.perf_counter()) - sent["t_start"]
        wall = max(span, sent["t_end"] - sent["t_start"])
        # Every send puts the event in every queue: with every marker in, all counts are
        # equal, between the sends answered OK and the sends started (h2load stops with
        # some in flight, which the server may have taken).
        accepted = max([sent["sent"]] + counts)
        missing = sum(accepted - c for c in counts)
        consistent = drained and min(counts) == max(counts) and \
            sent["sent"] <= accepted <= sent["started"]
        row = {
            "n": n, "procs": len(sizes), "sent": accepted, "answered": sent["sent"],
            "started": sent["started"], "sent_s": sent["sent"] / sent["measured"],
            "delivered": delivered, "delivered_s": delivered / wall if wall > 0 else 0.0,
            "missing": missing, "drained": drained, "consistent": consistent,
            "drain": max(0.0, last - sent["t_end"]) if last else None,
            "client_cpu": (sum(g["cpu"] for g in got) + sent["cpu"]) / wall,
            "client_cpu_max": max([g["cpu"] for g in got] + [sent["cpu"]]) / wall,
            "sender_cpu": sent["cpu"] / wall,
            "server_cpu": (cpu_s1 - cpu_s0) / wall,
            "machine": (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * (os.cpu_count() or 1),
            "other": sum(g["other"] for g in got),
            "other_sample": [s for g in got for s in g["other_sample"]][:2],
            "errors": [e for g in got for e in g["errors"]][:2],
            "rss": rss,
        }
        # interrupt (clean end of every stream) only when nothing is left queued
        for c in listeners:
            c.send("stop", drained)
        stopped = [c.recv("stopped", 60) for c in listeners]
        row["still"] = sum(s["still"] for s in stopped)
        row["ended_ok"] = sum(s["ended_ok"] for s in stopped)
        row["interrupted"] = drained
        return row
    finally:
        for c in listeners + ([sender] if sender else []):
            c.end()


def latency_row(server, args, rate):
    n = args.latency_listeners
    c = Child(latency_main, server.port, n, rate, args.seconds, 0.5, args.drain,
              args.latency_senders)
    try:
        ids = c.recv("ready", 90)
        if sorted(ids) != list(range(1, n + 1)):
            raise RuntimeError("client ids %s" % sorted(ids))
        cpu_s0, busy0 = server.cpu_seconds(), machine_busy()
        c.send("go")
        r = c.recv("latency", args.seconds + 0.5 + args.drain * 2 + 60)
        cpu_s1, busy1 = server.cpu_seconds(), machine_busy()
        r["server_cpu"] = (cpu_s1 - cpu_s0) / r["wall"]
        r["client_cpu"] = r["cpu"] / r["wall"]
        r["machine"] = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * (os.cpu_count() or 1)
        r["n"] = n
        r["rate"] = rate
        c.send("stop", r["missing"] == 0)
        s = c.recv("stopped", 60)
        r["still"], r["ended_ok"], r["interrupted"] = s["still"], s["ended_ok"], r["missing"] == 0
        return r
    finally:
        c.end()


def run(args):
    """Every row of every server, --repeat times (repetition 1 of everything, then 2, ...,
    so slow drift of the machine's load spreads over all rows); {key: [row, ...]}."""
    results = {}
    for i in range(args.repeat):
        if args.repeat > 1:
            log("repetition %d of %d" % (i + 1, args.repeat))
        for kind in args.servers:
            run_server_rows(args, kind, results)
    return results


def run_server_rows(args, kind, results):
    for n in args.listeners:
        log("%-8s throughput, %d listener(s): starting the server" % (kind, n))
        server = ServerProcess(kind)
        try:
            row = throughput_row(server, n, args)
        finally:
            row_clean = server.stop()
        row["clean_stop"] = row_clean
        results.setdefault((kind, "tp", n), []).append(row)
        log("%-8s %3d listener(s): sent %s/s (%d answered, %d taken, %d started), delivered "
            "%s/s, missing %d%s, drain %s s; cpu: clients %.2f (busiest %.2f, sender %.2f) "
            "server %.2f machine %.2f; server RSS %s MiB; streams ended OK %d/%d%s; server "
            "stop %s" % (
                kind, n, fmt_int(row["sent_s"]), row["answered"], row["sent"], row["started"],
                fmt_int(row["delivered_s"]), row["missing"],
                "" if row["drained"] else " (NOT DRAINED)",
                "%.2f" % row["drain"] if row["drain"] is not None else "-",
                row["client_cpu"], row["client_cpu_max"], row["sender_cpu"],
                row["server_cpu"], row["machine"], "%.0f" % row["rss"] if row["rss"] else "?",
                row["ended_ok"], n, "" if row["interrupted"] else " (cancelled)",
                "clean" if row_clean else "NOT CLEAN"))
        if row["other"] or row["errors"]:
            log("   unexpected messages %d %s, listener errors %s"
                % (row["other"], row["other_sample"], row["errors"]))
    for rate in args.latency_rates:
        log("%-8s latency, %d listeners at %d events/s: starting the server"
            % (kind, args.latency_listeners, rate))
        server = ServerProcess(kind)
        try:
            r = latency_row(server, args, rate)
        finally:
            r_clean = server.stop()
        r["clean_stop"] = r_clean
        results.setdefault((kind, "lat", rate), []).append(r)
        log("%-8s latency at %d/s: p50 %s ms p99 %s ms max %s ms, %d sent in %.2fs (%d more "
            "than 2 ms late), missing %d, cpu client %.2f server %.2f machine %.2f; streams "
            "ended OK %d/%d; server stop %s%s"
            % (kind, rate, fmt_ms(r["p50"]), fmt_ms(r["p99"]), fmt_ms(r["max"]), r["sent"],
               r["send_seconds"], r["late_sends"], r["missing"], r["client_cpu"],
               r["server_cpu"], r["machine"], r["ended_ok"], r["n"],
               "clean" if r_clean else "NOT CLEAN",
               (", errors %s %s %s" % (r["errors"], r["listener_errors"], r["other"]))
               if r["errors"] or r["listener_errors"] or r["other"] else ""))


def median_rows(all_results):
    """{key: the repetition whose main figure (delivered/s, latency p99) is the median}."""
    out = {}
    for key, rows in all_results.items():
        metric = "delivered_s" if key[1] == "tp" else "p99"
        ok = sorted((r for r in rows if r.get(metric) is not None), key=lambda r: r[metric])
        out[key] = ok[(len(ok) - 1) // 2] if ok else rows[0]
    return out


# ====================================================================== report

def fmt_int(x):
    if x is None:
        return "-"
    return "{:,}".format(int(round(x))).replace(",", " ")


def fmt_ms(x):
    if x is None:
        return "-"
    return "%.2f" % x if x < 100 else "%.0f" % x


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    r = a / b
    return "%.1f×" % r if r < 100 else "%.0f×" % r


def machine_lines():
    import grpc
    import grpchelper
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        rev = "?"
    lib = grpchelper._ffi.lib._name
    h2 = "-"
    if shutil.which("h2load"):
        try:
            h2 = subprocess.run(["h2load", "--version"], capture_output=True, text=True,
                                timeout=10).stdout.strip().split()[-1]
        except (OSError, subprocess.SubprocessError, IndexError):
            h2 = "?"
    return [
        "machine : nproc %d, kernel %s, %s, load avg %s" % (
            os.cpu_count(), platform.release(), cpu,
            " ".join(open("/proc/loadavg").read().split()[:3])),
        "versions: Python %s, grpcio %s, h2load %s" % (platform.python_version(),
                                                       grpc.__version__, h2),
        "          ours: grpchelper %s (%s) on libgrpchelper %s (%s), tree %s" % (
            grpchelper.__version__, os.path.relpath(BINDING, ROOT) if BINDING.startswith(ROOT)
            else BINDING, grpchelper.library_version(), lib, rev),
        "          original: grpc-helper %s (%s)" % (ORIGINAL_VERSION, original_dir()),
    ]


def print_report(args, all_results, header, started):
    results = median_rows(all_results)
    print()
    print("events service: ours vs the original grpc-helper %s — %s" % (ORIGINAL_VERSION, started))
    for line in header:
        print(line)
    print("run     : %s" % " ".join(["python3", "bench/events_bench.py"] + sys.argv[1:]))
    print("shape   : throughput: %gs of sends (%s), listeners in processes of <= %d streams, "
          "drain <= %gs;" % (
              args.seconds, "h2load, 1 connection x %d streams" % args.concurrency
              if args.sender == "h2load" else "%d Python threads, one grpchelper channel"
              % args.concurrency, args.per_process, args.drain))
    print("          latency: %d listeners + %d paced sender threads in one process, %gs after "
          "0.5s;" % (args.latency_listeners, args.latency_senders, args.seconds))
    print("          servers: a fresh one per row, config %s" % json.dumps(SERVER_CONFIG))
    print("load avg at the end: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    print()
    w = 26
    hdr = ("%-*s| %-8s | %9s %11s %8s %6s | %-28s | %s"
           % (w, "row", "server", "sent/s", "delivered/s", "missing", "drain",
              "cpu: clients (max) srv  mach", "ours÷orig"))
    print(hdr)
    print("-" * len(hdr))
    for n in args.listeners:
        for kind in args.servers:
            r = results.get((kind, "tp", n))
            if r is None:
                continue
            rt = ""
            if kind == "ours" and ("original", "tp", n) in results:
                rt = ratio(r["delivered_s"], results[("original", "tp", n)]["delivered_s"])
            print("%-*s| %-8s | %9s %11s %8s %6s | %9.2f (%4.2f) %4.2f %4.2f | %s" % (
                w, "throughput, %d listener%s" % (n, "s" if n > 1 else ""), kind,
                fmt_int(r["sent_s"]), fmt_int(r["delivered_s"]), fmt_int(r["missing"]) +
                ("" if r["drained"] else "*"),
                "%.2f" % r["drain"] if r["drain"] is not None else "-",
                r["client_cpu"], r["client_cpu_max"], r["server_cpu"], r["machine"], rt))
    if args.repeat > 1:
        print("delivered/s of each of the %d repetitions (the table: the median one):"
              % args.repeat)
        for n in args.listeners:
            for kind in args.servers:
                rows = all_results.get((kind, "tp", n)) or []
                print("  %-24s %-8s %s" % ("throughput, %d" % n, kind, "  ".join(
                    fmt_int(r["delivered_s"]) for r in rows)))
            ours_rows = all_results.get(("ours", "tp", n)) or []
            orig_rows = all_results.get(("original", "tp", n)) or []
            if ours_rows and orig_rows:
                print("  %-24s %-8s %s" % ("", "ratio", "  ".join(
                    ratio(a["delivered_s"], b["delivered_s"])
                    for a, b in zip(ours_rows, orig_rows))))
    if args.latency_rates:
        print()
        hdr2 = ("%-*s| %-8s | %8s %8s %8s | %7s %8s | %-24s | %s"
                % (w, "row", "server", "p50 ms", "p99 ms", "max ms", "sent/s", "missing",
                   "cpu: client  srv  mach", "orig÷ours p50 p99"))
        print(hdr2)
        print("-" * len(hdr2))
        for rate in args.latency_rates:
            for kind in args.servers:
                r = results.get((kind, "lat", rate))
                if r is None:
                    continue
                rt = ""
                o = results.get(("original", "lat", rate))
                if kind == "ours" and o is not None:
                    rt = "%s %s" % (ratio(o["p50"], r["p50"]), ratio(o["p99"], r["p99"]))
                print("%-*s| %-8s | %8s %8s %8s | %7s %8s | %12.2f %4.2f %4.2f | %s" % (
                    w, "latency, %d lst, %d ev/s" % (r["n"], rate), kind, fmt_ms(r["p50"]),
                    fmt_ms(r["p99"]), fmt_ms(r["max"]), fmt_int(r["sent"] / r["send_seconds"]),
                    fmt_int(r["missing"]), r["client_cpu"], r["server_cpu"], r["machine"], rt))
    if args.repeat > 1 and args.latency_rates:
        print("p50 / p99 ms of each of the %d repetitions (the table: the median p99):"
              % args.repeat)
        for rate in args.latency_rates:
            for kind in args.servers:
                rows = all_results.get((kind, "lat", rate)) or []
                print("  %-24s %-8s %s" % ("latency, %d ev/s" % rate, kind, "  ".join(
                    "%s/%s" % (fmt_ms(r["p50"]), fmt_ms(r["p99"])) for r in rows)))
    print()
    print("sent/s: sends answered OK per second; delivered/s: events received (keep-alives "
          "excluded), summed over the listeners,")
    print("  per second from the first send to the last delivery; missing: listeners x events "
          "the server took - events received")
    print("  (*: not drained in time); drain: s from the last send to the last delivery.")
    print("cpu: cores used over the row by all client processes (the busiest one), the server "
          "process, the whole machine (of %d)." % (os.cpu_count() or 1))
    print("latency: send (perf_counter_ns in the event) to receive, every delivery of the events "
          "after the 0.5 s warm-up;")
    print("  sent/s: the rate achieved (a server answering slower than the pace makes it lower); "
          "missing deliveries are not in the percentiles.")
    notes = []
    for key, r in sorted(((k, r) for k, rows in all_results.items() for r in rows),
                         key=lambda kv: str(kv[0])):
        if not r.get("clean_stop"):
            notes.append("%s: the server did not stop cleanly" % (key,))
        if r.get("still"):
            notes.append("%s: %d listener thread(s) still running after the stop" % (key, r["still"]))
        n = r.get("n")
        if r.get("interrupted") and r.get("ended_ok") != n:
            notes.append("%s: only %s of %s streams ended OK after interrupt" % (key, r.get("ended_ok"), n))
        if r.get("other") and key[1] == "tp":
            notes.append("%s: %d unexpected messages %s" % (key, r["other"], r.get("other_sample")))
        if key[1] == "tp" and not r.get("consistent"):
            notes.append("%s: listeners' counts differ or are outside [answered, started]" % (key,))
    for n in notes:
        print("NOTE: " + n)
    ours, orig = results.get(("ours", "tp", 10)), results.get(("original", "tp", 10))
    lat = results.get(("ours", "lat", 1000))
    if ours and orig and orig["delivered_s"]:
        print("goal 1 (>= 20x the original's delivered events/s at 10 listeners): %.1fx — %s"
              % (ours["delivered_s"] / orig["delivered_s"],
                 "met" if ours["delivered_s"] >= 20 * orig["delivered_s"] and ours["missing"] == 0
                 else "NOT met"))
    if lat and args.latency_listeners == 10:
        print("goal 2 (p99 < 5 ms at 1 000 events/s, 10 listeners): p99 %s ms — %s"
              % (fmt_ms(lat["p99"]), "met" if lat["p99"] is not None and lat["p99"] < 5
                 and lat["missing"] == 0 else "NOT met"))


# ====================================================================== main

def main():
    ap = argparse.ArgumentParser(usage=argparse.SUPPRESS, description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 add_help=False)
    ap.add_argument("-h", "--help", action="help", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--drain", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--listeners", default="1,10,100", help=argparse.SUPPRESS)
    ap.add_argument("--latency-rates", default="1000,100", help=argparse.SUPPRESS)
    ap.add_argument("--latency-listeners", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--latency-senders", type=int, default=8, help=argparse.SUPPRESS)
    ap.add_argument("--sender", choices=("h2load", "python"), default=None, help=argparse.SUPPRESS)
    ap.add_argument("--concurrency", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--per-process", type=int, default=25, help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--servers", default="ours,original", help=argparse.SUPPRESS)
    ap.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    ap.add_argument("--workspace", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.serve:
        return serve(args.serve, args.workspace, args.port)

    if args.seconds is None:
        args.seconds = 1.0 if args.quick else 5.0
    if args.drain is None:
        args.drain = 3.0 if args.quick else 10.0
    try:
        args.listeners = [int(x) for x in args.listeners.split(",") if x.strip()]
        args.latency_rates = [int(x) for x in args.latency_rates.split(",") if x.strip()]
    except ValueError:
        ap.error("--listeners and --latency-rates take comma-separated lists of numbers")
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if args.sender is None:
        args.sender = "h2load" if shutil.which("h2load") else "python"
    elif args.sender == "h2load" and not shutil.which("h2load"):
        ap.error("h2load is not installed (apt-get install nghttp2-client), use --sender python")
    if args.concurrency is None:
        args.concurrency = 64 if args.sender == "h2load" else 4
    if any(s not in KINDS for s in args.servers) or not args.servers:
        ap.error("--servers takes ours and/or original")
    if not args.listeners and not args.latency_rates:
        ap.error("nothing to measure")
    if args.seconds <= 0 or args.drain < 0 or any(n <= 0 for n in args.listeners) \
            or args.concurrency <= 0 or args.repeat <= 0 or args.per_process <= 0 or args.latency_listeners <= 0 \
            or any(r <= 0 for r in args.latency_rates) or args.latency_senders <= 0:
        ap.error("counts and durations must be positive")

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    sys.path.insert(0, BINDING)
    try:
        if "original" in args.servers:
            ensure_original()
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        header = machine_lines()
        t0 = time.monotonic()
        results = run(args)
        log("total %.0f s" % (time.monotonic() - t0))
        print_report(args, results, header, started)
        return 0
    finally:
        for c in list(_children):
            if c.proc.is_alive():
                c.proc.kill()
            c.end()
        for s in list(_live):
            s.kill()
            s.stop()


if __name__ == "__main__":
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
