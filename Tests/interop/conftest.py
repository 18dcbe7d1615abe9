"""Fixtures: paths of the built programs and a running Swift echo server."""
import os
import re
import subprocess
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def binary(name):
    """A program built by SwiftPM (debug by default; GH_BIN_DIR overrides)."""
    bin_dir = os.environ.get("GH_BIN_DIR", os.path.join(ROOT, ".build", "debug"))
    path = os.path.join(bin_dir, name)
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: build the package first (swift build)")
    return path


def start_listening(cmd):
    """Starts `cmd`, waits for its "listening on port N" line, returns (process, port)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"listening on port (\d+)", line)
    if not m:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{cmd[0]} did not start: {line!r}")
    return proc, int(m.group(1))


@pytest.fixture
def swift_echo_server():
    proc, port = start_listening([binary("echo-server"), "0"])
    yield port
    proc.terminate()
    try:
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
