"""grpcio's public types when grpcio is importable, equivalents of our own when not
(StatusCode is status.StatusCode).

Generated code (grpcio-tools) imports grpc anyway; a program that only uses this package
with hand-written serializers runs without grpcio.
"""

import collections
import enum
import logging

from .._native import constants as _c
from .status import StatusCode  # noqa: F401 - part of this module's names

try:  # pragma: no cover - which branch runs depends on the environment
    import grpc as _grpc
except ImportError:  # pragma: no cover
    _grpc = None

HAVE_GRPCIO = _grpc is not None

if HAVE_GRPCIO:
    Compression = _grpc.Compression
    RpcError = _grpc.RpcError
    Call = _grpc.Call
    Future = _grpc.Future
    ServicerContext = _grpc.ServicerContext
    FutureTimeoutError = _grpc.FutureTimeoutError
    FutureCancelledError = _grpc.FutureCancelledError
    RpcMethodHandler = _grpc.RpcMethodHandler
    GenericRpcHandler = _grpc.GenericRpcHandler
    HandlerCallDetails = _grpc.HandlerCallDetails
    ServiceRpcHandler = _grpc.ServiceRpcHandler
    Server = _grpc.Server
    Channel = _grpc.Channel
    unary_unary_rpc_method_handler = _grpc.unary_unary_rpc_method_handler
    unary_stream_rpc_method_handler = _grpc.unary_stream_rpc_method_handler
    stream_unary_rpc_method_handler = _grpc.stream_unary_rpc_method_handler
    stream_stream_rpc_method_handler = _grpc.stream_stream_rpc_method_handler
    method_handlers_generic_handler = _grpc.method_handlers_generic_handler
    ServerInterceptor = _grpc.ServerInterceptor
    Status = _grpc.Status
    ChannelConnectivity = _grpc.ChannelConnectivity
else:
    @enum.unique
    class Compression(enum.IntEnum):
        NoCompression = 0
        Deflate = 1
        Gzip = 2

    @enum.unique
    class ChannelConnectivity(enum.Enum):
        """A channel's connectivity state (grpc.ChannelConnectivity when grpcio is
        present: the same names and values)."""
        IDLE = (_c.GH_CONNECTIVITY_IDLE, "idle")
        CONNECTING = (_c.GH_CONNECTIVITY_CONNECTING, "connecting")
        READY = (_c.GH_CONNECTIVITY_READY, "ready")
        TRANSIENT_FAILURE = (_c.GH_CONNECTIVITY_TRANSIENT_FAILURE, "transient failure")
        SHUTDOWN = (_c.GH_CONNECTIVITY_SHUTDOWN, "shutdown")

    class RpcError(Exception):
        """Raised by calls that end with a non-OK status."""

    class Call(object):
        """Marker base of call objects (grpc.Call when grpcio is present)."""

    class Future(object):
        """Marker base of futures (grpc.Future when grpcio is present)."""

    class ServicerContext(object):
        """Marker base of servicer contexts (grpc.ServicerContext when grpcio is present)."""

    class FutureTimeoutError(Exception):
        pass

    class FutureCancelledError(Exception):
        pass

    class GenericRpcHandler(object):
        def service(self, handler_call_details):
            raise NotImplementedError()

    class ServiceRpcHandler(GenericRpcHandler):
        def service_name(self):
            raise NotImplementedError()

    class HandlerCallDetails(object):
        pass

    class ServerInterceptor(object):
        """Base of server interceptors (grpc.ServerInterceptor when grpcio is present)."""

        def intercept_service(self, continuation, handler_call_details):
            raise NotImplementedError()

    class Status(object):
        """What ServicerContext.abort_with_status takes: `code`, `details`,
        `trailing_metadata` (grpc.Status when grpcio is present)."""

    class Server(object):
        pass

    class Channel(object):
        pass

    RpcMethodHandler = collections.namedtuple("RpcMethodHandler", (
        "request_streaming", "response_streaming", "request_deserializer",
        "response_serializer", "unary_unary", "unary_stream", "stream_unary",
        "stream_stream"))

    def unary_unary_rpc_method_handler(behavior, request_deserializer=None,
                                       response_serializer=None):
        return RpcMethodHandler(False, False, request_deserializer, response_serializer,
                                behavior, None, None, None)

    def unary_stream_rpc_method_handler(behavior, request_deserializer=None,
                                        response_serializer=None):
        return RpcMethodHandler(False, True, request_deserializer, response_serializer,
                                None, behavior, None, None)

    def stream_unary_rpc_method_handler(behavior, request_deserializer=None,
                                        response_serializer=None):
        return RpcMethodHandler(True, False, request_deserializer, response_serializer,
                                None, None, behavior, None)

    def stream_stream_rpc_method_handler(behavior, request_deserializer=None,
                                         response_serializer=None):
        return RpcMethodHandler(True, True, request_deserializer, response_serializer,
                                None, None, None, behavior)

    class _DictionaryGenericHandler(ServiceRpcHandler):
        def __init__(self, service, method_handlers):
            self._name = service
            self._method_handlers = {
                "/%s/%s" % (service, method): handler
                for method, handler in method_handlers.items()
            }

        def service_name(self):
            return self._name

        def service(self, handler_call_details):
            return self._method_handlers.get(handler_call_details.method)

    def method_handlers_generic_handler(service, method_handlers):
        return _DictionaryGenericHandler(service, method_handlers)


def compression_value(compression):
    """gh_compression for a grpc.Compression (None → default)."""
    if compression is None:
        return _c.GH_COMPRESSION_DEFAULT
    return int(compression)


def serialize(serializer, value, failure):
    """`value` as bytes through `serializer` (without one, `value` must be bytes); None,
    with `failure` logged, when that fails."""
    if serializer is None:
        return value if isinstance(value, bytes) else None
    try:
        return serializer(value)
    except Exception:
        logging.getLogger("grpchelper").exception(failure)
        return None
