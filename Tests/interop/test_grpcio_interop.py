"""Interop with the reference implementation (grpcio from PyPI), both directions."""
import subprocess

import grpc
import pytest

from conftest import binary
from echo_peer import SERVICE, make_server

METHOD = f"/{SERVICE}"


@pytest.fixture
def channel(swift_echo_server):
    with grpc.insecure_channel(f"127.0.0.1:{swift_echo_server}") as ch:
        yield ch


# ---- grpcio client -> our server ------------------------------------------------

def test_unary_with_metadata(channel):
    call = channel.unary_unary(f"{METHOD}/Unary")
    resp, info = call.with_call(b"hello", timeout=10,
                                metadata=[("x-echo", "a"), ("x-echo", "b"), ("x-echo-trailer", "t")])
    assert resp == b"hello"
    assert [v for k, v in info.initial_metadata() if k == "x-echo"] == ["a", "b"]
    assert ("x-echo-trailer", "t") in tuple(info.trailing_metadata())
    assert info.code() == grpc.StatusCode.OK


def test_server_streaming(channel):
    call = channel.unary_stream(f"{METHOD}/ServerStream")
    assert list(call(b"4:x", timeout=10)) == [b"x 0", b"x 1", b"x 2", b"x 3"]


def test_client_streaming(channel):
    call = channel.stream_unary(f"{METHOD}/ClientStream")
    assert call(iter([b"1", b"2", b"3"]), timeout=10) == b"1,2,3"


def test_bidi_ping_pong(channel):
    import queue
    requests = queue.Queue()

    def gen():
        while True:
            item = requests.get()
            if item is None:
                return
            yield item

    responses = channel.stream_stream(f"{METHOD}/Bidi")(gen(), timeout=10)
    for i in range(5):
        requests.put(f"ping {i}".encode())
        assert next(responses) == f"ping {i}".encode()
    requests.put(None)
    assert list(responses) == []


@pytest.mark.parametrize("algorithm", [grpc.Compression.Gzip, grpc.Compression.Deflate])
def test_compressed_calls(channel, algorithm):
    big = b"compressible " * 100_000
    call = channel.unary_unary(f"{METHOD}/Unary")
    assert call(big, timeout=10, compression=algorithm) == big


def test_unimplemented(channel):
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary(f"/{SERVICE}/Nope")(b"", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary("/no.Such/Service")(b"", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_invalid_argument_status(channel):
    # The Swift echo server answers a malformed server-streaming request with INVALID_ARGUMENT.
    # A count out of range is refused the same way (a negative one used to crash it: found
    # by bench/soak.sh's invalid requests), and an empty text is fine.
    for bad in (b"no colon", b"-1:x", b"1001:x"):
        with pytest.raises(grpc.RpcError) as e:
            list(channel.unary_stream(f"{METHOD}/ServerStream")(bad, timeout=10))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details() == "expected N:text with N in 0...1000"
    assert list(channel.unary_stream(f"{METHOD}/ServerStream")(b"2:", timeout=10)) == [b" 0", b" 1"]


def test_max_message_size(channel):
    call = channel.unary_unary(f"{METHOD}/Unary")
    three = b"x" * (3 * 1024 * 1024)
    assert call(three, timeout=20) == three
    with pytest.raises(grpc.RpcError) as e:
        call(b"x" * (5 * 1024 * 1024), timeout=20)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_concurrent_calls(channel):
    from concurrent.futures import ThreadPoolExecutor
    call = channel.unary_unary(f"{METHOD}/Unary")
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda i: call(str(i).encode(), timeout=20), range(100)))
    assert results == [str(i).encode() for i in range(100)]


# ---- our client -> grpcio server ------------------------------------------------

@pytest.fixture
def grpcio_server():
    server, port = make_server()
    server.start()
    yield port
    server.stop(grace=None)


def test_swift_client_against_grpcio_server(grpcio_server):
    out = subprocess.run([binary("echo-client"), f"127.0.0.1:{grpcio_server}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "unary: sent 'hello' got 'hello' (initial metadata x-echo=from-swift)" in out.stdout
    assert "server streaming: sent '3:swift' got [\"swift 0\", \"swift 1\", \"swift 2\"]" in out.stdout
    assert "client streaming: sent [a, b, c] got 'a,b,c'" in out.stdout
    assert "bidi streaming: ping-pong got [\"ping 1\", \"ping 2\", \"ping 3\"]" in out.stdout
