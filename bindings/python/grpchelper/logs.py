"""grpc-helper's rolling logs (RpcLogs); implemented in grpchelper._helper.logs."""

from ._helper.logs import RpcLogs

__all__ = ["RpcLogs"]
