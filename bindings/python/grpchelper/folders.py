"""grpc-helper's Folders (grpc_helper.folders); implemented in grpchelper._helper.folders."""

from ._helper.folders import Folders

__all__ = ["Folders"]
