#!/usr/bin/env python3
"""Python binding benchmark: grpcio vs grpchelper, servers and clients, in one run.

    python3 bench/python_bench.py [--seconds S] [--repeat N] [--quick]
                                  [--warmup S] [--stream-messages N] [--threads N]
                                  [--workers N] [--profile ROW]

Measures, for the four pairings {grpcio, grpchelper} server x {grpcio, grpchelper} client:

  unary-seq     unary calls/s, one thread, one channel, 10-byte request and response
  unary-<N>thr  unary calls/s, N client threads (default 10) sharing one channel
  stream        server-streaming messages/s: one call answering with --stream-messages
                10-byte messages (default 100 000), which the client iterates

Each server runs in a subprocess of its own (this script with --serve KIND), so client
and server do not share a GIL; it binds 127.0.0.1 port 0 and prints "listening on port
N". Handlers work on raw bytes (grpc.method_handlers_generic_handler with no
(de)serializers, i.e. identity), so protobuf costs nothing. grpcio server:
grpc.server(ThreadPoolExecutor(max_workers=16)); grpchelper server: grpchelper.server(16).
The client runs in this process; channels are grpc.insecure_channel and
grpchelper.insecure_channel, one per pairing per repetition.

  --seconds S          measured seconds of each unary row (default 3)
  --warmup S           warm-up seconds before each unary row (default 1); the stream row is
                       preceded by a 2 000-message stream
  --repeat N           repetitions of the whole matrix; the table shows medians (default 3)
  --stream-messages N  messages of the measured stream call (default 100000)
  --threads N          client threads of the threaded unary row (default 10)
  --workers N          server worker threads for both servers (default 16)
  --quick              smoke test: 1 s per row, 0.3 s warm-up, 1 repetition, 10 000 messages
  --profile ROW        instead of the matrix: cProfile of the grpchelper client loop against
                       the grpchelper server for ROW (unary-seq, unary-thr or stream)

Repetitions interleave the pairings (repetition 1 of every pairing, then 2, ...), so slow
drift of the machine's load spreads over all of them. Standard library and grpcio only;
grpchelper is imported from bindings/python (it finds build/lib/libgrpchelper.so.1).
"""

import argparse
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

SERVICE = "grpchelper.bench.Py"
UNARY = "/%s/Unary" % SERVICE
STREAM = "/%s/Stream" % SERVICE
PAYLOAD = b"0123456789"  # 10 bytes, request and every response
KINDS = ("grpcio", "grpchelper")
PAIRINGS = [(s, c) for s in KINDS for c in KINDS]  # (server, client)


def log(msg):
    print("== " + msg, file=sys.stderr, flush=True)


# ====================================================================== server side

def serve(kind, workers):
    """Subprocess body: serve until stdin reaches EOF (the parent closed it or died) or
    SIGTERM/SIGINT."""
    import grpc

    def unary(request, context):
        return request

    def stream(request, context):
        msg = PAYLOAD
        for _ in range(int(request)):
            yield msg

    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
    })
    if kind == "grpcio":
        from concurrent.futures import ThreadPoolExecutor
        server = grpc.server(ThreadPoolExecutor(max_workers=workers), handlers=(handler,))
    else:
        import grpchelper
        server = grpchelper.server(workers, handlers=(handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    if not port:
        print("python_bench --serve %s: could not bind 127.0.0.1:0" % kind, file=sys.stderr)
        return 1
    server.start()

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("listening on port %d" % port, flush=True)
    while not done.wait(3600):
        pass
    server.stop(0).wait(5)
    sys.stdout.flush()
    os._exit(0)  # do not wait for library threads at interpreter exit


class ServerProcess(object):
    """One server subprocess; stop() is idempotent and always ends the process."""

    def __init__(self, kind, workers):
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", kind, "--workers", str(workers)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
        _live_servers.add(self)
        self.port = None
        try:
            self.port = self._read_port(30.0)
        except BaseException:
            self.stop()
            raise

    def _read_port(self, timeout):
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
                    line = buf.split(b"\n", 1)[0].decode(errors="replace")
                    if line.startswith("listening on port "):
                        return int(line.rsplit(" ", 1)[1])
                    raise RuntimeError("%s server said %r" % (self.kind, line))
            elif self.proc.poll() is not None:
                break
        raise RuntimeError("%s server did not start (exit status %s)"
                           % (self.kind, self.proc.poll()))

    def stop(self):
        p = self.proc
        if p.poll() is None:
            try:
                p.stdin.close()  # the polite request: EOF on stdin
            except OSError:
                pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:
                pass
        _live_servers.discard(self)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()


_live_servers = set()


def kill_all_servers():
    for s in list(_live_servers):
        s.kill()


class Watchdog(object):
    """Kills the servers and exits if one measurement hangs (a blocking call cannot be
    interrupted from Python)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._deadline = None
        self._what = None
        threading.Thread(target=self._run, name="watchdog", daemon=True).start()

    def arm(self, seconds, what):
        with self._lock:
            self._deadline = time.monotonic() + seconds
            self._what = what

    def disarm(self):
        with self._lock:
            self._deadline = None

    def _run(self):
        while True:
            time.sleep(0.5)
            with self._lock:
                expired = self._deadline is not None and time.monotonic() > self._deadline
                what = self._what
            if expired:
                log("TIMEOUT: %s did not finish; killing the servers and exiting" % what)
                kill_all_servers()
                time.sleep(2)
                os._exit(3)


# ====================================================================== client side

def client_module(kind):
    if kind == "grpcio":
        import grpc
        return grpc
    import grpchelper
    return grpchelper


class Client(object):
    """One channel of `kind` to 127.0.0.1:port and its two multi-callables."""

    def __init__(self, kind, port):
        self.kind = kind
        self.channel = client_module(kind).insecure_channel("127.0.0.1:%d" % port)
        self.unary = self.channel.unary_unary(UNARY)
        self.stream = self.channel.unary_stream(STREAM)

    def check(self):
        """Connects and checks both methods answer as expected."""
        r = self.unary(PAYLOAD)
        if r != PAYLOAD:
            raise RuntimeError("%s client: unary answered %r" % (self.kind, r))
        got = list(self.stream(b"3"))
        if got != [PAYLOAD] * 3:
            raise RuntimeError("%s client: stream answered %r" % (self.kind, got))

    def close(self):
        self.channel.close()


def unary_sequential(client, warmup, seconds):
    call = client.unary
    req = PAYLOAD
    clock = time.perf_counter
    end = clock() + warmup
    while clock() < end:
        call(req)
    n = 0
    t0 = clock()
    end = t0 + seconds
    while True:
        call(req)
        n += 1
        t1 = clock()
        if t1 >= end:
            break
    return n / (t1 - t0)


def unary_threaded(client, warmup, seconds, nthreads):
    """calls/s of nthreads threads calling continuously; counted over a window that starts
    after the warm-up, while all threads are busy."""
    call = client.unary
    counts = [0] * nthreads
    errors = []
    stop = threading.Event()

    def worker(i):
        req = PAYLOAD
        try:
            while not stop.is_set():
                call(req)
                counts[i] += 1
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(nthreads)]
    for t in threads:
        t.start()
    try:
        time.sleep(warmup)
        c0, t0 = sum(counts), time.perf_counter()
        time.sleep(seconds)
        c1, t1 = sum(counts), time.perf_counter()
    finally:
        stop.set()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return (c1 - c0) / (t1 - t0)


def server_stream(client, messages):
    clock = time.perf_counter
    n = 0
    for _ in client.stream(b"2000"):  # warm-up
        n += 1
    if n != 2000:
        raise RuntimeError("%s client: warm-up stream gave %d messages" % (client.kind, n))
    n = 0
    t0 = clock()
    for _ in client.stream(str(messages).encode()):
        n += 1
    t1 = clock()
    if n != messages:
        raise RuntimeError("%s client: stream gave %d of %d messages" % (client.kind, n, messages))
    return n / (t1 - t0)


# ====================================================================== report

def fmt_int(x):
    if x is None:
        return "-"
    return "{:,}".format(int(round(x))).replace(",", " ")


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return "%.2f" % (a / b)


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
        load = " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        load = "?"
    try:
        rev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        rev = "?"
    lib = grpchelper._ffi.lib._name
    # The binding is pure Python and may differ from the commit: name its exact sources.
    import hashlib
    pkg = os.path.dirname(os.path.abspath(grpchelper.__file__))
    h = hashlib.sha1()
    sources = sorted(os.path.relpath(os.path.join(d, name), pkg)
                     for d, _dirs, names in os.walk(pkg) for name in names
                     if name.endswith(".py"))          # the subpackages' too
    for name in sources:
        with open(os.path.join(pkg, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read())
    return [
        "machine : nproc %d, kernel %s, %s, load avg %s" % (os.cpu_count(), platform.release(),
                                                            cpu, load),
        "versions: Python %s (%s), grpcio %s, grpchelper %s on libgrpchelper %s (%s, tree %s)" % (
            platform.python_version(), platform.python_implementation(), grpc.__version__,
            grpchelper.__version__, grpchelper.library_version(), os.path.relpath(lib, ROOT)
            if os.path.isabs(lib) else lib, rev),
        "          grpchelper package %s, sources sha1 %s (its *.py files)" % (
            os.path.relpath(pkg, ROOT), h.hexdigest()[:12]),
    ]


def print_table(rows, results, repeat):
    """results[(row, server, client)] = list of values (one per repetition)."""
    med = {k: statistics.median(v) for k, v in results.items() if v}

    def m(row, s, c):
        return med.get((row, s, c))

    w0 = max(len(label) for _, label in rows) + 1
    cols = [("grpcio", "grpcio"), ("grpcio", "grpchelper"), ("grpchelper", "grpcio"),
            ("grpchelper", "grpchelper")]
    print("%-*s| server %s | %s" % (w0, "median of %d run%s" % (repeat, "s" if repeat > 1 else ""),
                                   "".join("%12s" % s for s, _ in cols),
                                   " gh/gh ÷   client gh÷gio    server gh÷gio"))
    print("%-*s| client %s | %s" % (w0, "", "".join("%12s" % c for _, c in cols),
                                   " gio/gio   on gio  on gh   gio cli gh cli"))
    print("-" * (w0 + 8 + 12 * len(cols) + 2 + 43))
    for row, label in rows:
        vals = "".join("%12s" % fmt_int(m(row, s, c)) for s, c in cols)
        ratios = "%8s  %7s %6s   %7s %6s" % (
            fmt_ratio(m(row, "grpchelper", "grpchelper"), m(row, "grpcio", "grpcio")),
            fmt_ratio(m(row, "grpcio", "grpchelper"), m(row, "grpcio", "grpcio")),
            fmt_ratio(m(row, "grpchelper", "grpchelper"), m(row, "grpchelper", "grpcio")),
            fmt_ratio(m(row, "grpchelper", "grpcio"), m(row, "grpcio", "grpcio")),
            fmt_ratio(m(row, "grpchelper", "grpchelper"), m(row, "grpcio", "grpchelper")))
        print("%-*s|        %s | %s" % (w0, label, vals, ratios))
    if repeat > 1:
        print()
        print("spread (min–max of the %d repetitions):" % repeat)
        for row, label in rows:
            cells = []
            for s, c in cols:
                v = results.get((row, s, c)) or []
                cells.append("%s–%s" % (fmt_int(min(v)), fmt_int(max(v))) if v else "-")
            print("%-*s|        %s" % (w0, label, "".join("%18s" % x for x in cells)))


# ====================================================================== main

def run_matrix(args, rows, watchdog):
    results = {(row, s, c): [] for row, _ in rows for s, c in PAIRINGS}
    row_limit = args.warmup + args.seconds + 120
    for rep in range(1, args.repeat + 1):
        for server_kind in KINDS:
            server = ServerProcess(server_kind, args.workers)
            try:
                for client_kind in KINDS:
                    tag = "rep %d/%d server %-10s client %-10s" % (rep, args.repeat, server_kind,
                                                                  client_kind)
                    watchdog.arm(60, tag + " connect")
                    client = Client(client_kind, server.port)
                    try:
                        client.check()
                        for row, label in rows:
                            watchdog.arm(row_limit if row != "stream"
                                         else 120 + args.stream_messages / 1000.0, tag + " " + row)
                            if row == "unary-seq":
                                v = unary_sequential(client, args.warmup, args.seconds)
                            elif row == "unary-thr":
                                v = unary_threaded(client, args.warmup, args.seconds, args.threads)
                            else:
                                v = server_stream(client, args.stream_messages)
                            watchdog.disarm()
                            results[(row, server_kind, client_kind)].append(v)
                            log("%s %-28s %12s" % (tag, label, fmt_int(v)))
                    finally:
                        watchdog.arm(30, tag + " close")
                        client.close()
                        watchdog.disarm()
            finally:
                server.stop()
    return results


def run_profile(args, row, watchdog):
    import cProfile
    import pstats
    server = ServerProcess("grpchelper", args.workers)
    try:
        client = Client("grpchelper", server.port)
        client.check()
        watchdog.arm(300, "profile " + row)
        prof = cProfile.Profile()
        if row == "unary-seq":
            unary_sequential(client, args.warmup, 0.5)
            prof.enable()
            v = unary_sequential(client, 0, args.seconds)
            prof.disable()
            unit = "calls/s"
        elif row == "unary-thr":
            # cProfile sees only the thread that enabled it: one profiler per thread, merged.
            profs = []
            counts = []

            def profiled_loop():
                p = cProfile.Profile()
                profs.append(p)
                n = 0
                end = time.perf_counter() + args.seconds
                p.enable()
                while time.perf_counter() < end:
                    client.unary(PAYLOAD)
                    n += 1
                p.disable()
                counts.append(n)

            ts = [threading.Thread(target=profiled_loop) for _ in range(args.threads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            v = sum(counts) / args.seconds
            prof = pstats.Stats(*profs)
            unit = "calls/s"
        else:
            server_stream(client, 2000)
            prof.enable()
            v = server_stream(client, args.stream_messages)
            prof.disable()
            unit = "msgs/s"
        watchdog.disarm()
        client.close()
        print("cProfile of the client loop (grpchelper -> grpchelper, %s%s): %s %s under the "
              "profiler" % (row, ", %d threads merged" % args.threads if row == "unary-thr" else "",
                            fmt_int(v), unit))
        stats = prof if isinstance(prof, pstats.Stats) else pstats.Stats(prof)
        stats.sort_stats("tottime").print_stats(25)
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser(usage=argparse.SUPPRESS, description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 add_help=False)
    ap.add_argument("-h", "--help", action="help", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--stream-messages", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=16, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--profile", choices=("unary-seq", "unary-thr", "stream"), help=argparse.SUPPRESS)
    ap.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.serve:
        return serve(args.serve, args.workers)

    quick = args.quick
    if args.seconds is None:
        args.seconds = 1.0 if quick else 3.0
    if args.warmup is None:
        args.warmup = 0.3 if quick else 1.0
    if args.repeat is None:
        args.repeat = 1 if quick else 3
    if args.stream_messages is None:
        args.stream_messages = 10000 if quick else 100000
    for name in ("seconds", "repeat", "stream_messages", "threads", "workers"):
        if getattr(args, name) <= 0:
            ap.error("--%s must be positive" % name.replace("_", "-"))
    if args.warmup < 0:
        ap.error("--warmup must not be negative")

    # SIGTERM/SIGHUP end the run through the finally blocks (servers stopped).
    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    watchdog = Watchdog()
    try:
        if args.profile:
            run_profile(args, args.profile, watchdog)
            return 0
        rows = [
            ("unary-seq", "unary, 1 thread (calls/s)"),
            ("unary-thr", "unary, %d threads (calls/s)" % args.threads),
            ("stream", "server stream (msgs/s)"),
        ]
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        header = machine_lines()
        log("python_bench: %d repetition(s) x 4 pairings; unary rows %gs (+%gs warm-up), "
            "stream %d messages" % (args.repeat, args.seconds, args.warmup, args.stream_messages))
        results = run_matrix(args, rows, watchdog)

        print()
        print("grpcio vs grpchelper (Python binding) — %s" % started)
        for line in header:
            print(line)
        print("run     : %s" % " ".join(["python3", "bench/python_bench.py"] + sys.argv[1:]))
        print("shape   : %gs per unary row after %gs warm-up; stream = one call of %d messages "
              "after a 2 000-message one;" % (args.seconds, args.warmup, args.stream_messages))
        print("          10-byte messages, raw bytes (identity serializers); servers in their own "
              "process, %d workers each" % args.workers)
        print("load avg at the end: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
        print()
        print_table(rows, results, args.repeat)
        print()
        print("gio = grpcio, gh = grpchelper; calls/s and msgs/s as seen by the client.")
        print("gh/gh ÷ gio/gio: grpchelper on both ends vs grpcio on both ends (>1 = grpchelper "
              "faster).")
        print("client gh÷gio: grpchelper client vs grpcio client, on the grpcio server / on the "
              "grpchelper server;")
        print("server gh÷gio: grpchelper server vs grpcio server, with the grpcio client / with "
              "the grpchelper client.")
        return 0
    finally:
        kill_all_servers()
        for s in list(_live_servers):
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
    # Leave without waiting for the channels' library threads at interpreter exit.
    os._exit(code or 0)
