#!/usr/bin/env python3
"""Soak load and sampler for bench/soak.sh (run that; it starts and stops the server).

    python3 bench/soak.py --port P --server-pid PID [--seconds S] [--procs N]
                          [--threads N] [--interval S] [--warmup S]
                          [--rss-bound-mib M] [--rss-bound-pct P]
                          [--reconnect-every N] [--report FILE]

Drives a running echo server (examples/c/echo_server: /grpchelper.examples.Echo/Unary,
ClientStream, ServerStream, Bidi on raw bytes) at saturation for S seconds from --procs
client processes (default 4) of --threads threads each (default 3). Every thread has a
grpcio channel of its own, with a local subchannel pool (so procs x threads HTTP/2
connections), and loops over the four call patterns in a shuffled order, as fast as the
server answers:

  unary          one message of a varied size (0 B .. 1 MiB, mostly <= 4 KiB); the
                 response must be the same bytes
  client stream  0..50 messages (each <= 64 KiB); the response must be them joined by ","
  server stream  "COUNT:TEXT" (COUNT 0..1000, TEXT 0..400 printable characters); the
                 responses must be exactly "TEXT 0" .. "TEXT COUNT-1"
  bidi           0..50 messages (each <= 256 KiB), ping-pong: the next one is sent when the
                 echo of the previous one has arrived and matched

Every payload starts with a tag unique to the call (process.thread.sequence), so a response
of another call would not match. 30 % of the calls carry "x-echo" and "x-echo-trailer"
metadata, which must come back as initial and trailing metadata. A few calls end in an
error on purpose and must end in exactly that error ("expected errors", not failures):
about 2 % of the longer server streams and bidi calls are cancelled by the client half way,
about 1 % of the server-stream requests are invalid (INVALID_ARGUMENT). Every call has a
30 s deadline. Anything else -- a wrong byte, a missing or extra message, wrong metadata, an
unexpected status, a deadline -- is a failed call; the first 3 of each pattern in each
process are printed. Each thread replaces its channel by a new one (a new connection) every
--reconnect-every iterations (default 200, 0 = never), so connection teardown is soaked
too.

Every --interval seconds (default 10, plus t = 0 -- clients connected, load not started --
and t = S) it samples the server's VmRSS, Threads, open fds (/proc/PID/status,
/proc/PID/fd) and CPU (/proc/PID/stat), and the calls completed and failed so far, one
line per sample. It also samples the server before any client connects ("before") and
--settle seconds (default 10) after the clients have stopped ("after": connections closed,
is the memory given back?). At the end: a summary, and a table with an RSS bar per sample to paste into bench/RESULTS.md
(also written to --report, default bench/.out/soak-report.md).

Pass/fail (exit 0 / 1; 130 when interrupted): every call as expected (0 failed), the server
alive throughout, every client process exiting cleanly, and RSS at the end no more than
max(--rss-bound-mib (16), --rss-bound-pct (20) % of it) above RSS at the first sample at or
after the warm-up (--warmup, default min(60 s, 10 % of S)). Standard library and grpcio only.
"""

import argparse
import ctypes
import multiprocessing as mp
import os
import queue
import random
import signal
import sys
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
SERVICE = "/grpchelper.examples.Echo/"

# Counter slots, one row per client thread (written only by that thread).
F_UNARY, F_CSTREAM, F_SSTREAM, F_BIDI, F_EXPECTED, F_FAILED, F_MSGS, F_BYTES, F_RECONNECTS = range(9)
NFIELDS = 9
PATTERNS = ("unary", "client stream", "server stream", "bidi")

# Message sizes and their weights: mostly small, now and then large.
SIZES = (0, 1, 10, 100, 1000, 4096, 16384, 65536, 262144, 1048576)
WEIGHTS = (4, 6, 20, 20, 20, 12, 8, 5, 3, 2)
STREAM_COUNTS = (0, 1, 2, 5, 10, 20, 50)
STREAM_COUNT_WEIGHTS = (5, 20, 20, 20, 15, 12, 8)
SS_COUNTS = (0, 1, 5, 20, 100, 500, 1000)
SS_COUNT_WEIGHTS = (5, 25, 25, 20, 15, 7, 3)
TEXT_LENGTHS = (0, 1, 10, 100, 400)
TEXT_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :,.-_/%!?"
DEADLINE = 30.0
MAX_ERRORS_REPORTED = 3  # failures printed per call pattern and client process


class Failure(Exception):
    pass


# ----------------------------------------------------------------------------- client side

def _die_with_parent():
    """Linux: SIGKILL this process when its parent dies (a safety net for a killed run)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Worker:
    def __init__(self, grpc, target, proc, thread, row, counters, errq, err_budget, rng):
        self.grpc = grpc
        self.target = target
        self.proc = proc
        self.thread = thread
        self.row = row
        self.c = counters
        self.errq = errq
        self.err_budget = err_budget
        self.rng = rng
        self.seq = 0
        self.pool = os.urandom(2 * 1024 * 1024)
        self.channel = None
        self.connect()

    def connect(self):
        if self.channel is not None:
            self.channel.close()
        grpc = self.grpc
        # A subchannel pool of its own: grpcio would otherwise share one connection among
        # the channels of a process that have the same target and options.
        self.channel = grpc.insecure_channel(self.target,
                                             options=[("grpc.use_local_subchannel_pool", 1)])
        grpc.channel_ready_future(self.channel).result(timeout=DEADLINE)
        ch = self.channel
        self.unary = ch.unary_unary(SERVICE + "Unary")
        self.cstream = ch.stream_unary(SERVICE + "ClientStream")
        self.sstream = ch.unary_stream(SERVICE + "ServerStream")
        self.bidi = ch.stream_stream(SERVICE + "Bidi")

    def add(self, field, n=1):
        self.c[self.row * NFIELDS + field] += n

    # -- payloads
    def tag(self):
        self.seq += 1
        return b"%d.%d.%d|" % (self.proc, self.thread, self.seq)

    def size(self, cap=None):
        n = self.rng.choices(SIZES, WEIGHTS)[0]
        return min(n, cap) if cap is not None else n

    def payload(self, n):
        t = self.tag()
        if n <= len(t):
            return t[:n]
        k = n - len(t)
        off = self.rng.randrange(len(self.pool) - k + 1)
        return t + self.pool[off:off + k]

    def metadata(self):
        if self.rng.random() >= 0.3:
            return None
        v = "v-%d.%d.%d" % (self.proc, self.thread, self.seq)
        return (("x-echo", v), ("x-echo-trailer", v + "-t"))

    @staticmethod
    def check_metadata(md, initial, trailing, what):
        if md is None:
            return
        want_i, want_t = md[0][1], md[1][1]
        got_i = [v for k, v in (initial or ()) if k == "x-echo"]
        got_t = [v for k, v in (trailing or ()) if k == "x-echo-trailer"]
        if got_i != [want_i]:
            raise Failure("%s: initial metadata x-echo %r, expected [%r]" % (what, got_i, want_i))
        if got_t != [want_t]:
            raise Failure("%s: trailing metadata x-echo-trailer %r, expected [%r]" % (what, got_t, want_t))

    @staticmethod
    def mismatch(what, got, want):
        i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
        return Failure("%s: response of %d bytes differs from the expected %d bytes at byte %d (got %r, expected %r)"
                       % (what, len(got), len(want), i, got[i:i + 16], want[i:i + 16]))

    # -- the four patterns; each returns True for an expected error, False for OK
    def do_unary(self):
        req = self.payload(self.size())
        md = self.metadata()
        what = "unary %d B" % len(req)
        resp, call = self.unary.with_call(req, timeout=DEADLINE, metadata=md)
        if resp != req:
            raise self.mismatch(what, resp, req)
        self.check_metadata(md, call.initial_metadata(), call.trailing_metadata(), what)
        self.add(F_BYTES, 2 * len(req))
        return False

    def do_cstream(self):
        n = self.rng.choices(STREAM_COUNTS, STREAM_COUNT_WEIGHTS)[0]
        msgs = [self.payload(self.size(65536)) for _ in range(n)]
        md = self.metadata()
        what = "client stream of %d messages" % n
        want = b",".join(msgs)
        resp, call = self.cstream.with_call(iter(msgs), timeout=DEADLINE, metadata=md)
        if resp != want:
            raise self.mismatch(what, resp, want)
        self.check_metadata(md, call.initial_metadata(), call.trailing_metadata(), what)
        self.add(F_MSGS, n)
        self.add(F_BYTES, 2 * len(want))
        return False

    def do_sstream(self):
        rng = self.rng
        tag = self.tag().decode()
        if rng.random() < 0.01:  # invalid request on purpose
            req = rng.choice(("no colon " + tag, "x:" + tag, "1001:" + tag, "-1:" + tag, ":" + tag))
            what = "server stream, invalid request %r" % req
            call = self.sstream(req.encode(), timeout=DEADLINE)
            try:
                for m in call:
                    raise Failure("%s: got a message %r, expected INVALID_ARGUMENT" % (what, m[:40]))
            except self.grpc.RpcError as e:
                if e.code() != self.grpc.StatusCode.INVALID_ARGUMENT:
                    raise Failure("%s: ended with %s (%s), expected INVALID_ARGUMENT" % (what, e.code(), e.details()))
                return True
            raise Failure("%s: ended with OK, expected INVALID_ARGUMENT" % what)
        count = rng.choices(SS_COUNTS, SS_COUNT_WEIGHTS)[0]
        text = tag + "".join(rng.choices(TEXT_CHARS, k=rng.choice(TEXT_LENGTHS)))
        cancel_at = count // 2 if count >= 20 and rng.random() < 0.02 else None
        md = self.metadata()
        what = "server stream %d x %d B" % (count, len(text))
        call = self.sstream(("%d:%s" % (count, text)).encode(), timeout=DEADLINE, metadata=md)
        i = 0
        nbytes = 0
        try:
            for m in call:
                want = ("%s %d" % (text, i)).encode()
                if m != want:
                    raise self.mismatch("%s, message %d" % (what, i), m, want)
                nbytes += len(m)
                i += 1
                if i > count:
                    raise Failure("%s: more than %d messages" % (what, count))
                if cancel_at is not None and i == cancel_at:
                    call.cancel()
        except self.grpc.RpcError as e:
            if cancel_at is not None and e.code() == self.grpc.StatusCode.CANCELLED:
                self.add(F_MSGS, i)
                return True
            raise
        except Failure:
            call.cancel()
            raise
        if cancel_at is not None:
            raise Failure("%s: cancelled after %d messages but ended with OK" % (what, cancel_at))
        if i != count:
            raise Failure("%s: %d messages, expected %d" % (what, i, count))
        self.check_metadata(md, call.initial_metadata(), call.trailing_metadata(), what)
        self.add(F_MSGS, count)
        self.add(F_BYTES, nbytes)
        return False

    def do_bidi(self):
        rng = self.rng
        n = rng.choices(STREAM_COUNTS, STREAM_COUNT_WEIGHTS)[0]
        msgs = [self.payload(self.size(262144)) for _ in range(n)]
        cancel_at = 1 if n >= 2 and rng.random() < 0.02 else None
        md = self.metadata()
        what = "bidi of %d messages" % n
        q = queue.Queue()

        def requests():
            while True:
                m = q.get()
                if m is None:
                    return
                yield m

        q.put(msgs[0] if n else None)
        call = self.bidi(requests(), timeout=DEADLINE, metadata=md)
        i = 0
        nbytes = 0
        try:
            for m in call:
                if i >= n:
                    raise Failure("%s: more than %d responses" % (what, n))
                if m != msgs[i]:
                    raise self.mismatch("%s, message %d" % (what, i), m, msgs[i])
                nbytes += 2 * len(m)
                i += 1
                if cancel_at is not None and i == cancel_at:
                    call.cancel()
                    continue
                q.put(msgs[i] if i < n else None)
        except self.grpc.RpcError as e:
            if cancel_at is not None and e.code() == self.grpc.StatusCode.CANCELLED:
                self.add(F_MSGS, 2 * i)
                return True
            raise
        except Failure:
            call.cancel()
            raise
        finally:
            q.put(None)  # lets grpcio's request-consuming thread end in every case
        if cancel_at is not None:
            raise Failure("%s: cancelled after %d messages but ended with OK" % (what, cancel_at))
        if i != n:
            raise Failure("%s: %d responses, expected %d" % (what, i, n))
        self.check_metadata(md, call.initial_metadata(), call.trailing_metadata(), what)
        self.add(F_MSGS, 2 * n)
        self.add(F_BYTES, nbytes)
        return False

    def report(self, kind, text):
        if self.err_budget.get(kind, MAX_ERRORS_REPORTED) > 0:
            self.err_budget[kind] = self.err_budget.get(kind, MAX_ERRORS_REPORTED) - 1
            try:
                self.errq.put_nowait("client %d.%d: %s" % (self.proc, self.thread, text))
            except Exception:
                pass

    def run(self, go, stop, reconnect_every):
        go.wait()
        calls = ((self.do_unary, F_UNARY), (self.do_cstream, F_CSTREAM),
                 (self.do_sstream, F_SSTREAM), (self.do_bidi, F_BIDI))
        order = list(calls)
        iterations = 0
        while not stop.is_set():
            self.rng.shuffle(order)
            for fn, field in order:
                if stop.is_set():
                    break
                try:
                    expected_error = fn()
                except Failure as e:
                    self.add(F_FAILED)
                    self.report(field, str(e))
                    continue
                except self.grpc.RpcError as e:
                    self.add(F_FAILED)
                    self.report(field, "%s: %s (%s)" % (PATTERNS[field], e.code(), e.details()))
                    continue
                except Exception as e:  # a bug here or in grpcio: still a failed call
                    self.add(F_FAILED)
                    self.report(field, "%s: %s: %s" % (PATTERNS[field], type(e).__name__, e))
                    continue
                self.add(F_EXPECTED if expected_error else field)
            iterations += 1
            if reconnect_every and iterations % reconnect_every == 0 and not stop.is_set():
                try:
                    self.connect()
                    self.add(F_RECONNECTS)
                except Exception as e:
                    self.add(F_FAILED)
                    self.report("reconnect", "reconnect: %s: %s" % (type(e).__name__, e))
        self.channel.close()


def client_main(proc, nthreads, target, counters, go, stop, ready, errq, seed, reconnect_every):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    _die_with_parent()
    import grpc
    err_budget = {}  # failures printed so far, per call pattern, shared by the threads
    workers = []
    for t in range(nthreads):
        rng = random.Random(seed * 1000 + t)
        workers.append(Worker(grpc, target, proc, t, proc * nthreads + t, counters, errq, err_budget, rng))
    ready.release()
    threads = [threading.Thread(target=w.run, args=(go, stop, reconnect_every), daemon=True)
               for w in workers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


# ----------------------------------------------------------------------------- sampler side

def read_proc(pid):
    """VmRSS and VmHWM (KiB), Threads, open fds, CPU seconds of pid; None if it is gone."""
    try:
        out = {}
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads", "State"):
                    out[k] = v.split()[0]
        if out.get("State") == "Z" or "VmRSS" not in out:
            return None
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        try:
            fds = len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            fds = -1
        return {"rss": int(out["VmRSS"]), "hwm": int(out["VmHWM"]), "threads": int(out["Threads"]),
                "fds": fds, "cpu": cpu}
    except (OSError, ValueError, IndexError):
        return None


def fmt_int(n):
    return "{:,}".format(int(n)).replace(",", " ")


def mib(kib):
    return kib / 1024.0


def totals(counters, nrows):
    t = [0] * NFIELDS
    for r in range(nrows):
        for f in range(NFIELDS):
            t[f] += counters[r * NFIELDS + f]
    return t


def completed(t):
    return t[F_UNARY] + t[F_CSTREAM] + t[F_SSTREAM] + t[F_BIDI] + t[F_EXPECTED]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--server-label", default="examples/c/echo_server")
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=3)
    ap.add_argument("--interval", type=int, default=10)
    ap.add_argument("--warmup", type=float, default=None)
    ap.add_argument("--rss-bound-mib", type=float, default=16.0)
    ap.add_argument("--rss-bound-pct", type=float, default=20.0)
    ap.add_argument("--reconnect-every", type=int, default=200)
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--report", default=os.path.join(BENCH, ".out", "soak-report.md"))
    a = ap.parse_args()
    for name in ("seconds", "procs", "threads", "interval"):
        if getattr(a, name) <= 0:
            ap.error("--%s must be positive" % name)
    warmup = a.warmup if a.warmup is not None else min(60.0, 0.1 * a.seconds)
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)

    interrupted = []

    def on_term(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)

    ctx = mp.get_context("spawn")
    nrows = a.procs * a.threads
    counters = ctx.RawArray("q", nrows * NFIELDS)
    go, stop = ctx.Event(), ctx.Event()
    ready = ctx.Semaphore(0)
    errq = ctx.Queue()
    target = "%s:%d" % (a.host, a.port)
    procs = [ctx.Process(target=client_main, name="soak-client-%d" % p,
                         args=(p, a.threads, target, counters, go, stop, ready, errq,
                               seed + p, a.reconnect_every))
             for p in range(a.procs)]

    samples = []  # dicts: t, rss, hwm, threads, fds, cpu, calls, failed, msgs, bytes
    errors_seen = []
    problems = []
    server_gone = False
    t0 = None
    header = ("    t s   RSS MiB  threads  fds  srv cpu  calls total   calls/s  msgs/s   MiB/s  failed")

    def drain_errors():
        while True:
            try:
                e = errq.get_nowait()
            except (queue.Empty, OSError, ValueError):
                return
            errors_seen.append(e)
            print("  ! " + e, flush=True)

    def take(t):
        p = read_proc(a.server_pid)
        if p is None:
            return None
        tot = totals(counters, nrows)
        s = dict(p, t=t, calls=completed(tot), failed=tot[F_FAILED], msgs=tot[F_MSGS],
                 bytes=tot[F_BYTES], tot=tot)
        prev = samples[-1] if samples else None
        samples.append(s)
        if prev is None or s["t"] <= prev["t"]:
            rate = cpu = msgs = mbs = "-"
        else:
            dt = s["t"] - prev["t"]
            rate = fmt_int((s["calls"] - prev["calls"]) / dt)
            msgs = fmt_int((s["msgs"] - prev["msgs"]) / dt)
            mbs = "%.1f" % ((s["bytes"] - prev["bytes"]) / dt / 1048576)
            cpu = "%d %%" % round(100 * (s["cpu"] - prev["cpu"]) / dt)
        print("  %5.0f  %8.1f  %7d  %3d  %7s  %11s  %8s  %6s  %6s  %6s" % (
            s["t"], mib(s["rss"]), s["threads"], s["fds"], cpu, fmt_int(s["calls"]), rate, msgs,
            mbs, fmt_int(s["failed"])), flush=True)
        return s

    exit_code = 0
    pre = None
    start_wall = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    end_t = None
    after = None
    try:
        print("soak: %d s against %s (pid %d, port %d), %d client processes x %d threads (grpcio %s), "
              "seed %d" % (a.seconds, a.server_label, a.server_pid, a.port, a.procs, a.threads,
                           _grpc_version(), seed), flush=True)
        print("      warm-up %.0f s; RSS bound after it: max(%.0f MiB, %.0f %%); sample every %d s"
              % (warmup, a.rss_bound_mib, a.rss_bound_pct, a.interval), flush=True)
        pre = read_proc(a.server_pid)
        if pre is None:
            raise RuntimeError("the server (pid %d) is not running" % a.server_pid)
        for p in procs:
            p.start()
        # Every client process has connected all its channels before the clock starts.
        for _ in procs:
            while not ready.acquire(timeout=1.0):
                dead = [p for p in procs if not p.is_alive()]
                if dead:
                    raise RuntimeError("client process %s exited (code %s) before it was ready"
                                       % (dead[0].name, dead[0].exitcode))
        print(header, flush=True)
        t0 = time.monotonic()
        if take(0.0) is None:
            raise RuntimeError("the server (pid %d) is not running" % a.server_pid)
        go.set()
        ticks = list(range(a.interval, a.seconds, a.interval)) + [a.seconds]
        for tick in ticks:
            delay = t0 + tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # the sampling period, not a synchronisation
            drain_errors()
            if take(time.monotonic() - t0) is None:
                server_gone = True
                problems.append("the server (pid %d) exited during the run, at about %d s"
                                % (a.server_pid, time.monotonic() - t0))
                break
            dead = [p for p in procs if not p.is_alive()]
            if dead:
                problems.append("client process %s died (exit code %s) at about %d s"
                                % (dead[0].name, dead[0].exitcode, time.monotonic() - t0))
                break
        end_t = time.monotonic() - t0
    except KeyboardInterrupt:
        exit_code = 130
        end_t = time.monotonic() - t0 if t0 is not None else 0.0
        print("soak: interrupted (%s) at %.0f s" % ("SIGTERM" if interrupted else "SIGINT", end_t),
              flush=True)
        if samples and end_t > samples[-1]["t"]:
            try:
                take(end_t)  # the server is stopped only after this process has ended
            except KeyboardInterrupt:
                pass
    except RuntimeError as e:
        problems.append(str(e))
        end_t = time.monotonic() - t0 if t0 is not None else 0.0
    finally:
        stop.set()
        go.set()
        # A thread finishes its current call (deadline 30 s) and exits.
        limit = time.monotonic() + DEADLINE + 10
        for p in procs:
            if p.pid is None:
                continue
            p.join(max(0.0, limit - time.monotonic()))
            if p.is_alive():
                problems.append("client process %s did not stop within %.0f s; killed"
                                % (p.name, DEADLINE + 10))
                p.kill()
                p.join()
            elif p.exitcode != 0 and exit_code != 130:
                problems.append("client process %s exited with code %s" % (p.name, p.exitcode))
        drain_errors()
        errq.close()
        errq.join_thread()

    if not samples:
        for p in problems:
            print("soak: " + p, file=sys.stderr)
        return exit_code or 1

    # Load over: the counters are final. One more sample of the server, idle for one
    # sampling period (its connections closed, buffers released).
    tot = totals(counters, nrows)
    if not server_gone and exit_code != 130:
        try:
            time.sleep(a.settle)
            after = read_proc(a.server_pid)
            if after is None:
                problems.append("the server (pid %d) was gone after the run" % a.server_pid)
        except KeyboardInterrupt:
            exit_code = 130

    if exit_code == 130:
        problems.append("interrupted at %.0f s: a partial run" % end_t)
    lines = summary(a, samples, tot, end_t, warmup, pre, after, errors_seen, problems, seed, start_wall)
    ok = lines.pop()
    print()
    print("\n".join(lines), flush=True)
    if a.report:
        try:
            os.makedirs(os.path.dirname(a.report), exist_ok=True)
            with open(a.report, "w") as f:
                f.write("\n".join(lines) + "\n")
            print("\n(summary and table also in %s)" % os.path.relpath(a.report), flush=True)
        except OSError as e:
            print("soak: cannot write %s: %s" % (a.report, e), file=sys.stderr)
    if exit_code:
        return exit_code
    return 0 if ok else 1


def _grpc_version():
    try:
        import importlib.metadata
        return importlib.metadata.version("grpcio")
    except Exception:
        return "?"


def summary(a, samples, tot, end_t, warmup, pre, after, errors_seen, problems, seed, start_wall):
    """Lines of the summary and the pasteable table; the last element is the verdict (bool)."""
    out = []
    calls = completed(tot)
    failed = tot[F_FAILED]
    dur = end_t if end_t and end_t > 0 else samples[-1]["t"] or 1.0
    first = samples[0]
    last = samples[-1]
    loaded = [s for s in samples if s["t"] > 0]
    warm = next((s for s in loaded if s["t"] >= warmup), last)
    peak = max(samples, key=lambda s: s["rss"])
    growth = last["rss"] - warm["rss"]
    bound = max(a.rss_bound_mib * 1024, a.rss_bound_pct / 100.0 * warm["rss"])
    rss_ok = growth <= bound
    post = [s for s in samples if s["t"] >= warm["t"]]
    slope = None
    if len(post) >= 3:
        mt = sum(s["t"] for s in post) / len(post)
        mr = sum(s["rss"] for s in post) / len(post)
        den = sum((s["t"] - mt) ** 2 for s in post)
        if den > 0:
            slope = sum((s["t"] - mt) * (s["rss"] - mr) for s in post) / den * 60  # KiB/min

    out.append("## Soak: %d s, %s, %d client processes x %d threads (%s)"
               % (round(dur), a.server_label, a.procs, a.threads, start_wall))
    out.append("")
    out.append("```")
    out.append("calls       : %s completed = %.0f calls/s (unary %s, client stream %s, server stream %s, "
               "bidi %s; %s ended in the error they were meant to: cancelled by the client or "
               "INVALID_ARGUMENT)" % (fmt_int(calls), calls / dur, fmt_int(tot[F_UNARY]),
                                      fmt_int(tot[F_CSTREAM]), fmt_int(tot[F_SSTREAM]),
                                      fmt_int(tot[F_BIDI]), fmt_int(tot[F_EXPECTED])))
    out.append("failed      : %s%s" % (fmt_int(failed), "" if not errors_seen else
                                        " (first ones printed above with '!')"))
    out.append("traffic     : %s stream messages (%.0f/s), %.1f MiB of payload both ways (%.1f MiB/s), "
               "%s reconnects" % (fmt_int(tot[F_MSGS]), tot[F_MSGS] / dur, tot[F_BYTES] / 1048576.0,
                                  tot[F_BYTES] / 1048576.0 / dur, fmt_int(tot[F_RECONNECTS])))
    cpu = (last["cpu"] - first["cpu"]) / max(last["t"] - first["t"], 1e-9)
    out.append("server cpu  : %.2f cores on average under load (machine: %d cores, clients included)"
               % (cpu, os.cpu_count() or 0))
    out.append("RSS         : %.1f MiB at t=0, %.1f MiB after warm-up (t=%.0f s), %.1f MiB at the end "
               "(t=%.0f s): %+.1f MiB (%+.1f %%); max %.1f MiB (t=%.0f s); VmHWM %.1f MiB"
               % (mib(first["rss"]), mib(warm["rss"]), warm["t"], mib(last["rss"]), last["t"],
                  mib(growth), 100.0 * growth / warm["rss"], mib(peak["rss"]), peak["t"],
                  mib(max(s["hwm"] for s in samples))))
    if slope is not None:
        out.append("RSS trend   : %+.0f KiB/min after warm-up (least squares over %d samples)"
                   % (slope, len(post)))
    if warm is last:
        out.append("RSS bound   : run too short to judge growth (no sample between the warm-up and the end)")
    else:
        out.append("RSS bound   : end - after warm-up <= max(%.0f MiB, %.0f %% of %.1f MiB) = %.1f MiB: %s"
                   % (a.rss_bound_mib, a.rss_bound_pct, mib(warm["rss"]), mib(bound),
                      "ok" if rss_ok else "EXCEEDED"))
    out.append("threads     : %d at t=0, %d after warm-up, %d at the end, max %d"
               % (first["threads"], warm["threads"], last["threads"],
                  max(s["threads"] for s in samples)))
    out.append("fds         : %d at t=0, %d after warm-up, %d at the end, max %d"
               % (first["fds"], warm["fds"], last["fds"], max(s["fds"] for s in samples)))
    if pre is not None:
        out.append("idle before : RSS %.1f MiB, %d threads, %d fds (before any client connected)"
                   % (mib(pre["rss"]), pre["threads"], pre["fds"]))
    if after is not None:
        out.append("idle after  : RSS %.1f MiB, %d threads, %d fds (%.0f s after the clients stopped)"
                   % (mib(after["rss"]), after["threads"], after["fds"], a.settle))
    for p in problems:
        out.append("problem     : " + p)
    ok = failed == 0 and rss_ok and not problems
    out.append("result      : %s" % ("PASS" if ok else "FAIL") + (
        "" if ok else " (%s)" % "; ".join(
            ([("%s failed calls" % fmt_int(failed))] if failed else []) +
            ([] if rss_ok else ["RSS grew by %.1f MiB > %.1f MiB" % (mib(growth), mib(bound))]) +
            (["see the problems above"] if problems else []))))
    out.append("```")
    out.append("")
    # The table: one row per sample, a bar of RSS on a 0-based scale.
    width = 40
    top = max([s["rss"] for s in samples] + [x["rss"] for x in (pre, after) if x])
    scale_mib = max(1, int(-(-mib(top) // 8) * 8))  # round up to a multiple of 8 MiB
    out.append("```")
    out.append("   t s | RSS MiB | threads |  fds |  calls/s | RSS, 0 .. %d MiB" % scale_mib)
    out.append("-------+---------+---------+------+----------+-" + "-" * width)
    def bar(kib):
        return "#" * int(round(width * mib(kib) / scale_mib))

    if pre is not None:
        out.append("%6s | %7.1f | %7d | %4d | %8s | %s" % (
            "before", mib(pre["rss"]), pre["threads"], pre["fds"], "-", bar(pre["rss"])))
    prev = None
    for s in samples:
        rate = "-" if prev is None else fmt_int((s["calls"] - prev["calls"]) / max(s["t"] - prev["t"], 1e-9))
        mark = " <- warm-up" if s is warm and warm is not last else ""
        out.append("%6.0f | %7.1f | %7d | %4d | %8s | %s%s"
                   % (s["t"], mib(s["rss"]), s["threads"], s["fds"], rate, bar(s["rss"]), mark))
        prev = s
    if after is not None:
        out.append("%6s | %7.1f | %7d | %4d | %8s | %s  (idle %.0f s after the load)" % (
            "after", mib(after["rss"]), after["threads"], after["fds"], "-", bar(after["rss"]),
            a.settle))
    out.append("```")
    out.append(ok)
    return out


if __name__ == "__main__":
    sys.exit(main())
