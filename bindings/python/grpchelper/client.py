"""grpc-helper's RpcClient (grpc_helper.client); implemented in grpchelper._helper.client."""

from ._helper.client import RpcClient, RpcStub, StubMethod, describe_stub, trace_buffer

__all__ = ["RpcClient", "RpcStub", "describe_stub", "StubMethod", "trace_buffer"]
