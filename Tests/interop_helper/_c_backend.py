"""OUR C proxied backend (c_proxied_backend.c: a gh_rpc_server whose sample manager is a
gh_rpc_service_set_proxied one) for test_proxy_interop.py: compiled with the system's C
compiler against the library file our Python binding loads (GRPCHELPER_LIBRARY first, as
the children running our binding), headers from Sources/CGRPCHelper/include, and run as a
child process like the original's servers (READY / STOPPED lines, stopped by "shutdown"
then EOF on stdin, SIGTERM, SIGKILL). Fixtures: c_backend_exe (compiled once per module;
skipped when no C compiler is found), start_c_backend (started ones stopped at the end of
the test)."""
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from . import original
from .test_cross import our_env

SOURCE = original.HERE / "c_proxied_backend.c"
HEADERS = original.ROOT / "Sources" / "CGRPCHelper" / "include"


def compiler():
    """The C compiler ($CC, else cc, gcc, clang on PATH), or None."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def binding_library(gen_dir: Path) -> str:
    """The library file our binding loads (asked in a child with our binding's environment)."""
    r = subprocess.run([sys.executable, "-c", "import os, grpchelper; "
                        "print(os.path.realpath(grpchelper._ffi.lib._name))"],
                       env=our_env(gen_dir), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip().splitlines()[-1]


def build(cc: str, dest: Path, gen_dir: Path) -> Path:
    """Compiles c_proxied_backend.c into dest/c_proxied_backend (warnings are errors)."""
    lib = binding_library(gen_dir)
    dest.mkdir(parents=True, exist_ok=True)
    exe = dest / "c_proxied_backend"
    cmd = [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{HEADERS}", str(SOURCE), "-o", str(exe),
           lib, f"-Wl,-rpath,{os.path.dirname(lib)}", "-lpthread"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr[-3000:]}"
    return exe


class CBackend(original.OriginalServer):
    """The compiled backend in a child process, on port 0: `port` once READY was read;
    `loaded` the load hook's (own port, the sample's proxy_port on the main server)."""

    def __init__(self, exe: Path, workspace: Path, cli_config: dict):
        self.workspace = Path(workspace)
        self.port = None
        self.loaded = None
        self.lines = []
        self._queue = queue.Queue()
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.stderr_path = self.workspace.parent / "c-backend.stderr"
        args = [str(exe), "-w", str(self.workspace)]
        for name, value in cli_config.items():
            args += ["-c", f"{name}={value}"]
        env = dict(os.environ)
        env.pop("GRPCHELPER_LIBRARY", None)     # (linked: found through its rpath)
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, env=env,
                                     cwd=str(self.workspace.parent))
        self._reader = threading.Thread(target=self._read, name="c-backend", daemon=True)
        self._reader.start()

    def wait_ready(self, timeout: float = original.START_TIMEOUT):
        m = self.wait_line(r"LOADED (\d+) (\d+)$", timeout)
        self.loaded = (int(m.group(1)), int(m.group(2)))
        self.port = int(self.wait_line(r"READY (\d+)$", timeout).group(1))


def without_stacks(result) -> dict:
    """A run_client result without its bytes and its error results' stacks (the Python
    sample's are tracebacks, the C one's are not): what it answered or raised otherwise."""
    out = {k: v for k, v in result.items() if k not in ("hex", "response", "responses")}
    if "response" in result or "responses" in result:
        messages = [result["response"]] if "response" in result else result["responses"]
        out["messages"] = [{k: ({f: x for f, x in v.items() if f != "stack"} if k == "r" else v)
                            for k, v in m.items()} for m in messages]
    return out


@pytest.fixture(scope="module")
def c_backend_exe(workdir, our_gen):
    cc = compiler()
    if cc is None:
        pytest.skip("no C compiler found ($CC, cc, gcc, clang): the C proxied backend cannot be built")
    return build(cc, Path(tempfile.mkdtemp(prefix="c-backend-", dir=workdir)), our_gen)


@pytest.fixture
def start_c_backend(c_backend_exe, workdir):
    """start(cli_config) -> a started CBackend; all stopped at the end of the test."""
    started = []

    def start(cli_config):
        ws = Path(tempfile.mkdtemp(prefix="c-backend-", dir=workdir)) / "workspace"
        backend = CBackend(c_backend_exe, ws, cli_config)
        started.append(backend)
        backend.wait_ready()
        return backend

    yield start
    for backend in started:
        backend.stop()
