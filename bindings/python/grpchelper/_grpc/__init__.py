"""Layer 2: grpcio's surface on libgrpchelper (grpchelper.server, grpchelper.insecure_channel).

- `status`: gRPC status codes (the one place they are defined);
- `compat`: grpcio's public types, or equivalents when grpcio is not installed;
- `metadata`: metadata between grpcio's form and gh_metadata;
- `server`, `dispatch`, `context`: grpc.Server, serving a call, grpc.ServicerContext;
- `channel`, `calls`: grpc.Channel and its multi-callables, the call objects;
- `connectivity`: Channel.subscribe / unsubscribe, grpc.ChannelConnectivity,
  grpc.channel_ready_future;
- `health`: HealthStatus and what servers share for the library's health service.
"""

from .compat import (HAVE_GRPCIO, Call, ChannelConnectivity, Compression, Future,
                     FutureCancelledError, FutureTimeoutError, GenericRpcHandler,
                     HandlerCallDetails, RpcError, RpcMethodHandler, ServerInterceptor,
                     ServiceRpcHandler, Status, compression_value,
                     method_handlers_generic_handler, serialize,
                     stream_stream_rpc_method_handler, stream_unary_rpc_method_handler,
                     unary_stream_rpc_method_handler, unary_unary_rpc_method_handler)
from .status import StatusCode, status_code
from .metadata import MetadataError, Metadatum
from .server import Server, server
from .context import ServicerContext
from .channel import Channel, insecure_channel
from .connectivity import channel_ready_future
from .health import HealthStatus

__all__ = [
    "server", "insecure_channel", "Server", "Channel", "ServicerContext",
    "StatusCode", "Compression", "RpcError", "Call", "Future", "FutureTimeoutError",
    "FutureCancelledError", "RpcMethodHandler", "GenericRpcHandler", "ServiceRpcHandler",
    "HandlerCallDetails", "unary_unary_rpc_method_handler", "unary_stream_rpc_method_handler",
    "stream_unary_rpc_method_handler", "stream_stream_rpc_method_handler",
    "method_handlers_generic_handler", "Metadatum", "MetadataError", "HAVE_GRPCIO",
    "ServerInterceptor", "Status", "status_code", "compression_value", "serialize",
    "ChannelConnectivity", "channel_ready_future", "HealthStatus",
]
