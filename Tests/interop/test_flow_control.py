"""HTTP/2 flow control end to end: 1 GiB streamed to a slow reader keeps memory flat.

The server streams 1024 x 1 MiB (StreamingOutputCall); interop-client's extra case
large_stream_backpressure reads slowly and fails if its own resident size grows by
64 MiB or more. With our server, the server's peak resident size is checked too.
"""
import importlib
import subprocess

from conftest import binary, start_listening, stop_process

LIMIT = 64 << 20


def kib(status_text, key):
    for line in status_text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{key} not in /proc status")


def run_slow_reader(port):
    out = subprocess.run([binary("interop-client"), "--server_host=127.0.0.1", f"--server_port={port}",
                          "--test_case=large_stream_backpressure"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS large_stream_backpressure" in out.stdout, out.stdout
    assert "1024 MiB received" in out.stdout, out.stdout


def test_our_server_and_client_stay_flat():
    proc, port = start_listening([binary("interop-server"), "--port=0"])
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            baseline = kib(f.read(), "VmRSS")
        run_slow_reader(port)
        with open(f"/proc/{proc.pid}/status") as f:
            peak = kib(f.read(), "VmHWM")
    finally:
        assert stop_process(proc) == 0
    assert peak - baseline < LIMIT, f"server peak RSS grew by {(peak - baseline) >> 20} MiB"


def test_our_client_against_grpcio_server_stays_flat(interop_pb):
    peer = importlib.import_module("interop_peer")
    server, port = peer.make_server()
    server.start()
    try:
        run_slow_reader(port)
    finally:
        server.stop(grace=None).wait()
