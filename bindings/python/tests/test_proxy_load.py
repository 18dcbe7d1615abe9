"""Proxied services under load (README "Proxied services"): a real main server (the proxy:
an RpcServer declaring the sample service `is_proxy=True`, plus a Python service of its
own) and real backends (RpcServers serving the sample service with a Python manager; for
comparison and for what a manager cannot see, the same methods on grpcio and on the
library's grpcio API), registered through srv.proxy_register, called by grpcio clients
(grpc.aio for the 1,000 streams).

1. A forwarded call holds no worker thread on the proxy: 1,000 concurrent proxied
   server-streaming calls through a proxy with rpc-max-workers 30 all get their first
   message while the backend holds them, and meanwhile srv.info, a proxied unary call and a
   Python (blocking, worker-pool) method of the proxy answer promptly; the proxy's thread
   count does not follow the calls; once released, all 1,000 complete.
2. End-to-end flow control: a caller that reads slowly holds the backend back (its sent
   count stays within a bounded window of what the caller read) and the proxy's RSS stays
   bounded while a 240 MiB stream goes through it.
3. Deadline and cancellation, both ways: the backend sees the caller's deadline; a
   caller's deadline or cancel ends the backend's handler (blocked in a send, or reading
   requests); a backend that ends its call (an error result, an error status) while the
   caller still streams requests ends the caller's call.
4. A backend killed (SIGKILL) mid-call: the caller's stream ends at once with an ERROR_RPC
   error result, the proxy stays up; a new backend registered (new port) serves again, and
   so does one restarted on the same port.

Servers whose RSS or threads are measured, or which are killed, run in child processes:
this file itself, run as a script (`python3 test_proxy_load.py ROLE ...`, see `_child`),
prints its port, then obeys the commands of its stdin.
"""

import asyncio
import importlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
BINDINGS_PYTHON = os.path.dirname(HERE)
PROTOS = os.path.join(HERE, "protos")
REPO_PROTOS = os.path.join(os.path.dirname(os.path.dirname(BINDINGS_PYTHON)), "Protos")
if BINDINGS_PYTHON not in sys.path:
    sys.path.insert(0, BINDINGS_PYTHON)

import grpchelper  # noqa: E402
from _util import LineProcess, proc_status  # noqa: E402
from grpchelper import (Folders, RpcException, RpcManager, RpcServer,  # noqa: E402
                        RpcServiceDescriptor)
from grpchelper.api import (Filter, ProxyRegisterRequest, ResultCode,  # noqa: E402
                            RpcServerServiceStub)

# Bound of every wait (seconds): reached only when something is broken.
BOUND = 30
# A unary call answered later than this waited for something the proxied calls held
# (measured otherwise: a few ms).
PROMPT = 1.0
# grpcio shares a subchannel (a TCP connection) between the channels of one target
# unless told otherwise; a connection carries at most 100 concurrent streams.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
VERSION = "sample-api:1.2.3"


# --- the protos: sample.proto (the proxied service), matrix.proto (a local one) ---------

def generate_protos(out):
    for proto, includes in (("sample.proto", [REPO_PROTOS, PROTOS]), ("matrix.proto", [PROTOS])):
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc"]
                       + ["-I" + i for i in includes]
                       + ["--python_out=" + out, "--grpc_python_out=" + out,
                          os.path.join(PROTOS, proto)], check=True)


PB_MODULES = ("sample_pb2", "sample_pb2_grpc", "matrix_pb2", "matrix_pb2_grpc")


def load_protos(out):
    """The generated modules (imported from `out`) and the classes built on them."""
    sys.path.insert(0, out)
    try:
        mods = {n: importlib.import_module(n) for n in PB_MODULES}
    finally:
        sys.path.remove(out)
    sample, sample_grpc = mods["sample_pb2"], mods["sample_pb2_grpc"]
    matrix, matrix_grpc = mods["matrix_pb2"], mods["matrix_pb2_grpc"]
    module = types.ModuleType("sample_api")
    module.__title__, module.__version__ = VERSION.split(":")
    pb = types.SimpleNamespace(
        dir=out, Request=sample.SampleRequest, Response=sample.SampleResponse,
        Servicer=sample_grpc.SampleServiceServicer, Stub=sample_grpc.SampleServiceStub,
        add=sample_grpc.add_SampleServiceServicer_to_server, Version=sample.SampleApiVersion,
        module=module, Msg=matrix.Msg, MatrixStub=matrix_grpc.MatrixStub,
        add_matrix=matrix_grpc.add_MatrixServicer_to_server,
        MatrixServicer=matrix_grpc.MatrixServicer)
    pb.Backend = _backend_class(pb)
    pb.Local = _local_class(pb)
    pb.ContextBackend = _context_backend_class(pb)
    pb.GrpcioBackend = _grpcio_backend_class(pb)
    return pb


# --- the backends' and the proxy's services ---------------------------------------------

FLOOD_PAD = 4096            # bytes of text of each message of a "flood" stream
ENDLESS_PAD = 1024          # of an "endless" stream's


def _backend_class(pb):
    Request, Response = pb.Request, pb.Response

    class Backend(pb.Servicer, RpcManager):
        """The sample service of a backend; `count` by request.name:
        "held": a first message, then waits for `release` before the other count-1;
        "flood": `count` messages of FLOOD_PAD bytes, as fast as the call takes them
            (`yielded`: how many were handed to the library so far);
        "endless": messages of ENDLESS_PAD bytes until the call ends.
        `chat` (bidi) answers each request until one has a code (an error result).
        How each handler ended is in `ended` (method, how, monotonic time)."""

        def __init__(self):
            super().__init__()
            self.cond = threading.Condition()
            self.release = threading.Event()
            self.held = 0
            self.yielded = 0
            self.ended = []

        def _end(self, method, how):
            with self.cond:
                self.ended.append((method, how, time.monotonic()))
                self.cond.notify_all()

        def wait_ended(self, count, timeout=BOUND):
            with self.cond:
                self.cond.wait_for(lambda: len(self.ended) >= count, timeout)
                return list(self.ended)

        def wait_held(self, count, timeout=BOUND):
            with self.cond:
                self.cond.wait_for(lambda: self.held >= count, timeout)
                return self.held

        def stats(self):
            with self.cond:
                return {"held": self.held, "yielded": self.yielded, "ended": len(self.ended)}

        def hello(self, request: Request) -> Response:
            return Response(text="hello " + request.name)

        def count(self, request: Request) -> Response:
            try:
                if request.name == "held":
                    yield Response(index=0, text="first")
                    with self.cond:
                        self.held += 1
                        self.cond.notify_all()
                    if not self.release.wait(BOUND):
                        raise RpcException("never released", ResultCode.ERROR_STATE_UNEXPECTED)
                    for i in range(1, request.count):
                        yield Response(index=i, text="next")
                elif request.name == "flood":
                    pad = "f" * FLOOD_PAD
                    for i in range(request.count):
                        self.yielded += 1       # one flood at a time: no lock needed
                        yield Response(index=i, text=pad)
                elif request.name == "endless":
                    pad, i = "e" * ENDLESS_PAD, 0
                    while True:
                        yield Response(index=i, text=pad)
                        i += 1
                how = "done"
            except GeneratorExit:           # the library closed it: its call has ended
                how = "closed"
                raise
            finally:
                self._end("count", how)

        def chat(self, request_iterator) -> Response:
            how = "?"
            try:
                for r in request_iterator:
                    if r.code:
                        how = "raised"
                        raise RpcException("refused " + r.name, r.code)
                    yield Response(index=r.count, text="re:" + r.name)
                how = "half-closed"
            except GeneratorExit:
                how = "closed"
                raise
            except RpcException:
                raise
            except Exception as e:  # noqa: BLE001 - the request stream broke: recorded
                how = type(e).__name__          # _CallEnded: the call ended while reading
                raise
            finally:
                self._end("chat", how)

    return Backend


def _local_class(pb):
    class Local(pb.MatrixServicer, RpcManager):
        """A method of the proxy's own: Python, blocking, so run by a worker of the
        proxy's pool (rpc-max-workers)."""

        def Unary(self, request: pb.Msg) -> pb.Msg:
            return pb.Msg(text="local " + request.text)

    return Local


def _context_backend_class(pb):
    class ContextBackend(pb.Servicer):
        """A backend on the library's grpcio API (grpchelper.server): its handlers see
        their call's deadline and cancellation (`seen`: what they saw)."""

        def __init__(self):
            self.seen = queue.Queue()

        def hello(self, request, context):
            remaining = context.time_remaining()
            return pb.Response(text="none" if remaining is None else "%.3f" % remaining)

        def count(self, request, context):
            ended = threading.Event()
            context.add_callback(ended.set)
            yield pb.Response(index=0, text="first")
            ended.wait(BOUND)
            self.seen.put(("count", ended.is_set(), context.is_active(), time.monotonic()))

        def chat(self, request_iterator, context):
            for r in request_iterator:
                if r.code:
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "no more for " + r.name)
                yield pb.Response(index=r.count, text="re:" + r.name)

    return ContextBackend


def _grpcio_backend_class(pb):
    class GrpcioBackend(pb.Servicer):
        """A Backend manager's methods as a grpcio servicer's."""

        def __init__(self, manager):
            self.manager = manager

        def hello(self, request, context):
            return self.manager.hello(request)

        def count(self, request, context):
            return self.manager.count(request)

    return GrpcioBackend


def backend_descriptor(pb, manager):
    return RpcServiceDescriptor(pb.module, "sample", pb.Version, manager, pb.add, pb.Stub)


def proxy_descriptors(pb):
    return [RpcServiceDescriptor(pb.module, "sample", pb.Version, pb.Servicer(), pb.add, pb.Stub,
                                 is_proxy=True),
            RpcServiceDescriptor(pb.module, "local", [1], pb.Local(), pb.add_matrix,
                                 pb.MatrixStub)]


def register(proxy_port, backend_port):
    with grpc.insecure_channel("127.0.0.1:%d" % proxy_port) as ch:
        r = RpcServerServiceStub(ch).proxy_register(
            ProxyRegisterRequest(names=["sample"], version=VERSION, host="127.0.0.1",
                                 port=backend_port), timeout=BOUND)
    assert r.r.code == ResultCode.OK, r


# --- child processes ------------------------------------------------------------------

def _child(argv):
    """`ROLE PB_DIR WORKSPACE MAX_WORKERS [PORT]`: a proxy or a backend RpcServer (or the
    backend's methods on grpcio: "grpcio-backend"); prints "port N", then answers its
    stdin's commands: "stats" (a backend's counters, JSON), "wait-held N", "release",
    "quit" (or the end of stdin: shuts down, "bye")."""
    role, pb_dir, workspace, workers = argv[1:5]
    port = int(argv[5]) if len(argv) > 5 else 0
    pb = load_protos(pb_dir)
    cli = {"rpc-max-workers": workers, "rpc-shutdown-grace": "1", "rpc-client-timeout": "5"}
    manager = None
    if role == "grpcio-backend":
        # The same manager's methods, served by grpcio (which sets no
        # MAX_CONCURRENT_STREAMS on its connections).
        manager = pb.Backend()
        srv = grpc.server(futures.ThreadPoolExecutor(int(workers)))
        pb.add(pb.GrpcioBackend(manager), srv)
        port = srv.add_insecure_port("127.0.0.1:0")
        srv.start()
    else:
        if role == "proxy":
            descriptors = proxy_descriptors(pb)
        else:
            manager = pb.Backend()
            descriptors = [backend_descriptor(pb, manager)]
        srv = RpcServer(port, descriptors, Folders(workspace=workspace), cli_config=cli,
                        with_debug_signal=False)
        port = srv.port
    print("port", port, flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] == "stats":
            print("stats", json.dumps(manager.stats()), flush=True)
        elif cmd[0] == "wait-held":
            print("held", manager.wait_held(int(cmd[1])), flush=True)
        elif cmd[0] == "release":
            manager.release.set()
            print("released", flush=True)
        else:
            print("unknown command", cmd[0], flush=True)
    if manager is not None:
        manager.release.set()       # no handler left waiting
    if role == "grpcio-backend":
        srv.stop(0).wait(BOUND)
    else:
        srv.shutdown()
        srv.close()
    print("bye", flush=True)


class Child(LineProcess):
    """A server of `_child` in a child process: `pid`, `port`, `command(line)` → its answer."""

    BOUND = BOUND

    def __init__(self, folder, pb, role, workers=30, port=0):
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        super().__init__([sys.executable, os.path.abspath(__file__), role, pb.dir,
                          os.path.join(folder, "wks"), str(workers), str(port)],
                         os.path.join(folder, "stderr.txt"))

    def started(self):
        """Waits for its "port N" line; returns self."""
        self.wait_port()
        return self

    def stats(self):
        answer = self.command("stats")
        assert answer.startswith("stats "), answer
        return json.loads(answer[6:])

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(BOUND)


if __name__ == "__main__":
    _child(sys.argv)
    sys.exit(0)

# --- fixtures (pytest only from here) ---------------------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("proxy_pb"))
    generate_protos(out)
    saved = {n: sys.modules.pop(n) for n in PB_MODULES if n in sys.modules}
    try:
        yield load_protos(out)
    finally:
        for n in PB_MODULES:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


@pytest.fixture
def folder():
    path = tempfile.mkdtemp(prefix="grpchelper-proxy-load-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def children(folder, pb):
    """start(name, role, workers, port) → a Child of `role` ("proxy", "backend",
    "grpcio-backend"), not waited for yet (Child.started); every one stopped at
    teardown."""
    made = []

    def start(name, role, workers=30, port=0):
        c = Child(os.path.join(folder, name), pb, role, workers, port)
        made.append(c)
        return c

    yield start
    for c in made:
        c.stop()


@pytest.fixture
def servers(folder):
    """start(name, descriptors, client_timeout) → an RpcServer in this process; shut down
    and closed at teardown."""
    made = []

    def start(name, descriptors, client_timeout=5):
        srv = RpcServer(0, descriptors, Folders(workspace=os.path.join(folder, name)),
                        cli_config={"rpc-shutdown-grace": "1",
                                    "rpc-client-timeout": str(client_timeout)},
                        with_debug_signal=False)
        made.append(srv)
        return srv

    yield start
    for srv in made:
        srv.shutdown()
        srv.close()


# ---- 1. 1,000 proxied streams on a proxy with 30 workers --------------------------------

STREAMS = 1000
CHANNELS = 20               # 50 streams per connection (a connection allows 100)
MESSAGES = 5                # per stream: the first, then 4 once the backend releases them
PROXY_WORKERS = 30
# The backend's methods are Python: each held stream blocks one of its threads (waiting
# on `release`), so the backend has a thread per stream, and some for the unary calls.
# The claim is about the proxy.
BACKEND_WORKERS = STREAMS + 50
# How long the 1,000 first messages may take (s). Measured: 1.0-1.5 s (1,000 calls straight
# to the backend, or through the proxy to the grpcio backend), ~2 s with a busy loop on
# the two cores.
FIRST_MESSAGES_BOUND = 6


def timed_unary_calls(pb, target, rounds=1, until=None):
    """`rounds` rounds (or, given the threading.Event `until`, rounds until it is set) of
    srv.info, a proxied unary call and the proxy's own Python method, from a fresh client
    (its own connection): the seconds each call took, by kind."""
    took = {"srv.info": [], "proxied hello": [], "local Unary": []}
    with grpc.insecure_channel(target, options=OWN_CONNECTION) as ch:
        srv, sample, local = RpcServerServiceStub(ch), pb.Stub(ch), pb.MatrixStub(ch)
        done = 0
        while done < rounds if until is None else not (done and until.is_set()):
            t0 = time.monotonic()
            info = srv.info(Filter(names=["sample"]), timeout=BOUND)
            took["srv.info"].append(time.monotonic() - t0)
            assert info.items[0].is_proxy and info.items[0].proxy_port > 0, info
            t0 = time.monotonic()
            assert sample.hello(pb.Request(name="x"), timeout=BOUND).text == "hello x"
            took["proxied hello"].append(time.monotonic() - t0)
            t0 = time.monotonic()
            assert local.Unary(pb.Msg(text="y"), timeout=BOUND).text == "local y"
            took["local Unary"].append(time.monotonic() - t0)
            done += 1
    return took


def worst(took):
    return {k: round(1000 * max(v), 1) for k, v in took.items()}


@pytest.mark.parametrize("backend_kind", ["backend", "grpcio-backend"],
                         ids=["RpcServer-backend", "grpcio-backend"])
def test_a_thousand_proxied_streams_hold_no_proxy_worker(pb, children, backend_kind):
    """Through the proxy to our RpcServer (the case of the issue), and to a grpcio server
    serving the same methods.

    Found with this test: to our RpcServer, only 100 of the 1,000 streams get their first
    message; the 900 others (and the proxied unary calls made meanwhile) wait for a free
    stream until their deadline -- a caller without one, for ever. The proxy keeps one
    channel, i.e. one HTTP/2 connection, per backend (ProxyRegistry.channel) and our
    servers advertise MAX_CONCURRENT_STREAMS 100 (ServerOptions.maxConcurrentStreams, not
    a config item): the 101st concurrent call to a backend waits in the connection's
    queue of streams (nghttp2's) for one to end. The proxy itself holds no thread per
    call: to the grpcio backend (grpcio sets no MAX_CONCURRENT_STREAMS) all 1,000
    progress, the proxy's thread count flat."""
    # Both children start together (a backend with 1,050 threads takes a moment).
    backend = children("backend", backend_kind, BACKEND_WORKERS)
    proxy = children("proxy", "proxy", PROXY_WORKERS)
    backend.started()
    proxy.started()
    register(proxy.port, backend.port)
    target = "127.0.0.1:%d" % proxy.port
    timed_unary_calls(pb, target, 2)                            # warm-up
    threads_before = proc_status(proxy.pid, "Threads")
    r = asyncio.run(_thousand_streams(pb, backend, proxy, target))
    print("\n%d proxied streams through a proxy with rpc-max-workers %d: all first messages "
          "in %.2f s, all %d messages of all after the release in %.2f s; the proxy's "
          "threads: %d before, %d with the streams open, %d after; slowest unary call (ms) "
          "while they opened: %s (%d rounds), while open: %s, while completing: %s"
          % (STREAMS, PROXY_WORKERS, r["t_open"], MESSAGES, r["t_done"], threads_before,
             r["threads_open"], proc_status(proxy.pid, "Threads"), worst(r["opening"]),
             len(r["opening"]["srv.info"]), worst(r["idle"]), worst(r["completing"])))
    assert r["held"] == STREAMS, r["held"]
    assert r["ends"] == {"ok": STREAMS}, r["ends"]
    for kind in ("opening", "idle", "completing"):
        slow = {k: [round(t, 2) for t in v if t >= PROMPT] for k, v in r[kind].items()}
        assert not any(slow.values()), (kind, slow)
    # One thread per forwarded call would add 1,000 (or stop at the pool's 30 calls). The
    # proxy opens one connection to the backend per 100 concurrent calls (a server's
    # MAX_CONCURRENT_STREAMS), each with its event-loop thread and one callback thread.
    connections = -(-STREAMS // 100)
    assert r["threads_open"] - threads_before < 20 + 2 * connections, (threads_before, r["threads_open"])
    stats = backend.stats()
    assert stats["held"] == STREAMS and stats["ended"] == STREAMS, stats


async def _thousand_streams(pb, backend, proxy, target):
    channels = [grpc.aio.insecure_channel(target, options=OWN_CONNECTION)
                for _ in range(CHANNELS)]
    calls, tasks = [], []
    try:
        loop = asyncio.get_running_loop()
        first = asyncio.Queue()

        async def stream(call):
            try:
                m = await call.read()
            except grpc.RpcError as e:
                m = e
            first.put_nowait(m.index if isinstance(m, pb.Response) and not m.r.code else m)
            if not isinstance(m, pb.Response):
                return "failed before the first message"
            indexes = [m.index]
            while True:
                m = await call.read()
                if m is grpc.aio.EOF:
                    break
                if m.r.code:
                    return "error %s" % m.r
                indexes.append(m.index)
            code = await call.code()
            if code != grpc.StatusCode.OK:
                return str(code)
            return "ok" if indexes == list(range(MESSAGES)) else "got %s" % indexes

        # Unary calls from another client (a thread of its own) while the streams open.
        opened = threading.Event()
        opening = loop.run_in_executor(None, timed_unary_calls, pb, target, 0, opened)
        t0 = time.monotonic()
        for i in range(STREAMS):
            call = pb.Stub(channels[i % CHANNELS]).count(
                pb.Request(name="held", count=MESSAGES), timeout=BOUND)
            calls.append(call)
            tasks.append(asyncio.ensure_future(stream(call)))
        try:
            deadline = t0 + FIRST_MESSAGES_BOUND
            for n in range(STREAMS):
                try:
                    got = await asyncio.wait_for(first.get(), deadline - time.monotonic())
                except asyncio.TimeoutError:
                    stats = await loop.run_in_executor(None, backend.stats)
                    raise AssertionError(
                        "only %d of %d proxied streams got their first message within %d s; "
                        "the backend has %d of them waiting for the release; the proxy has "
                        "%d threads" % (n, STREAMS, FIRST_MESSAGES_BOUND, stats["held"],
                                        proc_status(proxy.pid, "Threads"))) from None
                assert got == 0, "a stream failed: %r" % (got,)
        finally:
            opened.set()
        t_open = time.monotonic() - t0
        took_opening = await opening
        # Every backend handler is past its first message, waiting for the release.
        held = int((await loop.run_in_executor(None, backend.command,
                                               "wait-held %d" % STREAMS)).split()[1])
        threads_open = proc_status(proxy.pid, "Threads")
        took_idle = await loop.run_in_executor(None, timed_unary_calls, pb, target, 5)

        # Released: every stream gets its other messages, then its end.
        completing = loop.run_in_executor(None, timed_unary_calls, pb, target, 5)
        t0 = time.monotonic()
        assert (await loop.run_in_executor(None, backend.command, "release")) == "released"
        ends = await asyncio.wait_for(asyncio.gather(*tasks), BOUND)
        t_done = time.monotonic() - t0
        took_completing = await completing
        counted = {}
        for e in ends:
            counted[e] = counted.get(e, 0) + 1
        return {"t_open": t_open, "opening": took_opening, "held": held,
                "threads_open": threads_open, "idle": took_idle, "completing": took_completing,
                "t_done": t_done, "ends": counted}
    finally:
        for call in calls:
            call.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ch in channels:
            await ch.close()


# ---- 2. end-to-end flow control ------------------------------------------------------

FLOOD = 60_000              # messages of FLOOD_PAD (4 KiB): 240 MiB through the proxy
CHUNK = 1000                # the caller reads this many at a time (4 MiB)...
PAUSE_EVERY = 5             # ...and after every 5th chunk pauses until the backend stops
QUIET = 0.15                # "stopped": no message handed to the library for this long (s)
# The caller is a plain grpcio client: its HTTP/2 receive window grows with its BDP
# probing (to ~20 MiB here), so what the backend may be ahead of the caller is that window,
# the sockets' in flight and the proxy's and the backend's buffers (the library: a 1 MiB
# receive window per stream, held while the reader is behind, and send() blocking past
# 1 MiB queued, on each side of each hop). Measured while the library holds its windows:
# 2-22 MiB ahead at the pauses (2-3 MiB with the caller's BDP probing off).
AHEAD_MAX_MIB = 64
# The proxy's RSS growth allowed past the baseline (MiB). Measured while the library holds
# its windows: +0.5-2.5 MiB; a proxy that keeps what the caller has not read grows by what
# the backend is ahead (up to the 240 MiB of the stream).
RSS_GROWTH_MAX_MIB = 32


def wait_stopped(counter):
    """Polls counter() until it has not moved for QUIET seconds: its value. (A stop shows
    only over time: this measures, it does not synchronise.)"""
    last, since = counter(), time.monotonic()
    deadline = since + BOUND
    while time.monotonic() < deadline:
        time.sleep(0.01)
        now, value = time.monotonic(), counter()
        if value != last:
            last, since = value, now
        elif now - since >= QUIET:
            return value
    raise AssertionError("the backend never stopped (%d messages)" % last)


def test_a_slow_caller_holds_the_backend_back_and_the_proxy_memory_is_bounded(
        pb, children, servers):
    """A 240 MiB stream from a backend (in this process: its sent count read as it goes)
    through a proxy in a child process (its RSS alone) to a caller that reads 4 MiB at a
    time and, every 20 MiB, pauses until the backend has stopped.

    Found with this test: the backend soon runs to the end of the stream (~215 MiB ahead
    of the caller) and the proxy's RSS grows by as much: its call to the backend stops
    holding back its HTTP/2 receive window. In GRPCHelperCore the window is held while the
    reader is behind (InboundQueue.push answers "hold" once two messages wait: the event
    loop sets H2Stream.holdWindow) and given back when a read empties the queue (receive()
    sets pendingRelease and schedules a flush, whose applyPending sets holdWindow = false
    and consumes the bytes held). When messages arrive between that read and its flush,
    the queue holds the window again (holdWindow still true), then the flush clears
    holdWindow: the queue believes the window held and does not ask again until it runs
    empty, while the stream acknowledges every byte as it comes (H2Session.dataChunk) --
    and a reader held back by its caller, as the proxy's, never empties its queue. The
    same code serves ClientCall and ServerCall: the library's own client, reading a fast
    stream in bursts, grows the same way (+160-180 MiB for these 240 MiB; grpcio's: +21)."""
    proxy = children("proxy", "proxy").started()
    manager = pb.Backend()
    backend = servers("backend", [backend_descriptor(pb, manager)])
    register(proxy.port, backend.port)
    mib = 1 / 1024
    with grpc.insecure_channel("127.0.0.1:%d" % proxy.port, options=OWN_CONNECTION) as ch:
        stub = pb.Stub(ch)
        # Warm-up: the proxy's channel to the backend, its buffers and allocator arenas.
        rss_start = proc_status(proxy.pid, "VmRSS")
        warm = [m.index for m in stub.count(pb.Request(name="flood", count=CHUNK), timeout=BOUND)]
        assert warm == list(range(CHUNK))
        manager.yielded = 0
        baseline = proc_status(proxy.pid, "VmRSS")

        read, ahead, rss, stops = 0, [], [], []
        t0 = time.monotonic()
        stream = stub.count(pb.Request(name="flood", count=FLOOD), timeout=BOUND)
        while read < FLOOD:
            for _ in range(CHUNK):
                m = next(stream)
                assert m.index == read and len(m.text) == FLOOD_PAD, (read, m.index)
                read += 1
            ahead.append((read, manager.yielded - read))
            rss.append(proc_status(proxy.pid, "VmRSS"))
            if read // CHUNK % PAUSE_EVERY == 0 and read < FLOOD:
                stopped = wait_stopped(lambda: manager.yielded)
                stops.append((read, stopped - read))
                ahead.append((read, stopped - read))
        assert next(stream, None) is None
        assert stream.code() == grpc.StatusCode.OK
        took = time.monotonic() - t0
    peak = max(max(rss), proc_status(proxy.pid, "VmHWM"))
    worst = max(ahead, key=lambda a: a[1])
    summary = ("%d messages of %d B (%.0f MiB) in %.1f s with %d pauses; the backend ahead of "
               "the caller: at the pauses %s MiB, at most %.1f MiB (after %d read); the "
               "proxy's RSS: %.1f MiB at the start, %.1f MiB baseline, %.1f MiB peak"
               % (FLOOD, FLOOD_PAD, FLOOD * FLOOD_PAD / 2**20, took, len(stops),
                  [round(a * FLOOD_PAD / 2**20, 1) for _, a in stops],
                  worst[1] * FLOOD_PAD / 2**20, worst[0], rss_start * mib, baseline * mib,
                  peak * mib))
    print("\n" + summary)
    # The backend was held back: never more than a few windows ahead of the caller...
    assert worst[1] * FLOOD_PAD / 2**20 < AHEAD_MAX_MIB, summary
    # ...and the proxy did not keep what the caller had not read.
    assert (peak - baseline) * mib < RSS_GROWTH_MAX_MIB, summary


# ---- 3. deadlines and cancellation, both ways ------------------------------------------

DEADLINE = 1.0              # the caller's (s)
CANCELS = 50                # calls cancelled by the caller (~a quarter raced, see below)


class Requests:
    """A caller's request stream, open until `close()`: what `put` gives, as it comes."""

    def __init__(self, *first):
        self.queue = queue.Queue()
        for r in first:
            self.queue.put(r)

    def put(self, r):
        self.queue.put(r)

    def close(self):
        self.queue.put(None)

    def __iter__(self):
        while True:
            r = self.queue.get()
            if r is None:
                return
            yield r


def test_deadlines_and_cancellations_cross_the_proxy_both_ways(pb, servers):
    """Proxy and backends in this process (the backends' handlers observed directly): the
    deadline reaches the backend, and ends its handler; a cancel ends a handler waiting
    for requests; an error result or status of the backend ends the caller's call while
    the caller still streams requests.

    Found with this test: of the bidi calls a caller cancels, about one in four (73 of
    300 measured; none without the proxy) reach the backend's handler as a normal end of
    the request stream, not as a cancellation: in forwardProxied, the request pump's
    call.receive() throws when the caller's call is cancelled, and the pump then
    half-closes the backend call (backend.closeSend()) -- it runs as soon as the
    cancellation wakes it, while onCancel's backend.cancel() runs after the wake-up, so
    the END_STREAM often goes out before the RST_STREAM. A client-streaming backend then
    answers (and acts on) a partial request stream the caller abandoned (measured: a
    `collect` completed 29 of 100 cancelled uploads). The pump should half-close only at
    the end of the caller's requests (receive() returning nil)."""
    manager = pb.Backend()
    backend = servers("backend", [backend_descriptor(pb, manager)])
    proxy = servers("proxy", proxy_descriptors(pb))
    context_backend = pb.ContextBackend()
    grpc_backend = grpchelper.server(4)
    pb.add(context_backend, grpc_backend)
    grpc_port = grpc_backend.add_insecure_port("127.0.0.1:0")
    grpc_backend.start()
    streams = []
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % proxy.port, options=OWN_CONNECTION) as ch:
            stub = pb.Stub(ch)

            # -- A backend on the library's grpcio API: it sees the caller's deadline...
            register(proxy.port, grpc_port)
            # (grpcio rounds the timeout it sends up, to a few significant digits: ~8 ms
            # here.)
            remaining = float(stub.hello(pb.Request(), timeout=5).text)
            assert 4.0 < remaining <= 5.1, remaining
            assert stub.hello(pb.Request()).text == "none"
            # ...and its handler is told when that deadline passes (add_callback) while it
            # waits, its first message sent.
            t0 = time.monotonic()
            call = stub.count(pb.Request(), timeout=DEADLINE)
            streams.append(call)
            assert next(call).index == 0
            method, told, active, t_end = context_backend.seen.get(timeout=BOUND)
            assert (method, told, active) == ("count", True, False)
            assert DEADLINE - 0.05 <= t_end - t0 < DEADLINE + PROMPT, t_end - t0
            assert call.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # A backend call ended with an error status while the caller still streams its
            # requests: the caller's call ends with an ERROR_RPC error result.
            requests = Requests(pb.Request(name="a", count=1), pb.Request(name="b", count=2))
            call = stub.chat(iter(requests), timeout=BOUND)
            streams.append((call, requests))
            assert [next(call).text for _ in range(2)] == ["re:a", "re:b"]
            t0 = time.monotonic()
            requests.put(pb.Request(name="z", code=1))
            rest = list(call)
            took_abort = time.monotonic() - t0
            assert len(rest) == 1 and rest[0].r.code == ResultCode.ERROR_RPC, rest
            assert ("/sample.SampleService/chat @ 127.0.0.1:%d" % grpc_port) in rest[0].r.msg
            assert "no more for z" in rest[0].r.msg, rest[0].r.msg
            assert call.code() == grpc.StatusCode.OK
            assert took_abort < PROMPT, took_abort

            # -- Our RpcServer backend (a Python manager: it sees its call end when it sends
            # or reads). The caller's deadline ends a stream blocked in a send (the caller
            # reads nothing after the first message: the windows fill).
            register(proxy.port, backend.port)
            t0 = time.monotonic()
            call = stub.count(pb.Request(name="endless"), timeout=DEADLINE)
            streams.append(call)
            assert next(call).index == 0
            ended = manager.wait_ended(1)
            assert [e[:2] for e in ended] == [("count", "closed")], ended
            took_deadline = ended[0][2] - t0
            assert DEADLINE - 0.05 <= took_deadline < DEADLINE + PROMPT, took_deadline
            assert call.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # The backend ends its call with an error result while the caller still
            # streams: the result passes untouched and the caller's call ends.
            requests = Requests(pb.Request(name="a", count=1), pb.Request(name="b", count=2))
            call = stub.chat(iter(requests), timeout=BOUND)
            streams.append((call, requests))
            assert [next(call).text for _ in range(2)] == ["re:a", "re:b"]
            t0 = time.monotonic()
            requests.put(pb.Request(name="z", code=ResultCode.ERROR_ITEM_BUSY))
            rest = list(call)
            took_error = time.monotonic() - t0
            assert [(r.r.code, r.r.msg) for r in rest] == [
                (ResultCode.ERROR_ITEM_BUSY, "refused z")], rest
            assert call.code() == grpc.StatusCode.OK
            assert took_error < PROMPT, took_error
            ended = manager.wait_ended(2)
            assert [e[:2] for e in ended[1:]] == [("chat", "raised")], ended
            # The caller cancels: a handler waiting for the next request sees its call end
            # -- not the end of the request stream, which would tell it the caller had
            # sent everything (CANCELS times: see the docstring).
            took_cancel = []
            for n in range(CANCELS):
                requests = Requests(pb.Request(name="a", count=1))
                call = stub.chat(iter(requests), timeout=BOUND)
                streams.append((call, requests))
                assert next(call).text == "re:a"
                t0 = time.monotonic()
                call.cancel()
                requests.close()
                ended = manager.wait_ended(3 + n)
                assert len(ended) == 3 + n and ended[-1][0] == "chat", ended
                took_cancel.append(ended[-1][2] - t0)
            seen = {}
            for _, how, _ in ended[2:]:
                seen[how] = seen.get(how, 0) + 1
            assert seen == {"_CallEnded": CANCELS}, (
                "of %d calls the caller cancelled, the backend saw %s (half-closed: its "
                "request stream ended as if the caller had sent everything)" % (CANCELS, seen))
            assert max(took_cancel) < PROMPT, took_cancel
        print("\nthe backend's handler ended %.0f ms after the caller's deadline (%.1f s), "
              "at most %.0f ms after its cancel; the caller's call ended %.0f ms after the "
              "backend's error result, %.0f ms after its error status"
              % (1000 * (took_deadline - DEADLINE), DEADLINE, 1000 * max(took_cancel),
                 1000 * took_error, 1000 * took_abort))
    finally:
        for s in streams:
            call, requests = s if isinstance(s, tuple) else (s, None)
            call.cancel()
            if requests is not None:
                requests.close()
        grpc_backend.stop(0).wait(BOUND)


# ---- 4. a backend that dies mid-call -----------------------------------------------------

# The proxy's rpc-client-timeout here (s): how long it retries an unreachable backend for a
# call with a single request (unary, server streaming) that got no response yet.
CLIENT_TIMEOUT = 1.0


def chat_once(pb, stub, name):
    """A bidi call of one request (a request stream: the proxy never retries it): its
    answers, and how long it took."""
    t0 = time.monotonic()
    answers = list(stub.chat(iter([pb.Request(name=name, count=1)]), timeout=BOUND))
    return answers, time.monotonic() - t0


def test_a_backend_killed_mid_call_is_a_clear_error_and_a_new_one_serves(pb, children, servers):
    proxy = servers("proxy", proxy_descriptors(pb), client_timeout=CLIENT_TIMEOUT)
    first = children("backend-1", "backend").started()
    register(proxy.port, first.port)
    call = None
    with grpc.insecure_channel("127.0.0.1:%d" % proxy.port, options=OWN_CONNECTION) as ch:
        stub, srv = pb.Stub(ch), RpcServerServiceStub(ch)
        try:
            assert stub.hello(pb.Request(name="one"), timeout=BOUND).text == "hello one"
            call = stub.count(pb.Request(name="held", count=3), timeout=BOUND)
            assert next(call).index == 0
            assert first.command("wait-held 1") == "held 1"
            t0 = time.monotonic()
            first.kill()
            # The caller's stream ends at once, with the proxy's error result (a response
            # was forwarded: no retry).
            rest = list(call)
            took_kill = time.monotonic() - t0
            assert len(rest) == 1 and rest[0].r.code == ResultCode.ERROR_RPC, rest
            where = "/sample.SampleService/count @ 127.0.0.1:%d" % first.port
            assert rest[0].r.msg.startswith("RPC error (on %s): " % where), rest[0].r.msg
            assert call.code() == grpc.StatusCode.OK
            assert took_kill < PROMPT, took_kill
        finally:
            if call is not None:
                call.cancel()
        # The proxy is up. Calls to the dead backend end with a clear error: at once with a
        # request stream, after retrying for rpc-client-timeout with a single request.
        t0 = time.monotonic()
        info = srv.info(Filter(names=["sample"]), timeout=BOUND).items[0]
        took_info = time.monotonic() - t0
        assert (info.proxy_port, info.version) == (first.port, VERSION)
        assert took_info < PROMPT, took_info
        answers, took_chat = chat_once(pb, stub, "two")
        assert len(answers) == 1 and answers[0].r.code == ResultCode.ERROR_RPC, answers
        assert ("/sample.SampleService/chat @ 127.0.0.1:%d" % first.port) in answers[0].r.msg
        assert took_chat < PROMPT, took_chat
        t0 = time.monotonic()
        r = stub.hello(pb.Request(name="two"), timeout=BOUND)
        took_hello = time.monotonic() - t0
        assert r.r.code == ResultCode.ERROR_RPC, r
        assert ("/sample.SampleService/hello @ 127.0.0.1:%d" % first.port) in r.r.msg, r.r.msg
        assert CLIENT_TIMEOUT - 0.05 <= took_hello < CLIENT_TIMEOUT + PROMPT, took_hello
        # A new backend (another port) registers: calls are served again.
        second = children("backend-2", "backend").started()
        assert second.port != first.port
        register(proxy.port, second.port)
        t0 = time.monotonic()
        assert stub.hello(pb.Request(name="three"), timeout=BOUND).text == "hello three"
        assert [m.index for m in stub.count(pb.Request(name="flood", count=3),
                                            timeout=BOUND)] == [0, 1, 2]
        assert [a.text for a in chat_once(pb, stub, "three")[0]] == ["re:three"]
        took_new = time.monotonic() - t0
    print("\nbackend killed: the caller's stream ended %.0f ms later (%s); with the backend "
          "dead, srv.info answered in %.0f ms, a bidi call's ERROR_RPC in %.0f ms, a unary "
          "call's in %.2f s (rpc-client-timeout %.1f s); a new backend served 3 calls in "
          "%.0f ms"
          % (1000 * took_kill, rest[0].r.msg.splitlines()[0], 1000 * took_info,
             1000 * took_chat, took_hello, CLIENT_TIMEOUT, 1000 * took_new))


def test_a_backend_restarted_on_its_port_serves_as_soon_as_registered(pb, children, servers):
    """The usual restart: the backend comes back on its (configured) port and registers
    again. Callers kept calling while it was down (each answered ERROR_RPC), so the proxy's
    channel to that host:port retried its connection: the calls after the registration
    must reach the new backend all the same, at once.

    Found with this test: until the channel's connection backoff ends (gRPC's: 1 s after
    one failed attempt, then x1.6 per attempt, up to 120 s) a call with a request stream
    answers ERROR_RPC "failed to connect", and a single-request call waits, retried by the
    proxy (measured: ~2 s after a backend down for 8 s under a call every 0.1 s; a longer
    outage, a longer wait, and past rpc-client-timeout an ERROR_RPC). The proxy keeps its
    channel per host:port (ProxyRegistry.channel) and proxy_register leaves it in its
    backoff: a registration could reset it, or replace the channel."""
    proxy = servers("proxy", proxy_descriptors(pb))
    first = children("backend-1", "backend").started()
    register(proxy.port, first.port)
    pace = threading.Event()                    # never set: paces the calls below
    with grpc.insecure_channel("127.0.0.1:%d" % proxy.port, options=OWN_CONNECTION) as ch:
        stub = pb.Stub(ch)
        assert stub.hello(pb.Request(name="one"), timeout=BOUND).text == "hello one"
        first.kill()
        # Down for 1.2 s, a bidi call every 50 ms (each answered at once): the channel
        # tried to connect at once and again after 1 s.
        t0 = time.monotonic()
        failed = 0
        while time.monotonic() - t0 < 1.2:
            answers, _ = chat_once(pb, stub, "down")
            assert len(answers) == 1 and answers[0].r.code == ResultCode.ERROR_RPC, answers
            failed += 1
            pace.wait(0.05)
        second = children("backend-2", "backend", port=first.port).started()
        assert second.port == first.port
        register(proxy.port, second.port)
        answers, took_chat = chat_once(pb, stub, "back")
        t0 = time.monotonic()
        hello = stub.hello(pb.Request(name="back"), timeout=BOUND)
        took_hello = time.monotonic() - t0
    outcome = ("the backend restarted on port %d and registered again (%d calls failed while "
               "it was down): the next bidi call answered %s in %.0f ms, the next unary call "
               "%r in %.2f s"
               % (second.port, failed, [a.text or a.r.msg.splitlines()[0] for a in answers],
                  1000 * took_chat, hello.text or hello.r.msg.splitlines()[0], took_hello))
    print("\n" + outcome)
    assert [a.text for a in answers] == ["re:back"], outcome
    assert hello.text == "hello back" and took_hello < PROMPT, outcome
