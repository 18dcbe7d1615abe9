#!/usr/bin/env python3
"""Proxied services benchmark (issue 13): calls through a proxy vs direct to the backend, ours
vs the original grpc-helper's, in one run.

    python3 bench/proxy_bench.py [--seconds S] [--warmup W] [--quick] [--repeat N]
                                 [--concurrency M] [--stream-messages K]
                                 [--setups ours,ours-c,cpp,original] [--json FILE]

A setup is a backend server serving the sample service (Tests/interop_helper/protos/
sample.proto, no package: /SampleService/echo unary, /SampleService/count server-streaming)
and a main server (the proxy) declaring that service proxied, with the backend registered
by srv.proxy_register (host 127.0.0.1, the backend's port) before any row. Each server runs
in a subprocess of its own (this script with --serve ROLE, or the compiled C backend):

  ours      backend: grpchelper.RpcServer with a Python manager (RpcManager: echo answers
            SampleStatus(text=request.text), count yields `count` SampleStatus(index=i,
            text=request.text)); proxy: grpchelper.RpcServer with the descriptor
            is_proxy=True (its forwarding is the library's, in Swift). The binding is
            bindings/python, the library the one it finds (GRPCHELPER_LIBRARY if set, else
            pkg-config, the linker path, build/lib/libgrpchelper.so.1).
  ours-c    the same proxy in front of a C backend on the library (gh_server, the two
            methods answering the same bytes as the Python manager; the C source is in this
            file, compiled with cc against Sources/CGRPCHelper/include and the library the
            binding loaded, into a temporary folder). A Python backend (its handlers under
            the GIL) bounds ours' throughput: behind the proxy it is the limit, at ~10k
            calls/s; with a C one the proxy's own cost shows. Skipped when no C compiler
            is found.
  cpp       the same C backend behind C++ gRPC's best generic proxy (bench/cpp_proxy.cc,
            compiled with g++ against Debian's grpc++ found by pkg-config: a callback
            generic service forwarding each call through a GenericStub bidi reactor; no
            registration, the backend's port is given at start). The peer for the proxy's
            own cost. Skipped without g++ and grpc++ (apt-get install g++ libgrpc++-dev).
  original  grpc-helper 2.3.1 (grpcio) as both: the backend with the same Python manager,
            the proxy an RpcServer whose descriptor has is_proxy=True (it forwards each call
            with a new RpcClient). Run from ~/.cache/libgrpchelper/grpc-helper-2.3.1 (first
            on the child's PYTHONPATH; installed by Tests/interop_helper/original.py when
            missing); nothing of ours is imported in its processes.

Every Python server gets the same config (-c): rpc-max-workers 64 (the original's proxy
holds a worker thread per forwarded call: with its default 30, 32 calls in flight would
queue), rpc-shutdown-grace 1, rpc-shutdown-timeout 1; logging at the defaults. Servers are
stopped with "shutdown" on stdin and must exit 0.

Rows, each measured on the backend directly and through the proxy, in that order:

  unary, 1 caller    h2load -c1 -m1: one call at a time. W s of warm-up (--warmup, 1: an
                     h2load run of its own, not counted), then S s (--seconds, 5).
                     calls/s, p50 and p99 (nearest rank over h2load's --log-file of the
                     measured calls).
  unary, M in flight h2load -c1 -m M (--concurrency, 32): M calls in flight on one HTTP/2
                     connection. Same figures.
  server stream      h2load -c1 -m1 -n C: C calls of `count` K (--stream-messages, 5000)
                     messages each, one at a time; C is chosen from a first timed call (the
                     warm-up) so that the row takes about S s. messages/s = C x K / time.

The client is h2load (C, nghttp2): each request is a POST of a fixed gRPC frame (the
SampleRequest's bytes after the 5-byte gRPC prefix) with content-type application/grpc, te
trailers and grpc-helper's metadata (client, user, ip, api_version 3; not host, which
h2load takes for the :authority), the same bytes for every setup. h2load does not look at gRPC statuses, so every row is checked: the DATA
bytes h2load received must be exactly those of correct answers (unary: succeeded calls x the
answer's gRPC frame, allowing for the calls still in flight at the end; stream: C x the K
frames) — an error result or an error status has other bytes. Before the rows, a Python
client (grpchelper channel) checks each path's answers byte for byte (echo, and a count of
3), directly and through the proxy.

CPU: cores used over each row's measured run by h2load (its rusage), the backend and
the proxy processes (/proc/<pid>/stat), and the whole machine (/proc/stat); "proxy us/call"
is the proxy process's CPU time per forwarded call (per message in the stream rows).

Ratios printed: proxied / direct latency at 1 caller (p50, p99, mean = 1 / calls/s; goal:
<= 1.5x), proxied / direct calls/s at M in flight, and ours / original for the proxied
calls/s at 1 caller and at M in flight (goal: >= 10x), the proxied stream messages/s and
the proxy process's CPU time per forwarded call. The goals are printed for both of ours:
latency on the p50 at 1 caller (the Python backend's slower direct call is the lenient
case, the C backend's the strict one); calls/s at M in flight, where the C backend leaves
the proxy as the limit (the original's proxy is its own limit: its backend answers ~3x its
proxied rate directly) and the Python backend is itself the limit of ours.

--repeat N runs everything N times, interleaved (repetition 1 of every setup, then 2, ...;
each repetition starts its servers afresh); the tables show the median repetition of each
cell (by calls/s or messages/s), then every repetition's figures; each ratio is taken
within one repetition, and the ratios table (and the goals) shows the median of those.
--json FILE also writes every row's figures to FILE.

Defaults: S = 5 s, W = 1 s, K = 5000, 1 repetition; the whole run takes about 1 min 45 s
(--repeat 3: ~5 min). --quick: S = 1 s, W = 0.5 s, K = 2000 (smoke test, ~25 s). Needs h2load (apt-get install
nghttp2-client). PROXY_BENCH_BINDING=<dir> imports grpchelper from another copy of the
binding.
"""

import argparse
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
BINDING = os.path.abspath(os.environ.get("PROXY_BENCH_BINDING")
                          or os.path.join(ROOT, "bindings", "python"))
HEADERS = os.path.join(ROOT, "Sources", "CGRPCHelper", "include")
ORIGINAL_VERSION = "2.3.1"

SETUPS = ("ours", "ours-c", "cpp", "original")
LABEL = {"ours": "ours (Python backend)", "ours-c": "ours (C backend)",
         "cpp": "C++ gRPC (C backend)", "original": "original 2.3.1"}
SERVER_CONFIG = {"rpc-max-workers": "64", "rpc-shutdown-grace": "1",
                 "rpc-shutdown-timeout": "1"}
ECHO = "/SampleService/echo"
COUNT = "/SampleService/count"
REGISTER = "/RpcServerService/proxy_register"
SERVICE = "sample"
REGISTERED_VERSION = "proxy-bench:1.0"
ECHO_TEXT = "hello through the proxy"      # the unary request's text (answered as is)
STREAM_TEXT = "stream message"             # each streamed message's text
# grpc-helper's call metadata (what an RpcClient sends), on every h2load request
# (not "host": h2load would take it for the :authority)
CALL_METADATA = (("client", "proxy-bench"), ("user", "bench"), ("ip", "127.0.0.1"),
                 ("api_version", "3"))
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The C backend: the sample service on gh_server (raw bytes; the protobuf encoding by hand,
# in field order as protobuf serializes: SampleStatus text = 2, index = 3, 0 values omitted).
C_BACKEND = r"""
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grpchelper.h>

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) { p[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    p[n++] = (uint8_t)v;
    return n;
}

static int get_varint(const uint8_t *d, size_t len, size_t *pos, uint64_t *v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *pos < len; shift += 7) {
        uint8_t b = d[(*pos)++];
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *v = r; return 1; }
    }
    return 0;
}

/* SampleRequest: text = 1, count = 2; other fields skipped. */
static int parse(const uint8_t *d, size_t len, const uint8_t **text, size_t *tlen,
                 uint64_t *count) {
    size_t pos = 0;
    *text = NULL; *tlen = 0; *count = 0;
    while (pos < len) {
        uint64_t key, v;
        if (!get_varint(d, len, &pos, &key)) return 0;
        switch (key & 7) {
        case 0:
            if (!get_varint(d, len, &pos, &v)) return 0;
            if ((key >> 3) == 2) *count = v;
            break;
        case 2:
            if (!get_varint(d, len, &pos, &v) || v > len - pos) return 0;
            if ((key >> 3) == 1) { *text = d + pos; *tlen = (size_t)v; }
            pos += (size_t)v;
            break;
        case 1: pos += 8; break;
        case 5: pos += 4; break;
        default: return 0;
        }
        if (pos > len) return 0;
    }
    return 1;
}

static size_t status(uint8_t *out, const uint8_t *text, size_t tlen, uint64_t index) {
    size_t n = 0;
    if (tlen) { out[n++] = 0x12; n += put_varint(out + n, tlen); memcpy(out + n, text, tlen); n += tlen; }
    if (index) { out[n++] = 0x18; n += put_varint(out + n, index); }
    return n;
}

static void handle(gh_server_call *call, void *user_data) {
    int stream = user_data != NULL;
    const uint8_t *data = NULL, *text = NULL;
    size_t len = 0, tlen = 0;
    uint64_t count = 0;
    if (gh_server_call_read(call, &data, &len) != 1 || !parse(data, len, &text, &tlen, &count)) {
        gh_server_call_finish(call, GH_STATUS_INVALID_ARGUMENT, "bad request", NULL, 0);
        return;
    }
    /* the text is copied first: it points into the request, valid until the next read */
    uint8_t *t = malloc(tlen + 1), *msg = malloc(tlen + 32);
    int ok = t != NULL && msg != NULL;
    if (ok) memcpy(t, text, tlen);
    if (!ok) {
        gh_server_call_finish(call, GH_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    } else if (!stream) {
        ok = gh_server_call_send(call, msg, status(msg, t, tlen, 0), 0) == GH_OK;
    } else {
        for (uint64_t i = 0; ok && i < count; i++)
            ok = gh_server_call_send(call, msg, status(msg, t, tlen, i), 0) == GH_OK;
    }
    free(msg);
    free(t);
    if (ok) gh_server_call_finish(call, GH_STATUS_OK, NULL, NULL, 0);
}

int main(void) {
    gh_server *s = NULL;
    int port = 0;
    static int streaming = 1;
    if (gh_server_new(&s) != GH_OK || gh_server_add_listener(s, "127.0.0.1:0") != GH_OK ||
        gh_server_register(s, "/SampleService/echo", GH_UNARY, handle, NULL, NULL) != GH_OK ||
        gh_server_register(s, "/SampleService/count", GH_SERVER_STREAMING, handle, &streaming,
                           NULL) != GH_OK ||
        gh_server_start(s) != GH_OK || gh_server_port(s, 0, &port) != GH_OK) {
        fprintf(stderr, "c backend: %s\n", gh_last_error());
        return 1;
    }
    printf("READY %d\n", port);
    fflush(stdout);
    char line[256];
    while (fgets(line, sizeof line, stdin) != NULL && strncmp(line, "shutdown", 8) != 0) {}
    int rc = gh_server_shutdown(s, 1.0);
    gh_server_free(s);
    printf("STOPPED\n");
    fflush(stdout);
    return rc == GH_OK ? 0 : 1;
}
"""


def log(msg):
    print("== %s %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ====================================================================== the original

def _interop_original():
    sys.path.insert(0, os.path.join(ROOT, "Tests"))
    try:
        from interop_helper import original         # imports nothing of grpc_helper
    finally:
        sys.path.pop(0)
    return original


def original_dir():
    return str(_interop_original().cache_dir())


def ensure_original():
    """The original's install folder; installed (pip --target, once) when missing."""
    return str(_interop_original().ensure_installed())


# ====================================================================== servers (children)

def serve(role, workspace, port):
    """Subprocess body: prints "READY <port>", serves until "shutdown" or EOF on stdin (or
    SIGTERM), shuts down, prints "STOPPED" and exits 0. role: ours-backend, ours-proxy,
    original-backend, original-proxy; the generated sample code is on PYTHONPATH."""
    kind, what = role.split("-")
    module = types.ModuleType("proxy_bench_sample")
    module.__title__, module.__version__ = "proxy-bench-sample", "1.0"
    if kind == "ours":
        import grpchelper as lib
        from grpchelper import RpcManager, RpcServer, RpcServiceDescriptor, Folders
        assert "grpc_helper" not in sys.modules
        workspace_arg = workspace
    else:
        import grpc_helper as lib
        from grpc_helper import RpcManager, RpcServer, RpcServiceDescriptor, Folders, RpcException
        from grpc_helper_api import ResultCode
        from pathlib import Path
        assert "grpchelper" not in sys.modules
        assert os.path.dirname(os.path.dirname(lib.__file__)) == \
            os.environ["PYTHONPATH"].split(os.pathsep)[0], lib.__file__
        workspace_arg = Path(workspace)
    from sample_pb2 import SampleApiVersion, SampleRequest, SampleStatus
    from sample_pb2_grpc import (SampleServiceServicer, SampleServiceStub,
                                 add_SampleServiceServicer_to_server)

    # (return annotations: grpc-helper reads them as the methods' response classes)
    class BenchManager(SampleServiceServicer, RpcManager):
        def __init__(self):
            RpcManager.__init__(self)

        def echo(self, request: SampleRequest) -> SampleStatus:
            return SampleStatus(text=request.text)

        def count(self, request: SampleRequest) -> SampleStatus:
            text = request.text
            for i in range(request.count):
                yield SampleStatus(index=i, text=text)

    proxy = what == "proxy"
    if kind == "ours":
        d = RpcServiceDescriptor(module, SERVICE, SampleApiVersion,
                                 None if proxy else BenchManager(),
                                 add_SampleServiceServicer_to_server, SampleServiceStub,
                                 is_proxy=proxy)
        srv = RpcServer(0, [d], Folders(workspace=workspace_arg), dict(SERVER_CONFIG))
        port = srv.port
    else:
        d = RpcServiceDescriptor(module, SERVICE, SampleApiVersion,
                                 SampleServiceServicer() if proxy else BenchManager(),
                                 add_SampleServiceServicer_to_server, SampleServiceStub, proxy)
        try:
            srv = RpcServer(port, [d], Folders(workspace=workspace_arg), dict(SERVER_CONFIG))
        except RpcException as e:
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
    """A server subprocess (role, see serve(); or "c-backend") with a temporary folder;
    stop() ends it ("shutdown" on stdin, then SIGTERM, SIGKILL) and removes the folder."""

    def __init__(self, role, ctx, backend_port=None):
        self.role = role
        self.tmp = tempfile.mkdtemp(prefix="proxy-bench-%s-" % role)
        self.proc = None
        self.port = None
        try:
            for attempt in range(10):
                port = free_port() if role.startswith("original") else 0
                env = dict(os.environ)
                if role.startswith("ours"):
                    env["PYTHONPATH"] = os.pathsep.join([BINDING, ctx["gen_ours"]] + [
                        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
                    cmd = [sys.executable, os.path.abspath(__file__), "--serve", role]
                elif role.startswith("original"):
                    env["PYTHONPATH"] = os.pathsep.join([ctx["original"], ctx["gen_original"]])
                    env.pop("GRPCHELPER_LIBRARY", None)
                    env["PYTHONWARNINGS"] = "ignore:pkg_resources is deprecated as an API:UserWarning"
                    cmd = [sys.executable, os.path.abspath(__file__), "--serve", role]
                elif role == "cpp-proxy":
                    cmd = [ctx["cpp_proxy"], "--backend", str(backend_port)]
                else:
                    cmd = [ctx["c_backend"]]
                if role == "cpp-proxy":
                    cmd += ["--port", "0"]
                elif role != "c-backend":
                    cmd += ["--workspace", os.path.join(self.tmp, "wks"), "--port", str(port)]
                self.stderr = open(os.path.join(self.tmp, "server.stderr"), "w+")
                self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=self.stderr, env=env, cwd=self.tmp)
                _live.add(self)
                line = self._read_line(60.0)
                if line.startswith("READY "):
                    self.port = int(line.split()[1])
                    self.pid = self.proc.pid
                    return
                if line.startswith("BUSY "):
                    self._end()
                    continue
                raise RuntimeError("%s said %r; stderr:\n%s" % (role, line, self._err()))
            raise RuntimeError("%s: no free port in 10 tries" % role)
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
        raise RuntimeError("%s did not start (exit status %s); stderr:\n%s"
                           % (self.role, self.proc.poll(), self._err()))

    def cpu_seconds(self):
        """utime + stime of the process so far (all its threads)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(CLK_TCK)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

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
        clean = self._end()
        shutil.rmtree(self.tmp, ignore_errors=True)
        _live.discard(self)
        return clean

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


_live = set()


# ====================================================================== preparation

def prepare(args, tmp):
    """Generated sample code for both flavors, the C backend (ours-c), the original's
    folder; {"gen_ours", "gen_original", "c_backend", "original"}."""
    original = _interop_original()
    ctx = {}
    ctx["gen_ours"] = str(original.generate_sample(os.path.join(tmp, "gen-ours"), "grpchelper"))
    if "original" in args.setups:
        ctx["original"] = ensure_original()
        ctx["gen_original"] = str(original.generate_sample(os.path.join(tmp, "gen-original"),
                                                           "original", ctx["original"]))
    if "ours-c" in args.setups or "cpp" in args.setups:
        import grpchelper
        lib = os.path.realpath(grpchelper._ffi.lib._name)
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") \
            or shutil.which("clang")
        if not cc:
            log("no C compiler (cc, gcc, clang): the ours-c and cpp setups are skipped")
            args.setups[:] = [s for s in args.setups if s not in ("ours-c", "cpp")]
        else:
            src = os.path.join(tmp, "c_backend.c")
            exe = os.path.join(tmp, "c_backend")
            with open(src, "w") as f:
                f.write(C_BACKEND)
            # linked to the library file the binding loaded (its SONAME found via the rpath)
            cmd = [cc, "-O2", "-std=c11", "-Wall", "-I" + HEADERS, src, "-o", exe, lib,
                   "-Wl,-rpath," + os.path.dirname(lib), "-lpthread"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                raise RuntimeError("compiling the C backend failed:\n%s\n%s"
                                   % (" ".join(cmd), r.stderr[-3000:]))
            ctx["c_backend"] = exe
            ctx["c_backend_lib"] = lib
    if "cpp" in args.setups:
        gxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
        flags = None
        if gxx and shutil.which("pkg-config"):
            r = subprocess.run(["pkg-config", "--cflags", "--libs", "grpc++"], capture_output=True,
                               text=True, timeout=30)
            flags = r.stdout.split() if r.returncode == 0 else None
        if not flags:
            log("no C++ compiler or grpc++ (apt-get install g++ libgrpc++-dev pkg-config): "
                "the cpp setup is skipped")
            args.setups.remove("cpp")
        else:
            exe = os.path.join(tmp, "cpp_proxy")
            cmd = [gxx, "-O2", "-std=c++17", os.path.join(BENCH, "cpp_proxy.cc"), "-o", exe] \
                + flags + ["-lpthread"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                raise RuntimeError("compiling the C++ proxy failed:\n%s\n%s"
                                   % (" ".join(cmd), r.stderr[-3000:]))
            ctx["cpp_proxy"] = exe
            ctx["grpcpp_version"] = subprocess.run(
                ["pkg-config", "--modversion", "grpc++"], capture_output=True, text=True,
                timeout=30).stdout.strip()
    return ctx


def sample_messages(gen_dir):
    """The requests and the exact answers (gRPC frames) every backend must give."""
    sys.path.insert(0, gen_dir)
    try:
        import sample_pb2
    finally:
        sys.path.remove(gen_dir)
    Req, St = sample_pb2.SampleRequest, sample_pb2.SampleStatus
    return types.SimpleNamespace(
        Req=Req, St=St,
        echo_req=Req(text=ECHO_TEXT).SerializeToString(),
        echo_resp=St(text=ECHO_TEXT).SerializeToString(),
        stream_req=lambda n: Req(text=STREAM_TEXT, count=n).SerializeToString(),
        stream_resp=lambda n: [St(index=i, text=STREAM_TEXT).SerializeToString()
                               for i in range(n)])


def frame(payload):
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def register(proxy, backend):
    """srv.proxy_register(names ["sample"], version, host 127.0.0.1, the backend's port) on
    the proxy, with our Python client (the wire is the same for both proxies)."""
    import grpchelper
    from grpchelper.api import ProxyRegisterRequest, ResultStatus
    ch = grpchelper.insecure_channel("127.0.0.1:%d" % proxy.port)
    try:
        raw = ch.unary_unary(REGISTER)(
            ProxyRegisterRequest(names=[SERVICE], version=REGISTERED_VERSION, host="127.0.0.1",
                                 port=backend.port).SerializeToString(),
            metadata=(("api_version", "1"),), timeout=30)
    finally:
        ch.close()
    r = ResultStatus.FromString(raw).r
    if r.code:
        raise RuntimeError("proxy_register on %s: %s" % (proxy.role, r))


def verify(port, msgs, what):
    """Checks the answers of echo and of a count of 3 on `port`, byte for byte."""
    import grpchelper
    ch = grpchelper.insecure_channel("127.0.0.1:%d" % port)
    try:
        got = ch.unary_unary(ECHO)(msgs.echo_req, metadata=CALL_METADATA, timeout=30)
        if got != msgs.echo_resp:
            raise RuntimeError("%s: echo answered %r, expected %r" % (what, got, msgs.echo_resp))
        got = list(ch.unary_stream(COUNT)(msgs.stream_req(3), metadata=CALL_METADATA, timeout=30))
        if got != msgs.stream_resp(3):
            raise RuntimeError("%s: count(3) answered %r" % (what, got))
    finally:
        ch.close()


# ====================================================================== measuring

def machine_busy():
    """(busy, total) jiffies of the whole machine so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle, sum(v[:8])


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def h2load(port, path, body_file, tmp, concurrency=1, seconds=None, calls=None, timeout=600):
    """One h2load run over one connection; {"succeeded", "started", "measured" (s),
    "data" (DATA bytes received), "latencies_us" (sorted), "cpu" (s), "wall" (s)}."""
    log_file = os.path.join(tmp, "h2load.log")
    if os.path.exists(log_file):
        os.remove(log_file)
    cmd = ["h2load", "-c1", "-t1", "-m%d" % concurrency, "-d", body_file,
           "-H", "content-type: application/grpc", "-H", "te: trailers"]
    for k, v in CALL_METADATA:
        cmd += ["-H", "%s: %s" % (k, v)]
    if seconds is not None:
        cmd += ["--duration=%dms" % round(seconds * 1000), "--log-file", log_file]
    else:
        cmd += ["-n%d" % calls]
    cmd.append("http://127.0.0.1:%d%s" % (port, path))
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    out = []
    reader = threading.Thread(target=lambda: out.append(p.stdout.read()), daemon=True)
    reader.start()
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        killer.cancel()
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    reader.join(10)
    text = out[0].decode(errors="replace") if out else ""
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored", text)
    f = re.search(r"finished in ([0-9.]+)(m?s)", text)
    d = re.search(r"\((\d+)\) data", text)
    if p.returncode != 0 or not m or not f or not d:
        raise RuntimeError("h2load failed (%s): %s\n%s" % (p.returncode, " ".join(cmd),
                                                           text[-2000:]))
    if int(m.group(5)) or int(m.group(6)):
        raise RuntimeError("h2load: failed or errored requests:\n%s" % text[-2000:])
    lat = []
    if seconds is not None:
        try:
            with open(log_file) as fl:
                for line in fl:
                    parts = line.split("\t")
                    if len(parts) >= 3 and parts[1].startswith("2"):
                        lat.append(int(parts[2]))
        except OSError:
            pass
        lat.sort()
    return {"succeeded": int(m.group(4)), "started": int(m.group(2)),
            "measured": float(f.group(1)) / (1000.0 if f.group(2) == "ms" else 1.0),
            "data": int(d.group(1)), "latencies_us": lat,
            "cpu": ru.ru_utime + ru.ru_stime, "wall": wall, "text": text}


class Meter(object):
    """CPU of the backend and the proxy processes and of the machine over a span."""

    def __init__(self, backend, proxy):
        self.procs = (backend, proxy)
        self.c0 = [s.cpu_seconds() for s in self.procs]
        self.b0 = machine_busy()
        self.t0 = time.perf_counter()

    def done(self, row, client_cpu):
        c1 = [s.cpu_seconds() for s in self.procs]
        b1 = machine_busy()
        wall = time.perf_counter() - self.t0
        row["cpu_client"] = client_cpu / wall
        row["cpu_backend"] = (c1[0] - self.c0[0]) / wall
        row["cpu_proxy"] = (c1[1] - self.c0[1]) / wall
        row["cpu_machine"] = (b1[0] - self.b0[0]) / max(1, b1[1] - self.b0[1]) * (os.cpu_count() or 1)
        row["cpu_wall"] = wall


def unary_row(target, backend, proxy, body_file, msgs, args, tmp, concurrency):
    expected = len(frame(msgs.echo_resp))
    if args.warmup > 0:
        # warm-up: a run of its own (h2load's --warm-up-time would count its DATA bytes in
        # the measured run's, which the check below needs exact)
        h2load(target.port, ECHO, body_file, tmp, concurrency=concurrency, seconds=args.warmup,
               timeout=args.warmup + 120)
    meter = Meter(backend, proxy)
    r = h2load(target.port, ECHO, body_file, tmp, concurrency=concurrency, seconds=args.seconds,
               timeout=args.seconds + 120)
    row = {"calls": r["succeeded"], "calls_s": r["succeeded"] / r["measured"],
           "p50": percentile(r["latencies_us"], 50), "p99": percentile(r["latencies_us"], 99),
           "logged": len(r["latencies_us"])}
    meter.done(row, r["cpu"])
    for k in ("p50", "p99"):
        row[k] = row[k] / 1000.0 if row[k] is not None else None
    # every answer must be the echo's frame: h2load ignores gRPC statuses
    row["ok"] = r["succeeded"] > 0 and \
        r["succeeded"] * expected <= r["data"] <= r["started"] * expected and \
        r["data"] % expected == 0
    if not row["ok"]:
        raise RuntimeError("%s: %d calls answered %d DATA bytes, expected %d per call:\n%s"
                           % (target.role, r["succeeded"], r["data"], expected, r["text"][-1500:]))
    if not (target.alive() and backend.alive()):
        raise RuntimeError("a server died during the row")
    return row


def stream_row(target, backend, proxy, body_file, msgs, args, tmp):
    n = args.stream_messages
    expected = sum(len(frame(m)) for m in msgs.stream_resp(n))
    first = h2load(target.port, COUNT, body_file, tmp, calls=1, timeout=300)   # warm-up, timed
    if first["data"] != expected:
        raise RuntimeError("%s: a count(%d) answered %d DATA bytes, expected %d"
                           % (target.role, n, first["data"], expected))
    calls = int(max(1, min(100000, round(args.seconds / max(first["measured"], 1e-4)))))
    meter = Meter(backend, proxy)
    r = h2load(target.port, COUNT, body_file, tmp, calls=calls,
               timeout=max(120, first["measured"] * calls * 5))
    row = {"calls": r["succeeded"], "messages": r["succeeded"] * n,
           "msgs_s": r["succeeded"] * n / r["measured"], "seconds": r["measured"]}
    meter.done(row, r["cpu"])
    row["ok"] = r["succeeded"] == calls and r["data"] == calls * expected
    if not row["ok"]:
        raise RuntimeError("%s: %d of %d streams, %d DATA bytes, expected %d"
                           % (target.role, r["succeeded"], calls, r["data"], calls * expected))
    if not (target.alive() and backend.alive()):
        raise RuntimeError("a server died during the row")
    return row


def run_setup(setup, args, ctx, msgs, tmp, results):
    kind = "original" if setup == "original" else "ours"
    log("%-8s starting the backend and the proxy" % setup)
    backend = proxy = None
    clean = []
    try:
        backend = ServerProcess("c-backend" if setup in ("ours-c", "cpp") else kind + "-backend",
                                ctx)
        if setup == "cpp":
            proxy = ServerProcess("cpp-proxy", ctx, backend_port=backend.port)
        else:
            proxy = ServerProcess(kind + "-proxy", ctx)
            register(proxy, backend)
        verify(backend.port, msgs, setup + " direct")
        verify(proxy.port, msgs, setup + " proxied")
        bodies = {}
        for name, payload in (("echo", msgs.echo_req),
                              ("count", msgs.stream_req(args.stream_messages))):
            bodies[name] = os.path.join(tmp, "%s.grpc" % name)
            with open(bodies[name], "wb") as f:
                f.write(frame(payload))
        for row_name, conc in (("unary-1", 1), ("unary-m", args.concurrency)):
            for path in ("direct", "proxied"):
                target = backend if path == "direct" else proxy
                row = unary_row(target, backend, proxy, bodies["echo"], msgs, args, tmp, conc)
                results.setdefault((setup, row_name, path), []).append(row)
                log("%-8s %-7s %-8s %s calls/s, p50 %s ms, p99 %s ms; cpu h2load %.2f backend "
                    "%.2f proxy %.2f machine %.2f" % (
                        setup, row_name, path, fmt_int(row["calls_s"]), fmt_ms(row["p50"]),
                        fmt_ms(row["p99"]), row["cpu_client"], row["cpu_backend"],
                        row["cpu_proxy"], row["cpu_machine"]))
        for path in ("direct", "proxied"):
            target = backend if path == "direct" else proxy
            row = stream_row(target, backend, proxy, bodies["count"], msgs, args, tmp)
            results.setdefault((setup, "stream", path), []).append(row)
            log("%-8s stream  %-8s %s msgs/s (%d calls of %d in %.2f s); cpu h2load %.2f backend "
                "%.2f proxy %.2f machine %.2f" % (
                    setup, path, fmt_int(row["msgs_s"]), row["calls"], args.stream_messages,
                    row["seconds"], row["cpu_client"], row["cpu_backend"], row["cpu_proxy"],
                    row["cpu_machine"]))
    finally:
        for s in (proxy, backend):
            if s is not None:
                clean.append((s.role, s.stop()))
    for role, ok in clean:
        if not ok:
            results.setdefault(("notes",), []).append("%s did not stop cleanly" % role)


def median_rows(all_results):
    out = {}
    for key, rows in all_results.items():
        if key[0] == "notes":
            continue
        metric = "msgs_s" if key[1] == "stream" else "calls_s"
        ok = sorted(rows, key=lambda r: r[metric])
        out[key] = ok[(len(ok) - 1) // 2]
    return out


# ====================================================================== report

def fmt_int(x):
    if x is None:
        return "-"
    return "{:,}".format(int(round(x))).replace(",", " ")


def fmt_ms(x):
    if x is None:
        return "-"
    return "%.3f" % x if x < 1 else ("%.2f" % x if x < 100 else "%.0f" % x)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    r = a / b
    return "%.2f×" % r if r < 10 else ("%.1f×" % r if r < 100 else "%.0f×" % r)


def machine_lines(ctx):
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
    try:
        h2 = subprocess.run(["h2load", "--version"], capture_output=True, text=True,
                            timeout=10).stdout.strip().split()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        h2 = "?"
    lines = [
        "machine : nproc %d, kernel %s, %s, load avg %s" % (
            os.cpu_count(), platform.release(), cpu,
            " ".join(open("/proc/loadavg").read().split()[:3])),
        "versions: Python %s, grpcio %s, h2load %s" % (platform.python_version(),
                                                       grpc.__version__, h2),
        "          ours: grpchelper %s (%s) on libgrpchelper %s (%s), tree %s" % (
            grpchelper.__version__, os.path.relpath(BINDING, ROOT) if BINDING.startswith(ROOT)
            else BINDING, grpchelper.library_version(), grpchelper._ffi.lib._name, rev),
    ]
    if ctx.get("original"):
        lines.append("          original: grpc-helper %s (%s)" % (ORIGINAL_VERSION, ctx["original"]))
    return lines


NOT_ORIGINAL = ("ours", "ours-c", "cpp")


def print_report(args, all_results, header, started):
    res = median_rows(all_results)
    M = args.concurrency
    print()
    print("proxied services: through the proxy vs direct, ours vs the original grpc-helper %s — %s"
          % (ORIGINAL_VERSION, started))
    for line in header:
        print(line)
    print("run     : %s" % " ".join(["python3", "bench/proxy_bench.py"] + sys.argv[1:]))
    print("shape   : h2load -c1 (one connection), unary rows %gs after %gs of warm-up (h2load run), "
          "stream rows ~%gs of count(%d) calls one at a time;" % (
              args.seconds, args.warmup, args.seconds, args.stream_messages))
    print("          servers: config %s, %d repetition(s)" % (json.dumps(SERVER_CONFIG), args.repeat))
    print("load avg at the end: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    print()
    w = 23
    hdr = ("%-*s| %-21s| %-8s| %9s %8s %8s | %-30s | %s" % (
        w, "row", "setup", "path", "calls/s", "p50 ms", "p99 ms",
        "cpu: h2load backend proxy mach", "proxy µs/call"))
    print(hdr)
    print("-" * len(hdr))
    for row_name, title in (("unary-1", "unary, 1 caller"), ("unary-m", "unary, %d in flight" % M)):
        for setup in args.setups:
            for path in ("direct", "proxied"):
                r = res.get((setup, row_name, path))
                if r is None:
                    continue
                per = r["cpu_proxy"] / r["calls_s"] * 1e6 if path == "proxied" else None
                print("%-*s| %-21s| %-8s| %9s %8s %8s | %6.2f %7.2f %5.2f %4.2f    | %s" % (
                    w, title, LABEL[setup], path, fmt_int(r["calls_s"]), fmt_ms(r["p50"]),
                    fmt_ms(r["p99"]), r["cpu_client"], r["cpu_backend"], r["cpu_proxy"],
                    r["cpu_machine"], "%.0f" % per if per is not None else ""))
    print()
    hdr2 = ("%-*s| %-21s| %-8s| %9s %9s | %-30s | %s" % (
        w, "row", "setup", "path", "msgs/s", "calls", "cpu: h2load backend proxy mach",
        "proxy µs/msg"))
    print(hdr2)
    print("-" * len(hdr2))
    for setup in args.setups:
        for path in ("direct", "proxied"):
            r = res.get((setup, "stream", path))
            if r is None:
                continue
            per = r["cpu_proxy"] / r["msgs_s"] * 1e6 if path == "proxied" else None
            print("%-*s| %-21s| %-8s| %9s %9s | %6.2f %7.2f %5.2f %4.2f    | %s" % (
                w, "server stream (%d)" % args.stream_messages, LABEL[setup], path,
                fmt_int(r["msgs_s"]), fmt_int(r["calls"]), r["cpu_client"], r["cpu_backend"],
                r["cpu_proxy"], r["cpu_machine"], "%.2f" % per if per is not None else ""))

    def g(setup, row, path, k, i=None):
        """A figure of the median row (i None) or of repetition i."""
        if i is None:
            r = res.get((setup, row, path))
        else:
            rows = all_results.get((setup, row, path)) or []
            r = rows[i] if i < len(rows) else None
        return r.get(k) if r else None

    def q(a, b):
        return a / b if a is not None and b else None

    def inv(x):
        return 1.0 / x if x else None

    def cpu_per_call(setup, i):
        return q(g(setup, "unary-m", "proxied", "cpu_proxy", i), g(setup, "unary-m", "proxied", "calls_s", i))

    # Each ratio is taken within one repetition (both figures measured minutes apart at
    # most, under the same conditions), then the median over the repetitions (the lower
    # one of an even count).
    def paired(fn, setup):
        vals = sorted(v for v in (fn(setup, i) for i in range(args.repeat)) if v is not None)
        return vals[(len(vals) - 1) // 2] if vals else None

    def fmt_ratio(x):
        return ratio(x, 1.0) if x is not None else "-"

    lines = [
        ("proxied÷direct latency p50, 1 caller", lambda s, i: q(g(s, "unary-1", "proxied", "p50", i), g(s, "unary-1", "direct", "p50", i)), "<= 1.5×", None),
        ("proxied÷direct latency p99, 1 caller", lambda s, i: q(g(s, "unary-1", "proxied", "p99", i), g(s, "unary-1", "direct", "p99", i)), "", None),
        ("proxied÷direct mean latency, 1 caller", lambda s, i: q(inv(g(s, "unary-1", "proxied", "calls_s", i)), inv(g(s, "unary-1", "direct", "calls_s", i))), "", None),
        ("proxied÷direct calls/s, %d in flight" % M, lambda s, i: q(g(s, "unary-m", "proxied", "calls_s", i), g(s, "unary-m", "direct", "calls_s", i)), "", None),
        ("proxied÷direct msgs/s, stream", lambda s, i: q(g(s, "stream", "proxied", "msgs_s", i), g(s, "stream", "direct", "msgs_s", i)), "", None),
    ]
    if "original" in args.setups:
        lines += [
            ("÷original: proxied calls/s, 1 caller", lambda s, i: q(g(s, "unary-1", "proxied", "calls_s", i), g("original", "unary-1", "proxied", "calls_s", i)), "", NOT_ORIGINAL),
            ("÷original: proxied calls/s, %d in flight" % M, lambda s, i: q(g(s, "unary-m", "proxied", "calls_s", i), g("original", "unary-m", "proxied", "calls_s", i)), ">= 10×", NOT_ORIGINAL),
            ("÷original: proxied msgs/s, stream", lambda s, i: q(g(s, "stream", "proxied", "msgs_s", i), g("original", "stream", "proxied", "msgs_s", i)), "", NOT_ORIGINAL),
            ("original÷: proxy CPU per call, %d in flight" % M, lambda s, i: q(cpu_per_call("original", i), cpu_per_call(s, i)), "", NOT_ORIGINAL),
            ("÷original: direct calls/s, %d in flight" % M, lambda s, i: q(g(s, "unary-m", "direct", "calls_s", i), g("original", "unary-m", "direct", "calls_s", i)), "", NOT_ORIGINAL),
        ]
    if "cpp" in args.setups:
        lines += [
            ("÷C++: proxied latency p50, 1 caller", lambda s, i: q(g(s, "unary-1", "proxied", "p50", i), g("cpp", "unary-1", "proxied", "p50", i)), "", ("ours-c",)),
            ("÷C++: proxied calls/s, %d in flight" % M, lambda s, i: q(g(s, "unary-m", "proxied", "calls_s", i), g("cpp", "unary-m", "proxied", "calls_s", i)), "", ("ours-c",)),
            ("÷C++: proxied msgs/s, stream", lambda s, i: q(g(s, "stream", "proxied", "msgs_s", i), g("cpp", "stream", "proxied", "msgs_s", i)), "", ("ours-c",)),
            ("C++÷: proxy CPU per call, %d in flight" % M, lambda s, i: q(cpu_per_call("cpp", i), cpu_per_call(s, i)), "", ("ours-c",)),
        ]
    medians = {}
    print()
    cols = [s for s in args.setups]
    print("%-46s" % ("ratios" + (" (median of the %d repetitions' own)" % args.repeat if args.repeat > 1 else ""))
          + "".join("%-23s" % LABEL[s] for s in cols) + "goal")
    for title, fn, goal, shown in lines:
        cells = []
        for setup in cols:
            if shown is not None and setup not in shown:
                cells.append("")
                continue
            medians[(title, setup)] = paired(fn, setup)
            cells.append(fmt_ratio(medians[(title, setup)]))
        print("%-46s" % title + "".join("%-23s" % c for c in cells) + goal)
    if args.repeat > 1:
        print("per repetition:")
        for title, fn, goal, shown in lines:
            print("  %-44s" % title + "".join("%-23s" % ("" if shown is not None and setup not in shown else
                                                        " ".join(fmt_ratio(fn(setup, i)) for i in range(args.repeat)))
                                            for setup in cols))

    if args.repeat > 1:
        print()
        print("each repetition (the tables: the median one): calls/s (p50/p99 ms) or msgs/s")
        for row_name in ("unary-1", "unary-m", "stream"):
            for setup in args.setups:
                for path in ("direct", "proxied"):
                    rows = all_results.get((setup, row_name, path)) or []
                    if row_name == "stream":
                        figs = [fmt_int(r["msgs_s"]) for r in rows]
                    else:
                        figs = ["%s (%s/%s)" % (fmt_int(r["calls_s"]), fmt_ms(r["p50"]), fmt_ms(r["p99"]))
                                for r in rows]
                    print("  %-8s %-21s %-8s %s" % (row_name, LABEL[setup], path, "  ".join(figs)))
    print()
    print("calls/s, msgs/s: as h2load counted them (every answer's bytes checked); p50/p99: of "
          "every measured call (h2load --log-file).")
    print("cpu: cores used over the row's measured run by h2load, the backend process, the "
          "proxy process, the whole machine (of %d)." % (os.cpu_count() or 1))
    print("proxy µs/call (µs/msg): the proxy process's CPU time per forwarded call (message).")
    for n in all_results.get(("notes",), []):
        print("NOTE: " + n)
    t1 = "proxied÷direct latency p50, 1 caller"
    t2 = "÷original: proxied calls/s, %d in flight" % M
    goal1 = ["%s %.2fx — %s" % (LABEL[x], medians[(t1, x)], "met" if medians[(t1, x)] <= 1.5 else "NOT met")
             for x in ("ours", "ours-c", "cpp") if medians.get((t1, x)) is not None]
    if goal1:
        print("goal 1 (proxied p50 <= 1.5x direct at 1 caller): " + "; ".join(goal1))
    goal2 = ["%s (%s) %.1fx — %s" % (LABEL[x], why, medians[(t2, x)], "met" if medians[(t2, x)] >= 10 else "NOT met")
             for x, why in (("ours-c", "the proxy the limit"), ("ours", "our Python backend the limit"))
             if medians.get((t2, x)) is not None]
    if goal2:
        print("goal 2 (>= 10x the original's proxied calls/s, %d in flight): " % M + "; ".join(goal2))


# ====================================================================== main

def main():
    ap = argparse.ArgumentParser(usage=argparse.SUPPRESS, description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 add_help=False)
    ap.add_argument("-h", "--help", action="help", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--concurrency", type=int, default=32, help=argparse.SUPPRESS)
    ap.add_argument("--stream-messages", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--setups", default=",".join(SETUPS), help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    ap.add_argument("--serve", choices=("ours-backend", "ours-proxy", "original-backend",
                                        "original-proxy"), help=argparse.SUPPRESS)
    ap.add_argument("--workspace", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.serve:
        return serve(args.serve, args.workspace, args.port)

    if args.seconds is None:
        args.seconds = 1.0 if args.quick else 5.0
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 1.0
    if args.stream_messages is None:
        args.stream_messages = 2000 if args.quick else 5000
    args.setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    if not args.setups or any(s not in SETUPS for s in args.setups):
        ap.error("--setups takes ours, ours-c, cpp and/or original")
    if args.seconds <= 0 or args.warmup < 0 or args.repeat <= 0 or args.concurrency <= 0 \
            or args.stream_messages <= 0:
        ap.error("counts and durations must be positive")
    if not shutil.which("h2load"):
        ap.error("h2load is not installed (apt-get install nghttp2-client)")

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    sys.path.insert(0, BINDING)
    tmp = tempfile.mkdtemp(prefix="proxy-bench-")
    try:
        ctx = prepare(args, tmp)
        import grpchelper  # noqa: F401 (the parent's client: ours only)
        msgs = sample_messages(ctx["gen_ours"])
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        header = machine_lines(ctx)
        if ctx.get("c_backend"):
            header.append("          C backend (ours-c, cpp): %s compiled against %s"
                          % (os.path.basename(ctx["c_backend"]), ctx["c_backend_lib"]))
        if ctx.get("cpp_proxy"):
            header.append("          cpp proxy: bench/cpp_proxy.cc, grpc++ %s (callback generic "
                          "service + generic stub)" % ctx["grpcpp_version"])
        t0 = time.monotonic()
        results = {}
        for i in range(args.repeat):
            if args.repeat > 1:
                log("repetition %d of %d" % (i + 1, args.repeat))
            for setup in args.setups:
                run_setup(setup, args, ctx, msgs, tmp, results)
        log("total %.0f s" % (time.monotonic() - t0))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"started": started, "header": header, "argv": sys.argv[1:],
                           "rows": [{"key": list(k), "rows": v} for k, v in results.items()]},
                          f, indent=1)
        print_report(args, results, header, started)
        return 0
    finally:
        for s in list(_live):
            s.kill()
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


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
