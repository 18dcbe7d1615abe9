"""The library's persisted JSON files survive their writer being killed mid-write.

The library writes config.json (user config items), loggers.json (logger levels),
queues.json (event queues) and proxy.json (proxy registrations) atomically (Folders.swift
writeJSONObject: a temporary file beside it, then rename). Here a writer process rewrites
one of them in a tight loop, through the binding's own APIs, with changing content that
names a counter, and is killed with SIGKILL at a random moment (a random delay of a few
ms to ~50 ms after it has written the file once); the file must then exist, parse as JSON
and hold a state this writer wrote: never torn, never empty. Each kind is killed many
times (KILLS, a few hundred kills in all) over one workspace, so each writer starts by
loading what the previous kill left; it reports what it loaded (through the API) and the
test checks that it is exactly what it found on disk. After the last kill the test itself
starts the same kind of server over the same folders and reads the values back through
the API.

How each file is rewritten (in-process where an API exists, else a loopback call):
- config.json: `RpcServer.config.set` (the config service's set, in-process) of a user
  item "crash-counter" to the counter;
- loggers.json: `RpcServer.logs.set` (the logger service's set, in-process) of ten loggers
  crash.d0..crash.d9 whose levels (DEBUG..CRITICAL, or disabled) are the counter's base-6
  digits (one set, one write);
- queues.json: a new events queue per iteration (`events.listen` through the server's
  auto-client on loopback, first message read, then closed: the queue stays, interrupted;
  the library writes the file off the caller's thread, coalesced); the counter is the
  number of queues (ids 1..K);
- proxy.json: `srv.proxy_register` (auto-client on loopback) of the proxied service
  "sample" with version "crash:<counter>" and a port derived from it.

Writers are fresh processes: one zygote process per kind (`python3 -c WRITER`, with the
environment of the other tests' subprocesses: PYTHONPATH to bindings/python) imports the
package once, then forks a writer per kill (so a writer starts in ~20 ms, not the ~0.3 s of
an import); the zygote reaps it and reports how it ended, so the file is checked only once
the writer is gone. Nothing waits by sleeping: the test reads the writer's "ready" line
and the zygote's "exited" line from its stdout (with a bound), and sleeps only for the
random delay before the kill. The random seed is printed with every failure
(CRASH_SAFETY_SEED reproduces a run's delays).

Temporary files: a killed writer may leave its `<name>.tmp-<pid>-*` beside the file; the
next write removes those of dead processes, so at most the last kill's one remains. (The
library used to write through Foundation's FileManager.createFile, whose own hidden
`.dat.nosync*` temporaries were left behind by 40-80 % of the kills and never removed;
none may appear now.) The counts are reported at the end of the module.

The test does catch torn writes: with the library's final rename turned into an in-place
rewrite (an LD_PRELOAD'ed rename(): open O_TRUNC, then the bytes one by one), every kind
failed in both runs tried (an empty or cut file, most often within a few kills; config.json,
30 bytes, once only at kill 46).
"""

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from grpchelper import Config, Folders, RpcServer
from grpchelper.api import ConfigValidator, Empty, Filter

from test_proxy import proxied
from test_rpc_server import pb  # noqa: F401 (fixture)

HERE = os.path.dirname(os.path.abspath(__file__))
BINDINGS_PYTHON = os.path.dirname(HERE)

# Kills per kind (a few hundred in all): a kill costs ~50 ms (fork, server start, the
# random delay, the checks).
KILLS = {"config": 80, "loggers": 80, "queues": 60, "proxy": 80}
# The random delay between the writer's first write and its kill (seconds).
DELAY = (0.002, 0.05)
# Counters of kill k start at (k + 1) * STRIDE: a state read back names the writer.
STRIDE = 100_000
# Bound of every wait (seconds): reached only when something is broken.
BOUND = 30

ITEM = "crash-counter"
HOST = "127.0.0.1"
DIGITS = 10                                     # loggers crash.d0 .. crash.d9
LOGGERS = ["crash.d%d" % i for i in range(DIGITS)]
# A digit of loggers.json: a level name, or false (disabled).
SYMBOLS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", False]

SEED = int(os.environ.get("CRASH_SAFETY_SEED") or int.from_bytes(os.urandom(4), "little"))

# The zygote: imports the package, then per "go BASE" line forks a writer and prints
# "exited PID STATUS" once it has reaped it. The writer prints "ready PID LOADED" (LOADED:
# the state it loaded, as JSON) once the file holds a state it wrote, and goes on writing.
WRITER = r'''
import ctypes, json, os, signal, sys, traceback, types

KIND, WORKSPACE, ITEM, HOST = sys.argv[1:5]
DIGITS = 10
LOGGERS = ["crash.d%d" % i for i in range(DIGITS)]

from grpchelper import Config, Folders, RpcServer, RpcServiceDescriptor
from grpchelper.api import (ConfigItemUpdate, ConfigUpdate, ConfigValidator, Empty,
                            EventFilter, Filter, LoggerConfig, LoggerLevel, LoggerUpdate,
                            ProxyRegisterRequest)
LEVELS = [LoggerLevel.LVL_DEBUG, LoggerLevel.LVL_INFO, LoggerLevel.LVL_WARNING,
          LoggerLevel.LVL_ERROR, LoggerLevel.LVL_CRITICAL]
if KIND == "proxy":
    import sample_pb2, sample_pb2_grpc


def server(**kwargs):
    cli = {"rpc-shutdown-grace": "1", "rpc-event-retain-timeout": "86400",
           "rpc-event-keepalive-timeout": "3600"}
    return RpcServer(0, kwargs.pop("descriptors", []), folders=Folders(workspace=WORKSPACE),
                     cli_config=cli, with_debug_signal=False, **kwargs)


def config():
    item = Config(name=ITEM, description="crash test counter", default_value="0",
                  validator=ConfigValidator.CONFIG_VALID_INT)
    srv = server(user_items=[item])
    loaded = int(srv.config.get(Filter(names=[ITEM])).items[0].value)

    def write(n):
        srv.config.set(ConfigUpdate(items=[ConfigItemUpdate(name=ITEM, value=str(n))]))
    return srv, loaded, write, None


def loggers():
    srv = server()
    digits = []
    for c in srv.logs.get(Filter(names=LOGGERS)).items:
        digits.append(5 if not c.enabled else (c.level // 10 - 1 if c.level else None))
    loaded = None if None in digits else sum(d * 6 ** i for i, d in enumerate(digits))

    def write(n):
        items = []
        for name in LOGGERS:
            n, d = divmod(n, 6)
            items.append(LoggerConfig(name=name, enabled=d < 5, level=LEVELS[d % 5]))
        srv.logs.set(LoggerUpdate(items=items))
    return srv, loaded, write, None


def queues():
    srv = server(with_events=True)
    ids = sorted(srv.client.events.inspect(Empty()).client_ids)
    if ids != list(range(1, len(ids) + 1)):
        raise AssertionError("restored queue ids are not 1..K: %r" % ids)
    loaded = len(ids)

    def write(n):
        stream = srv.client.events.listen(EventFilter())
        next(stream)            # the queue is made (its write scheduled)
        stream.close()          # interrupted: kept

    def landed():
        # The library writes queues.json off this thread: ready once it holds a queue of
        # this writer.
        try:
            with open(os.path.join(WORKSPACE, "queues.json")) as f:
                return len(json.load(f)) > loaded
        except FileNotFoundError:
            return False
    return srv, loaded, write, landed


def proxy():
    module = types.ModuleType("sample_api")
    module.__title__, module.__version__ = "sample-api", "1.2.3"
    srv = server(descriptors=[RpcServiceDescriptor(
        module, "sample", sample_pb2.SampleApiVersion, sample_pb2_grpc.SampleServiceServicer(),
        sample_pb2_grpc.add_SampleServiceServicer_to_server, sample_pb2_grpc.SampleServiceStub,
        is_proxy=True)])
    i = srv.info(Filter(names=["sample"])).items[0]
    loaded = [i.proxy_host, i.proxy_port, i.version] if i.proxy_port else None

    def write(n):
        srv.client.srv.proxy_register(ProxyRegisterRequest(
            names=["sample"], version="crash:%d" % n, host=HOST, port=1 + n % 65535))
    return srv, loaded, write, None


def writer(base):
    srv, loaded, write, landed = {"config": config, "loggers": loggers, "queues": queues,
                                  "proxy": proxy}[KIND]()
    n = base
    ready = False
    while True:
        write(n)
        n += 1
        if not ready and (landed is None or landed()):
            ready = True
            print("ready %d %s" % (os.getpid(), json.dumps(loaded)), flush=True)


print("zygote %d" % os.getpid(), flush=True)
for line in sys.stdin:
    words = line.split()
    if words == ["quit"]:
        break
    base = int(words[1])
    zygote = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            # Killed with the zygote, whatever ends it (PR_SET_PDEATHSIG).
            if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
            if os.getppid() != zygote:
                raise RuntimeError("the zygote is gone")
            writer(base)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print("exited %d %d" % (pid, status), flush=True)
'''


def writer_env(*paths):
    """The environment of the other tests' Python subprocesses (test_tool.py's tool_env):
    the package from bindings/python, the library as the package finds it."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([BINDINGS_PYTHON] + list(paths)))


class Zygote:
    """The writer zygote of one kind over one workspace."""

    def __init__(self, kind, workspace, stderr_path, env):
        self.stderr = open(stderr_path, "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, kind, str(workspace), ITEM, HOST],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
            env=env, cwd=str(workspace.parent))
        self.lines = queue.Queue()
        self.reading = threading.Thread(target=self._read, daemon=True)
        self.reading.start()
        self.child = None           # (pid, pidfd) of the writer running, once ready
        self.busy = False           # a writer was forked and not reaped yet
        first = self._line()
        assert first.startswith("zygote "), first

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def _line(self):
        try:
            line = self.lines.get(timeout=BOUND)
        except queue.Empty:
            line = "(nothing within %d s)" % BOUND
        if line is None or line.startswith("("):
            raise AssertionError("writer zygote: %s; stderr:\n%s" % (line or "ended", self.errors()))
        return line

    def errors(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()[-4000:]

    def start(self, base):
        """Forks a writer counting from `base`; once it has written the file: (pid, the
        state it loaded)."""
        self.busy = True
        self.proc.stdin.write("go %d\n" % base)
        self.proc.stdin.flush()
        line = self._line()
        if not line.startswith("ready "):
            if line.startswith("exited "):
                self.busy = False
            raise AssertionError("the writer did not start: %s; stderr:\n%s" % (line, self.errors()))
        _, pid, loaded = line.split(" ", 2)
        pid = int(pid)
        self.child = (pid, os.pidfd_open(pid))
        return pid, json.loads(loaded)

    def kill(self):
        """SIGKILL to the writer; returns once the zygote has reaped it (checked killed by
        that signal, not ended by itself)."""
        pid, fd = self.child
        self.child = None
        try:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        except ProcessLookupError:
            pass                    # it ended by itself: the status below says how
        finally:
            os.close(fd)
        line = self._line()
        words = line.split()
        assert words[:2] == ["exited", str(pid)], line
        self.busy = False
        status = int(words[2])
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, \
            "writer %d ended by itself (status %d); stderr:\n%s" % (pid, status, self.errors())

    def close(self):
        """Ends the writer (if one runs) and the zygote."""
        try:
            if self.child is not None:
                pid, fd = self.child
                self.child = None
                try:
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.close(fd)
            elif self.busy and self.proc.poll() is None:
                # A writer that never said ready (its pid unknown): the zygote waits for
                # it; killing the zygote kills it too (PR_SET_PDEATHSIG).
                self.proc.kill()
            if self.proc.poll() is None:
                try:
                    self.proc.stdin.write("quit\n")
                    self.proc.stdin.flush()
                except OSError:
                    pass
                try:
                    self.proc.wait(BOUND)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(BOUND)
        finally:
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            self.reading.join(BOUND)
            self.stderr.close()


# --- what a file may hold: the state it names (or an AssertionError) ----------------------

def counter_of(n, base, what):
    assert base <= n < base + STRIDE, "%s names %d: not a value of the writer counting from %d" \
        % (what, n, base)
    return n


def check_config(obj, base, loaded):
    assert isinstance(obj, dict) and list(obj) == [ITEM] and isinstance(obj[ITEM], str), obj
    return counter_of(int(obj[ITEM]), base, "config.json")


def check_loggers(obj, base, loaded):
    assert isinstance(obj, dict) and sorted(obj) == sorted(LOGGERS), obj
    digits = []
    for name in LOGGERS:
        value = obj[name]
        assert value is False or (isinstance(value, str) and value in SYMBOLS), obj
        digits.append(SYMBOLS.index(value))
    return counter_of(sum(d * 6 ** i for i, d in enumerate(digits)), base, "loggers.json")


def check_queues(obj, base, loaded):
    assert isinstance(obj, dict), obj
    k = len(obj)
    assert sorted(obj) == sorted(str(i) for i in range(1, k + 1)), sorted(obj)
    assert all(v == [] for v in obj.values()), obj      # no event is ever sent
    assert k > loaded, "queues.json has %d queues, as many as the writer loaded" % k
    return k


def proxy_state(n):
    return [HOST, 1 + n % 65535, "crash:%d" % n]


def check_proxy(obj, base, loaded):
    assert isinstance(obj, dict) and list(obj) == ["sample"], obj
    entry = obj["sample"]
    assert isinstance(entry, dict) and sorted(entry) == ["host", "port", "version"], obj
    version = entry["version"]
    assert isinstance(version, str) and version.startswith("crash:"), obj
    n = counter_of(int(version[len("crash:"):]), base, "proxy.json")
    state = proxy_state(n)
    assert [entry["host"], entry["port"], entry["version"]] == state, obj
    return state


# kind → (file, checker, the state of a workspace without the file)
KINDS = {
    "config": ("config.json", check_config, 0),
    "loggers": ("loggers.json", check_loggers, None),
    "queues": ("queues.json", check_queues, 0),
    "proxy": ("proxy.json", check_proxy, None),
}


# --- reading the files back in this process -----------------------------------------------

def reload_state(kind, folders, pb):
    """The state a server of this kind loads from `folders`, read through its API."""
    cli = {"rpc-shutdown-grace": "1", "rpc-event-retain-timeout": "86400",
           "rpc-event-keepalive-timeout": "3600"}
    kwargs = {}
    descriptors = []
    if kind == "config":
        kwargs["user_items"] = [Config(name=ITEM, description="crash test counter",
                                       default_value="0", validator=ConfigValidator.CONFIG_VALID_INT)]
    elif kind == "queues":
        kwargs["with_events"] = True
    elif kind == "proxy":
        descriptors.append(proxied(pb))
    srv = RpcServer(0, descriptors, folders=folders, cli_config=cli, with_debug_signal=False,
                    **kwargs)
    try:
        if kind == "config":
            return int(srv.config.get(Filter(names=[ITEM])).items[0].value)
        if kind == "loggers":
            digits = [5 if not c.enabled else c.level // 10 - 1
                      for c in srv.logs.get(Filter(names=LOGGERS)).items]
            return sum(d * 6 ** i for i, d in enumerate(digits))
        if kind == "queues":
            ids = list(srv.client.events.inspect(Empty()).client_ids)
            assert sorted(ids) == list(range(1, len(ids) + 1)), ids
            return len(ids)
        i = srv.info(Filter(names=["sample"])).items[0]
        return [i.proxy_host, i.proxy_port, i.version]
    finally:
        srv.shutdown()
        srv.close()


# --- the tests ------------------------------------------------------------------------------

SUMMARY = []


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """Prints what the kills left (stray temporary files) at the end of the module."""
    yield
    plugins = request.config.pluginmanager
    tr = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")
    if tr is None or capture is None or not SUMMARY:
        return
    with capture.global_and_fixture_disabled():
        tr.write_line("")
        tr.write_sep("-", "crash safety (seed %d)" % SEED)
        for line in SUMMARY:
            tr.write_line(line)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_killed_writer_leaves_a_whole_file(kind, tmp_path, request):
    """KILLS[kind] writers killed at a random moment: after each, the file parses and
    holds a state the writer wrote, and the next writer loads exactly that; at the end a
    server of this process loads it too."""
    name, check, state = KINDS[kind]
    rng = random.Random("%d-%s" % (SEED, kind))
    workspace = tmp_path / "wks"
    workspace.mkdir()
    path = workspace / name
    extra = []
    pb = None
    if kind == "proxy":
        pb = request.getfixturevalue("pb")
        extra.append(os.path.dirname(os.path.abspath(pb.pb2.__file__)))

    started = time.monotonic()
    zygote = Zygote(kind, workspace, tmp_path / "writer.stderr", writer_env(*extra))
    try:
        for k in range(KILLS[kind]):
            base = (k + 1) * STRIDE
            where = "kill %d of %s (seed %d)" % (k + 1, kind, SEED)
            _, loaded = zygote.start(base)
            assert loaded == state, "%s: the writer loaded %r, the file held %r" \
                % (where, loaded, state)
            time.sleep(rng.uniform(*DELAY))
            zygote.kill()
            # The writer is gone: what it left.
            assert path.exists(), "%s: no %s" % (where, name)
            raw = path.read_bytes()
            assert raw.strip(), "%s: %s is empty" % (where, name)
            try:
                obj = json.loads(raw)
            except ValueError as e:
                raise AssertionError("%s: %s is not JSON (%s): %r" % (where, name, e, raw[-300:]))
            try:
                state = check(obj, base, loaded)
            except AssertionError as e:
                raise AssertionError("%s: %s: %s" % (where, name, e)) from None
    finally:
        zygote.close()
    elapsed = time.monotonic() - started

    strays = sorted(p.name for p in workspace.iterdir()
                    if ".tmp-" in p.name or p.name.startswith(".dat.nosync"))
    tmp_strays = [s for s in strays if ".tmp-" in s]
    assert len(tmp_strays) <= 1, tmp_strays
    assert len(strays) == len(tmp_strays), strays
    # A restore that found a bad file would have moved it aside (queues, proxy).
    assert not list(workspace.glob("*.invalid")), list(workspace.glob("*.invalid"))

    # The same kind of server, in this process, over the same folders.
    assert reload_state(kind, Folders(workspace=workspace), pb) == state
    SUMMARY.append("%-7s %s: %d kills in %.1f s; last state %r; stray temp files: %d *.tmp-*, "
                   "%d .dat.nosync* (Foundation's)"
                   % (kind, name, KILLS[kind], elapsed, state if kind != "queues" else
                      "%d queues" % state, len(tmp_strays), len(strays) - len(tmp_strays)))
