"""Small helpers shared by the binding's test modules."""

import os
import shutil
import subprocess
import sys

import grpc

PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # bindings/python


def bytes_handlers(**methods):
    """A generic handler for service t.T from {name: RpcMethodHandler} (raw bytes)."""
    return grpc.method_handlers_generic_handler("t.T", methods)


def build_wheel(tmp_path):
    """The package's wheel, built by pip (offline, no build isolation) from a copy of
    bindings/python in tmp_path, so that no build/ or egg-info lands in the tree; returns
    its path (tmp_path/dist/grpchelper-*.whl)."""
    src = tmp_path / "src"
    shutil.copytree(PKG_ROOT, src, ignore=shutil.ignore_patterns(
        "tests", "__pycache__", "*.egg-info", "build"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "--no-index", "-w", str(tmp_path / "dist"), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    wheels = list((tmp_path / "dist").glob("grpchelper-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


class LineProcess:
    """A child process that prints "port N" once it serves, then answers each line of its
    stdin with one line ("quit": it stops, answering "bye"). `pid`, `port` (after
    `wait_port()`), `command(line)` → its answer, `stop()` → its exit status."""

    BOUND = 30

    def __init__(self, argv, stderr_path):
        import queue
        import threading
        self.stderr = open(stderr_path, "w+")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True)
        self.pid = self.proc.pid
        self.port = None
        self.lines = queue.Queue()
        self.reading = threading.Thread(target=self._read, daemon=True)
        self.reading.start()

    def wait_port(self):
        """Waits for its "port N" line (stops it if that fails)."""
        try:
            first = self.answer()
            assert first.startswith("port "), first
            self.port = int(first.split()[1])
        except BaseException:
            self.stop()
            raise

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def answer(self):
        import queue
        try:
            line = self.lines.get(timeout=self.BOUND)
        except queue.Empty:
            line = "(no answer within %d s)" % self.BOUND
        if line is None or line.startswith("("):
            self.stderr.seek(0)
            raise AssertionError("the %d process: %s; stderr:\n%s"
                                 % (self.pid, line or "ended", self.stderr.read()[-3000:]))
        return line

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.answer()

    def stop(self):
        """Shuts it down ("quit"); its exit status (-9 once killed)."""
        try:
            if self.proc.poll() is None:
                if self.port is None:           # never waited for: its port line first
                    self.answer()
                assert self.command("quit") == "bye"
            return self.proc.wait(self.BOUND)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(self.BOUND)
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            self.reading.join(self.BOUND)
            self.stderr.close()


def proc_status(pid, field):
    """A number of /proc/<pid>/status (VmRSS, VmHWM in KiB; Threads)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))
