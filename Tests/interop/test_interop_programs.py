"""The gRPC interop programs (grpc/grpc doc/interop-test-descriptions.md):
our interop-client against our interop-server and against grpcio's TestService
(interop_peer.py), and grpcio client test cases against our interop-server."""
import importlib
import queue
import subprocess
import threading

import grpc
import pytest

from conftest import binary, start_listening, stop_process

CASES = [
    "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong",
    "empty_stream", "timeout_on_sleeping_server", "cancel_after_begin",
    "cancel_after_first_response", "status_code_and_message", "special_status_message",
    "custom_metadata", "unimplemented_method", "unimplemented_service",
    "client_compressed_unary", "client_compressed_streaming", "server_compressed_unary",
    "server_compressed_streaming",
]
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
TIMEOUT = 20


@pytest.fixture(scope="module")
def interop_server():
    """Our interop-server; it must stop cleanly (exit 0) on SIGTERM."""
    proc, port = start_listening([binary("interop-server"), "--port=0"])
    try:
        yield port
    finally:
        assert stop_process(proc) == 0


@pytest.fixture(scope="module")
def grpcio_interop_server(interop_pb):
    peer = importlib.import_module("interop_peer")
    server, port = peer.make_server()
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None).wait()


def run_client(port, test_case):
    out = subprocess.run([binary("interop-client"), "--server_host=127.0.0.1", f"--server_port={port}",
                          f"--test_case={test_case}", "--use_tls=false"],
                         capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout + out.stderr


# ---- our client -> our server ------------------------------------------------------

def test_swift_client_all_cases_against_swift_server(interop_server):
    rc, output = run_client(interop_server, "all")
    assert rc == 0, output
    for case in CASES:
        assert f"PASS {case}\n" in output, output
    assert f"{len(CASES)} passed, 0 failed" in output, output


def test_swift_client_reports_failures():
    """A failing case gives a FAIL line, the count and a non-zero exit status."""
    # No server: nothing listens on this port once the socket is closed.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, output = run_client(port, "empty_unary")
    assert rc == 1, output
    assert "FAIL empty_unary" in output and "0 passed, 1 failed" in output, output


def test_swift_client_flags(interop_server):
    out = subprocess.run([binary("interop-client"), "--server_host", "127.0.0.1", "--server_port",
                          str(interop_server), "--test_case", "empty_unary", "--use_tls=false",
                          "--server_host_override=foo.test.google.fr"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed, 0 failed" in out.stdout
    assert "warning" in out.stderr and "server_host_override" in out.stderr
    bad = subprocess.run([binary("interop-client"), f"--server_port={interop_server}", "--test_case=nope"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown test case" in bad.stderr


# ---- our client -> grpcio server ---------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_swift_client_against_grpcio_server(grpcio_interop_server, case):
    rc, output = run_client(grpcio_interop_server, case)
    assert rc == 0, output
    assert f"PASS {case}\n" in output and "1 passed, 0 failed" in output, output


# ---- grpcio client -> our server ---------------------------------------------------

@pytest.fixture
def pb(interop_pb):
    return interop_pb


@pytest.fixture
def channel(interop_server):
    with grpc.insecure_channel(f"127.0.0.1:{interop_server}") as ch:
        yield ch


@pytest.fixture
def stub(pb, channel):
    return pb.test_pb2_grpc.TestServiceStub(channel)


def zeros(pb, n):
    return pb.messages_pb2.Payload(body=b"\0" * n)


def large_request(pb, **kw):
    return pb.messages_pb2.SimpleRequest(response_size=314159, payload=zeros(pb, 271828), **kw)


def assert_zeros(payload, size):
    assert len(payload.body) == size
    assert payload.body == b"\0" * size


def blocking_requests(items, release):
    """Yields `items`, then blocks until `release` is set (no half-close before)."""
    yield from items
    release.wait(TIMEOUT)


def test_empty_unary(pb, stub):
    response, call = stub.EmptyCall.with_call(pb.empty_pb2.Empty(), timeout=TIMEOUT)
    assert isinstance(response, pb.empty_pb2.Empty)
    assert call.code() == grpc.StatusCode.OK


def test_large_unary(pb, stub):
    assert_zeros(stub.UnaryCall(large_request(pb), timeout=TIMEOUT).payload, 314159)


def test_client_streaming(pb, stub):
    requests = [pb.messages_pb2.StreamingInputCallRequest(payload=zeros(pb, n)) for n in (27182, 8, 1828, 45904)]
    assert stub.StreamingInputCall(iter(requests), timeout=TIMEOUT).aggregated_payload_size == 74922


def test_server_streaming(pb, stub):
    sizes = [31415, 9, 2653, 58979]
    request = pb.messages_pb2.StreamingOutputCallRequest(
        response_parameters=[pb.messages_pb2.ResponseParameters(size=n) for n in sizes])
    responses = list(stub.StreamingOutputCall(request, timeout=TIMEOUT))
    assert [len(r.payload.body) for r in responses] == sizes
    for r, n in zip(responses, sizes):
        assert_zeros(r.payload, n)


def test_server_streaming_interval(pb, stub):
    """interval_us delays each response (it accumulates)."""
    import time
    request = pb.messages_pb2.StreamingOutputCallRequest(
        response_parameters=[pb.messages_pb2.ResponseParameters(size=1, interval_us=150_000)] * 3)
    start = time.monotonic()
    assert len(list(stub.StreamingOutputCall(request, timeout=TIMEOUT))) == 3
    assert time.monotonic() - start >= 0.45


def test_ping_pong(pb, stub):
    requests = queue.Queue()

    def gen():
        while (item := requests.get()) is not None:
            yield item

    responses = stub.FullDuplexCall(gen(), timeout=TIMEOUT)
    for size, body in [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]:
        requests.put(pb.messages_pb2.StreamingOutputCallRequest(
            response_parameters=[pb.messages_pb2.ResponseParameters(size=size)], payload=zeros(pb, body)))
        assert_zeros(next(responses).payload, size)
    requests.put(None)
    assert list(responses) == []
    assert responses.code() == grpc.StatusCode.OK


def test_half_duplex(pb, stub):
    """HalfDuplexCall answers only once the requests are complete, in order."""
    requests = [pb.messages_pb2.StreamingOutputCallRequest(
        response_parameters=[pb.messages_pb2.ResponseParameters(size=n)]) for n in (3, 1, 2)]
    assert [len(r.payload.body) for r in stub.HalfDuplexCall(iter(requests), timeout=TIMEOUT)] == [3, 1, 2]


def test_empty_stream(stub):
    responses = stub.FullDuplexCall(iter([]), timeout=TIMEOUT)
    assert list(responses) == []
    assert responses.code() == grpc.StatusCode.OK


def test_timeout_on_sleeping_server(pb, stub):
    release = threading.Event()
    try:
        request = pb.messages_pb2.StreamingOutputCallRequest(payload=zeros(pb, 27182))
        responses = stub.FullDuplexCall(blocking_requests([request], release), timeout=0.001)
        with pytest.raises(grpc.RpcError) as e:
            list(responses)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        release.set()


def test_cancel_after_begin(stub):
    release = threading.Event()
    try:
        future = stub.StreamingInputCall.future(blocking_requests([], release), timeout=TIMEOUT)
        assert future.cancel()
        assert future.cancelled()
        assert future.code() == grpc.StatusCode.CANCELLED
    finally:
        release.set()


def test_cancel_after_first_response(pb, stub):
    release = threading.Event()
    try:
        request = pb.messages_pb2.StreamingOutputCallRequest(
            response_parameters=[pb.messages_pb2.ResponseParameters(size=31415)], payload=zeros(pb, 27182))
        responses = stub.FullDuplexCall(blocking_requests([request], release), timeout=TIMEOUT)
        assert_zeros(next(responses).payload, 31415)
        responses.cancel()
        assert responses.code() == grpc.StatusCode.CANCELLED
    finally:
        release.set()


@pytest.mark.parametrize("message", ["test status message", SPECIAL_MESSAGE], ids=["plain", "special"])
def test_status_code_and_message(pb, stub, message):
    echo = pb.messages_pb2.EchoStatus(code=2, message=message)
    with pytest.raises(grpc.RpcError) as e:
        stub.UnaryCall(pb.messages_pb2.SimpleRequest(response_status=echo), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details() == message
    responses = stub.FullDuplexCall(iter([pb.messages_pb2.StreamingOutputCallRequest(response_status=echo)]),
                                    timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as e:
        list(responses)
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details() == message


def test_custom_metadata(pb, stub):
    metadata = [("x-grpc-test-echo-initial", "test_initial_metadata_value"),
                ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")]
    response, call = stub.UnaryCall.with_call(large_request(pb), timeout=TIMEOUT, metadata=metadata)
    assert_zeros(response.payload, 314159)
    assert ("x-grpc-test-echo-initial", "test_initial_metadata_value") in call.initial_metadata()
    assert ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab") in call.trailing_metadata()

    request = pb.messages_pb2.StreamingOutputCallRequest(
        response_parameters=[pb.messages_pb2.ResponseParameters(size=314159)], payload=zeros(pb, 271828))
    responses = stub.FullDuplexCall(iter([request]), timeout=TIMEOUT, metadata=metadata)
    assert [len(r.payload.body) for r in responses] == [314159]
    assert ("x-grpc-test-echo-initial", "test_initial_metadata_value") in responses.initial_metadata()
    assert ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab") in responses.trailing_metadata()


def test_custom_metadata_with_error_status(pb, stub):
    """The echoed trailing metadata also goes out with a failed call (a status the handler
    finishes with, or an error it throws)."""
    metadata = [("x-grpc-test-echo-trailing-bin", b"\x00\xff")]
    echo = pb.messages_pb2.EchoStatus(code=9, message="failed precondition")
    for request, code in [
            (pb.messages_pb2.SimpleRequest(response_status=echo), grpc.StatusCode.FAILED_PRECONDITION),
            (pb.messages_pb2.SimpleRequest(expect_compressed=pb.messages_pb2.BoolValue(value=True)),
             grpc.StatusCode.INVALID_ARGUMENT)]:
        with pytest.raises(grpc.RpcError) as e:
            stub.UnaryCall(request, timeout=TIMEOUT, metadata=metadata)
        assert e.value.code() == code
        assert ("x-grpc-test-echo-trailing-bin", b"\x00\xff") in e.value.trailing_metadata()


def test_unimplemented_method(pb, stub):
    with pytest.raises(grpc.RpcError) as e:
        stub.UnimplementedCall(pb.empty_pb2.Empty(), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unimplemented_service(pb, channel):
    with pytest.raises(grpc.RpcError) as e:
        pb.test_pb2_grpc.UnimplementedServiceStub(channel).UnimplementedCall(pb.empty_pb2.Empty(), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_client_compressed_unary(pb, stub):
    yes = pb.messages_pb2.BoolValue(value=True)
    no = pb.messages_pb2.BoolValue(value=False)
    # The probe: uncompressed although expect_compressed.
    with pytest.raises(grpc.RpcError) as e:
        stub.UnaryCall(large_request(pb, expect_compressed=yes), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    response = stub.UnaryCall(large_request(pb, expect_compressed=yes), timeout=TIMEOUT,
                              compression=grpc.Compression.Gzip)
    assert_zeros(response.payload, 314159)
    assert_zeros(stub.UnaryCall(large_request(pb, expect_compressed=no), timeout=TIMEOUT).payload, 314159)
    # The converse: compressed although expect_compressed is false.
    with pytest.raises(grpc.RpcError) as e:
        stub.UnaryCall(large_request(pb, expect_compressed=no), timeout=TIMEOUT, compression=grpc.Compression.Gzip)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("algorithm", [grpc.Compression.Gzip, grpc.Compression.Deflate])
def test_client_compressed_streaming(pb, stub, algorithm):
    yes = pb.messages_pb2.BoolValue(value=True)
    requests = [pb.messages_pb2.StreamingInputCallRequest(expect_compressed=yes, payload=zeros(pb, n))
                for n in (27182, 45904)]
    with pytest.raises(grpc.RpcError) as e:
        stub.StreamingInputCall(iter(requests), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    response = stub.StreamingInputCall(iter(requests), timeout=TIMEOUT, compression=algorithm)
    assert response.aggregated_payload_size == 73086


@pytest.fixture
def raw_channel(interop_server):
    """A channel that leaves compressed responses compressed (to see the flag)."""
    peer = importlib.import_module("interop_peer")
    with grpc.insecure_channel(f"127.0.0.1:{interop_server}", options=peer.NO_DECOMPRESSION) as ch:
        yield ch


def test_server_compressed_unary(pb, raw_channel):
    peer = importlib.import_module("interop_peer")
    call = raw_channel.unary_unary("/grpc.testing.TestService/UnaryCall",
                                   request_serializer=pb.messages_pb2.SimpleRequest.SerializeToString,
                                   response_deserializer=peer.unwrap)
    for compressed in (True, False):
        raw, was_compressed = call(large_request(pb, response_compressed=pb.messages_pb2.BoolValue(value=compressed)),
                                   timeout=TIMEOUT)
        assert was_compressed == compressed
        assert_zeros(pb.messages_pb2.SimpleResponse.FromString(raw).payload, 314159)


def test_server_compressed_streaming(pb, raw_channel):
    peer = importlib.import_module("interop_peer")
    call = raw_channel.unary_stream("/grpc.testing.TestService/StreamingOutputCall",
                                    request_serializer=pb.messages_pb2.StreamingOutputCallRequest.SerializeToString,
                                    response_deserializer=peer.unwrap)
    request = pb.messages_pb2.StreamingOutputCallRequest(response_parameters=[
        pb.messages_pb2.ResponseParameters(size=31415, compressed=pb.messages_pb2.BoolValue(value=True)),
        pb.messages_pb2.ResponseParameters(size=92653, compressed=pb.messages_pb2.BoolValue(value=False)),
    ])
    got = list(call(request, timeout=TIMEOUT))
    assert [c for _, c in got] == [True, False]
    sizes = [len(pb.messages_pb2.StreamingOutputCallResponse.FromString(raw).payload.body) for raw, _ in got]
    assert sizes == [31415, 92653]
