"""grpc-helper's RpcException (grpc_helper.errors); implemented in grpchelper._helper.errors."""

from ._helper.errors import RpcException

__all__ = ["RpcException"]
