"""grpc-helper's RpcCliParser (grpc_helper.cli); implemented in grpchelper._helper.cli."""

from ._helper.cli import (CONFIG_ITEM_DEF_PATTERN, ConfigDictAction, RpcCliParser,
                          config_item_def, expanded_path)

__all__ = ["RpcCliParser", "CONFIG_ITEM_DEF_PATTERN", "ConfigDictAction", "config_item_def",
           "expanded_path"]
