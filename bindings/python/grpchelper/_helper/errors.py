"""grpc-helper's RpcException: an error with a ResultCode (grpchelper.api.ResultCode).

Every helper-layer function of the library that fails with GH_ERR_RESULT raises it, with
the library's message and gh_last_result_code() (see grpchelper._native.ffi._check). Needs protobuf (and
grpcio, as grpchelper.api does).
"""

from ..api import ResultCode


class RpcException(Exception):
    """Common error class, holding an error code (typically to be returned in RPC response
    messages): `.rc` is a ResultCode value, str(e) the message."""

    def __init__(self, message: str, rc: int = ResultCode.ERROR):
        super().__init__(message)
        self.rc = rc


__all__ = ["RpcException"]

# Public as grpchelper.errors.RpcException: tracebacks and pickles name that path.
RpcException.__module__ = "grpchelper.errors"
