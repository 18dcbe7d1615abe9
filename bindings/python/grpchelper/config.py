"""grpc-helper's configuration API (grpc_helper.config: Config, ConfigHolder; and its
RpcStaticConfig and ConfigManager, here ConfigSet); implemented in grpchelper._helper.config
and grpchelper._helper.config_set."""

from ._helper.config import Config, ConfigHolder, RpcStaticConfig, static_config_items
from ._helper.config_set import ConfigSet

__all__ = ["Config", "ConfigHolder", "RpcStaticConfig", "ConfigSet", "static_config_items"]
