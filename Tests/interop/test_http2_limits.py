"""HTTP/2 limits against a hostile peer (issue 15): each flood is sent by a bare HTTP/2
peer (h2raw.py) to the Swift echo server, and each must end in a bounded outcome — the
offending connection told why (GOAWAY with its error code) and closed, or the stream
refused — while the server goes on serving other clients with bounded memory."""
import signal
import struct

import grpc
import pytest

import h2raw as h
from conftest import binary, start_listening, stop_process
from echo_peer import SERVICE

BIDI = f"/{SERVICE}/Bidi"


@pytest.fixture
def server():
    proc, port = start_listening([binary("echo-server"), "0"])
    yield proc, port
    stop_process(proc)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def still_serves(port):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        assert ch.unary_unary(f"/{SERVICE}/Unary")(b"still here", timeout=20) == b"still here"


def test_rapid_reset_ends_the_connection(server):
    """HEADERS then RST_STREAM, 2000 times (CVE-2023-44487): past nghttp2's reset rate
    limit (1000 at once, then 33/s) the connection is ended."""
    proc, port = server
    p = h.Peer(port)
    p.handshake()
    block = h.header_block(h.grpc_request(BIDI))
    burst = b"".join(h.frame(h.HEADERS, h.END_HEADERS, sid, block)
                     + h.frame(h.RST_STREAM, 0, sid, struct.pack(">I", h.CANCEL))
                     for sid in range(1, 4001, 2))
    p.send_quietly(burst)
    goaway = p.goaway()
    assert goaway is not None and goaway[1] != h.NO_ERROR, goaway
    p.drain_to_close()
    p.close()
    still_serves(port)


def test_continuation_flood_ends_the_connection(server):
    """A header block that never ends (CVE-2024-28182): HEADERS without END_HEADERS, then
    CONTINUATION frames; past nghttp2's limit (8) the connection ends ENHANCE_YOUR_CALM."""
    proc, port = server
    p = h.Peer(port)
    p.handshake()
    block = h.header_block(h.grpc_request(BIDI))
    flood = h.frame(h.HEADERS, 0, 1, block[:8]) + b"".join(
        h.frame(h.CONTINUATION, 0, 1, block[8:9]) for _ in range(200))
    p.send_quietly(flood)
    assert p.goaway()[1] == h.ENHANCE_YOUR_CALM
    p.drain_to_close()
    p.close()
    still_serves(port)


def test_streams_beyond_the_concurrent_limit_end_the_connection(server):
    """The server advertises 100 concurrent streams; a client that acknowledged that and
    opens a 101st is in breach of it: PROTOCOL_ERROR, and the connection ends."""
    proc, port = server
    p = h.Peer(port)
    p.handshake()
    for i in range(101):
        p.headers(1 + 2 * i, h.grpc_request(BIDI))
    last, code, debug = p.goaway()
    assert code == h.PROTOCOL_ERROR and b"max concurrent streams exceeded" in debug
    assert last == 199   # the first 100 streams were taken
    p.drain_to_close()
    p.close()
    still_serves(port)


def test_a_settings_frame_with_too_many_entries_is_refused(server):
    proc, port = server
    p = h.Peer(port)
    p.handshake()
    p.send(h.frame(h.SETTINGS, 0, 0, b"".join(struct.pack(">HI", 4, 65535) for _ in range(100))))
    last, code, debug = p.goaway()
    assert code == h.ENHANCE_YOUR_CALM and b"too many setting entries" in debug
    p.drain_to_close()
    p.close()
    still_serves(port)


@pytest.mark.parametrize("kind", ["PING", "SETTINGS"])
def test_a_flood_of_frames_to_acknowledge_from_a_peer_that_does_not_read(server, kind):
    """PINGs (or empty SETTINGS) sent without ever reading the acknowledgements: once the
    socket is full, the acknowledgements queue in nghttp2, and past its bound (1000) the
    connection is closed; the server's memory stays bounded."""
    proc, port = server
    before = rss_kib(proc.pid)
    p = h.Peer(port, rcvbuf=4096)
    p.handshake()
    one = h.frame(h.PING, 0, 0, b"12345678") if kind == "PING" else h.frame(h.SETTINGS, 0, 0)
    batch = one * 1000
    sent = 0
    # Bounded: the server has to close the connection long before 5 million frames.
    while sent < 5_000_000 and p.send_quietly(batch):
        sent += 1000
    assert sent < 5_000_000, "the server took 5 million frames without closing the connection"
    p.close()
    assert rss_kib(proc.pid) - before < 64 * 1024, "the server grew by more than 64 MiB"
    still_serves(port)


def test_a_connection_that_is_not_http2_is_told_so(server):
    proc, port = server
    p = h.Peer(port)
    p.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    goaway = p.goaway()
    assert goaway is not None and goaway[1] == h.PROTOCOL_ERROR
    p.drain_to_close()
    p.close()


def test_streams_arriving_after_the_goaway_notice_are_refused(server):
    """Graceful shutdown: a GOAWAY notice and a PING, the final GOAWAY once the PING comes
    back. A stream that arrives meanwhile (its client had not seen the notice) is reset
    REFUSED_STREAM — not processed, so a client may retry it elsewhere."""
    proc, port = server
    p = h.Peer(port)
    p.handshake()
    proc.send_signal(signal.SIGTERM)          # the echo server shuts down (grace 5 s)
    notice = None
    ping = None
    for f in p.frames_until(lambda f: f[0] == h.GOAWAY):
        if f[0] == h.GOAWAY:
            notice = struct.unpack(">II", f[3][:8])
        if f[0] == h.PING and not f[1] & h.ACK:
            ping = f[3]
    assert notice == (2 ** 31 - 1, h.NO_ERROR) and ping is not None
    # The PING is not answered yet: the server still waits for streams in flight (for up
    # to a second).
    p.headers(1, h.grpc_request(BIDI))
    p.send(h.frame(h.DATA, h.END_STREAM, 1, h.message(b"late")))
    rst = next(f for f in p.frames_until(lambda f: f[0] == h.RST_STREAM) if f[0] == h.RST_STREAM)
    assert rst[2] == 1 and h.rst_code(rst[3]) == h.REFUSED_STREAM
    # Answered, the PING brings the final GOAWAY, and the connection closes.
    p.send(h.frame(h.PING, h.ACK, 0, ping))
    final = p.goaway()
    assert final is not None and final[1] == h.NO_ERROR
    p.drain_to_close()
    p.close()
    assert proc.wait(timeout=20) == 0
