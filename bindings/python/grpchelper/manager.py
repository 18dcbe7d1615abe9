"""grpc-helper's RpcManager (grpc_helper.manager); implemented in grpchelper._helper.manager."""

from ._helper.manager import RpcManager, RpcProxiedManager, ensure_manager_attributes

__all__ = ["RpcManager", "RpcProxiedManager", "ensure_manager_attributes"]
