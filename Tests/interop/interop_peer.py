"""grpc.testing.TestService on grpcio, with the server behaviour of grpc/grpc's
doc/interop-test-descriptions.md (as Sources/InteropServer implements it):
payloads of response_size zero bytes, Echo Status, Echo Metadata, CompressedResponse
(response_compressed / ResponseParameters.compressed), CompressedRequest
(expect_compressed) and interval_us. UnimplementedCall and UnimplementedService are not
served (UNIMPLEMENTED).

Import it after the `interop_pb` fixture has generated the messages.

grpcio does not tell a handler whether a request message was compressed. The server
therefore runs with per-message decompression off: grpc core then hands over compressed
messages as they came off the wire, and `unwrap` decompresses them here, keeping the flag.
"""
import gzip
import time
import zlib
from concurrent import futures
from typing import NamedTuple

import grpc

from interop_pb import empty_pb2, messages_pb2

SERVICE = "grpc.testing.TestService"
ECHO_INITIAL_KEY = "x-grpc-test-echo-initial"
ECHO_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"
NO_DECOMPRESSION = [("grpc.per_message_decompression", 0)]

_CODES = {c.value[0]: c for c in grpc.StatusCode}


def unwrap(data):
    """(bytes, was_compressed) of a message received with per-message decompression off.

    gzip starts with 1f 8b, which no protobuf message can (wire type 7 does not exist);
    grpc's deflate is zlib-wrapped and only counts if it really inflates."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data), True
    if len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0:
        try:
            return zlib.decompress(data), True
        except zlib.error:
            pass
    return data, False


class Received(NamedTuple):
    message: object
    compressed: bool


def _deserializer(message_class):
    def deserialize(data):
        raw, compressed = unwrap(data)
        return Received(message_class.FromString(raw), compressed)
    return deserialize


def _zeros(size):
    if size < 0:
        raise ValueError("negative size")
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=b"\0" * size)


def _echo_metadata(context):
    md = context.invocation_metadata()
    initial = tuple((k, v) for k, v in md if k == ECHO_INITIAL_KEY)
    trailing = tuple((k, v) for k, v in md if k == ECHO_TRAILING_KEY)
    if trailing:
        context.set_trailing_metadata(trailing)
    if initial:
        context.send_initial_metadata(initial)


def _check_response_type(request, context):
    if request.response_type != messages_pb2.COMPRESSABLE:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported response type {request.response_type}")


def _check_expected_compression(request, compressed, context):
    if not request.HasField("expect_compressed"):
        return
    if request.expect_compressed.value and not compressed:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected a compressed request message")
    if not request.expect_compressed.value and compressed:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected an uncompressed request message")


def _maybe_echo_status(request, context):
    if request.HasField("response_status") and request.response_status.code != 0:
        context.abort(_CODES.get(request.response_status.code, grpc.StatusCode.UNKNOWN),
                      request.response_status.message)


def _responses(request, context):
    """StreamingOutputCallResponses for `request`, honouring interval_us and compressed
    (the call's compression must already be gzip for compressed ones)."""
    _check_response_type(request, context)
    for p in request.response_parameters:
        if p.interval_us > 0:
            time.sleep(p.interval_us / 1e6)
        if not p.compressed.value:
            context.disable_next_message_compression()
        yield messages_pb2.StreamingOutputCallResponse(payload=_zeros(p.size))


class InteropService:
    """The handlers; requests arrive as `Received` (message, compressed)."""

    def EmptyCall(self, received, context):
        _echo_metadata(context)
        return empty_pb2.Empty()

    def UnaryCall(self, received, context):
        request = received.message
        if request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        _echo_metadata(context)
        _check_expected_compression(request, received.compressed, context)
        _maybe_echo_status(request, context)
        _check_response_type(request, context)
        return messages_pb2.SimpleResponse(payload=_zeros(request.response_size))

    def StreamingOutputCall(self, received, context):
        request = received.message
        if any(p.compressed.value for p in request.response_parameters):
            context.set_compression(grpc.Compression.Gzip)
        _echo_metadata(context)
        _maybe_echo_status(request, context)
        yield from _responses(request, context)

    def StreamingInputCall(self, request_iterator, context):
        _echo_metadata(context)
        total = 0
        for received in request_iterator:
            _check_expected_compression(received.message, received.compressed, context)
            total += len(received.message.payload.body)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        context.set_compression(grpc.Compression.Gzip)
        _echo_metadata(context)
        for received in request_iterator:
            _maybe_echo_status(received.message, context)
            yield from _responses(received.message, context)

    def HalfDuplexCall(self, request_iterator, context):
        context.set_compression(grpc.Compression.Gzip)
        _echo_metadata(context)
        requests = [received.message for received in request_iterator]
        for request in requests:
            _maybe_echo_status(request, context)
            yield from _responses(request, context)


def make_server(host="127.0.0.1", port=0, max_workers=16):
    """A grpcio server for TestService (not started) and its port."""
    svc = InteropService()
    S = messages_pb2.SimpleRequest
    I = messages_pb2.StreamingInputCallRequest
    O = messages_pb2.StreamingOutputCallRequest

    def serialize(m):
        return m.SerializeToString()

    def handler(kind, fn, request_class):
        return kind(fn, request_deserializer=_deserializer(request_class), response_serializer=serialize)

    handlers = grpc.method_handlers_generic_handler(SERVICE, {
        "EmptyCall": handler(grpc.unary_unary_rpc_method_handler, svc.EmptyCall, empty_pb2.Empty),
        "UnaryCall": handler(grpc.unary_unary_rpc_method_handler, svc.UnaryCall, S),
        "StreamingOutputCall": handler(grpc.unary_stream_rpc_method_handler, svc.StreamingOutputCall, O),
        "StreamingInputCall": handler(grpc.stream_unary_rpc_method_handler, svc.StreamingInputCall, I),
        "FullDuplexCall": handler(grpc.stream_stream_rpc_method_handler, svc.FullDuplexCall, O),
        "HalfDuplexCall": handler(grpc.stream_stream_rpc_method_handler, svc.HalfDuplexCall, O),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), options=NO_DECOMPRESSION)
    server.add_generic_rpc_handlers((handlers,))
    bound = server.add_insecure_port(f"{host}:{port}")
    return server, bound
