"""grpc-helper's RpcServer and RpcServiceDescriptor (grpc_helper.server); implemented in
grpchelper._helper.rpc_server and grpchelper._helper.rpc_service.

`_Method` (the dispatcher of one manager method) is here too, for test instrumentation
that wraps it (Tests/interop_helper)."""

from ._helper.rpc_server import RpcServer, python_stacks
from ._helper.rpc_service import (RpcServiceDescriptor, _Method, api_versions,  # noqa: F401
                                  discover_service, manager_method, module_version)

__all__ = ["RpcServer", "RpcServiceDescriptor", "api_versions", "module_version",
           "discover_service", "manager_method", "python_stacks"]
