"""A bare HTTP/2 peer over a plain socket, for sending what no gRPC client would: frames
written by hand (RFC 9113 section 4), header blocks as HPACK literals without indexing or
Huffman coding (RFC 7541 6.2.2), and frames read back without decoding header blocks."""
import socket
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, \
    STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, \
    CONNECT_ERROR, ENHANCE_YOUR_CALM = range(12)


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _int(value, prefix_bits, first=0):
    """An HPACK integer with an N-bit prefix (RFC 7541 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def header_block(fields):
    """HPACK literals without indexing, new names, no Huffman."""
    out = b""
    for name, value in fields:
        n, v = name.encode(), value.encode()
        out += b"\x00" + _int(len(n), 7) + n + _int(len(v), 7) + v
    return out


def grpc_request(path, extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers")] + list(extra)


def message(payload):
    """A gRPC length-prefixed message, uncompressed."""
    return b"\x00" + struct.pack(">I", len(payload)) + payload


class Peer:
    """One connection. `frames()` reads what arrived (type, flags, stream, payload)."""

    def __init__(self, port, rcvbuf=None, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.closed = False

    def handshake(self):
        """Sends the preface and an empty SETTINGS, reads the server's SETTINGS, ACKs it."""
        self.send(PREFACE + frame(SETTINGS, 0, 0))
        for f in self.frames_until(lambda f: f[0] == SETTINGS and not f[1] & ACK):
            pass
        self.send(frame(SETTINGS, ACK, 0))

    def send(self, data):
        self.sock.sendall(data)

    def send_quietly(self, data):
        """Sends, and says whether the connection took it (False: the server closed it)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def headers(self, stream, fields, end_stream=False):
        self.send(frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream, header_block(fields)))

    def read_frame(self):
        """The next frame, or None once the server closed the connection."""
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk
        length = int.from_bytes(self.buf[:3], "big")
        kind, flags = self.buf[3], self.buf[4]
        stream = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
        payload = self.buf[9:9 + length]
        self.buf = self.buf[9 + length:]
        return kind, flags, stream, payload

    def frames_until(self, stop):
        """Yields frames until one satisfies `stop` (yielded too) or the connection ends."""
        while True:
            f = self.read_frame()
            if f is None:
                return
            yield f
            if stop(f):
                return

    def goaway(self):
        """Reads until a GOAWAY: (last stream id, error code, debug data), or None if the
        connection closed without one."""
        for f in self.frames_until(lambda f: f[0] == GOAWAY):
            if f[0] == GOAWAY:
                last, code = struct.unpack(">II", f[3][:8])
                return last & 0x7FFFFFFF, code, f[3][8:]
        return None

    def drain_to_close(self):
        """Reads (and drops) everything until the server closes the connection."""
        while self.read_frame() is not None:
            pass

    def close(self):
        self.sock.close()


def rst_code(payload):
    return struct.unpack(">I", payload)[0]
