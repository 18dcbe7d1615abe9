"""A server out of file descriptors (issue 15, defect 5): with more connections than its
descriptor limit allows, accepting failed with EMFILE again and again and the accept loop
burnt a core (NIO's AcceptBackoffHandler, installed, did not stop it). Now the listener's
reading is off for a second after each such failure, and once descriptors are free again
new clients are served."""
import os
import resource
import socket
import time

import grpc

from conftest import binary, start_listening, stop_process
from echo_peer import SERVICE

LIMIT = 96


def cpu_seconds(pid):
    """User + system CPU time of process `pid` so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_accept_backs_off_at_the_descriptor_limit_and_recovers():
    proc, port = start_listening(
        [binary("echo-server"), "0"],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT)))
    idle = []
    try:
        # More connections than the server has descriptors for (they never send a byte:
        # the handshake timeout, 120 s, does not end them during the test).
        for _ in range(LIMIT + 40):
            idle.append(socket.create_connection(("127.0.0.1", port)))
        deadline = time.monotonic() + 10
        while open_descriptors(proc.pid) < LIMIT - 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert open_descriptors(proc.pid) >= LIMIT - 2, "the server never ran out of descriptors"
        # Out of descriptors, with connections waiting in the backlog: the loop must not spin.
        before = cpu_seconds(proc.pid)
        time.sleep(2)
        used = cpu_seconds(proc.pid) - before
        assert used < 0.5, f"the server used {used:.2f} s of CPU in 2 s at the descriptor limit"
        # Descriptors free again: waiting connections are taken, and a new client is served.
        for s in idle:
            s.close()
        idle.clear()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            assert ch.unary_unary(f"/{SERVICE}/Unary")(b"after", timeout=20) == b"after"
    finally:
        for s in idle:
            s.close()
        stop_process(proc)
