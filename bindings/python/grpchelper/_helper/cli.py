"""grpc-helper's RpcCliParser: the RPC options of a server's command line, with argparse.

Pure argparse, as grpc-helper's (without its argcomplete completers). The C library's
gh_cli_parse is for C hosts; Python programs parse here and hand the result to ConfigSet.
"""

import argparse
import os
import re
import sys
from pathlib import Path

from .folders import Folders

# Syntax of a -c option: NAME=VALUE, NAME a config item name (grpc-helper's pattern, matched
# from the start of the value as grpc-helper's).
CONFIG_ITEM_DEF_PATTERN = re.compile("([a-z][a-z0-9-]*)=(.*)")


def expanded_path(arg: str) -> Path:
    """A Path with "~" expanded."""
    return Path(os.path.expanduser(arg))


def config_item_def(arg: str):
    """"NAME=VALUE" → (name, value); argparse.ArgumentTypeError("Invalid syntax for config
    item definition: <arg>") otherwise."""
    m = CONFIG_ITEM_DEF_PATTERN.match(arg)
    if m is None:
        raise argparse.ArgumentTypeError(f"Invalid syntax for config item definition: {arg}")
    return m.group(1), m.group(2)


class ConfigDictAction(argparse.Action):
    """Stores repeated NAME=VALUE options in a dict (the last value of a name wins). A
    malformed value raises argparse.ArgumentTypeError("Invalid syntax for config item
    definition: <value>") out of parse(), as grpc-helper's. The dict is a new one on each
    parse: the default is never changed (grpc-helper's is shared by every parse)."""

    def __call__(self, parser, namespace, values, option_string=None):
        name, value = config_item_def(values)
        config = dict(getattr(namespace, self.dest, None) or {})
        config[name] = value
        setattr(namespace, self.dest, config)


class RpcCliParser:
    """CLI arguments parser for RPC servers (grpc-helper's RpcCliParser).

    Constructor arguments:
        description: description string displayed in help
        version: version string displayed by -V/--version (no such option when None)
    """

    def __init__(self, description: str, version: str = None):
        self.__parser = argparse.ArgumentParser(description=description)
        self.__rpc_args = False
        if version is not None:
            self.parser.add_argument("-V", "--version", action="version", version=version)

    @property
    def parser(self) -> argparse.ArgumentParser:
        """The argparse parser, for the host's own options."""
        return self.__parser

    def with_rpc_args(self, default_port: int = 54321, default_sys: str = None,
                      default_usr: str = "~/.config/grpc_helper",
                      default_wks: str = "./grpc_helper"):
        """Adds --system, --user, -w/--workspace (paths, "~" expanded), -p/--port and
        repeatable -c/--config NAME=VALUE; returns self."""
        if default_sys is None:
            default_sys = "C:\\grpc_helper" if os.name == "nt" else "/etc/grpc_helper"
        p = self.parser
        p.add_argument("--system", type=expanded_path, action="store",
                       default=expanded_path(default_sys),
                       help="Override system folder (default: %s)" % default_sys)
        p.add_argument("--user", type=expanded_path, action="store",
                       default=expanded_path(default_usr),
                       help="Override user folder (default: %s)" % default_usr)
        p.add_argument("-w", "--workspace", type=expanded_path, action="store",
                       default=expanded_path(default_wks),
                       help="Workspace folder (default: %s)" % default_wks)
        p.add_argument("-p", "--port", type=int, action="store", default=default_port,
                       help="RPC server port (default: %d)" % default_port)
        p.add_argument("-c", "--config", metavar="NAME=VALUE",
                       action=ConfigDictAction, default=None,
                       help="Override default configuration item value (repeatable)")
        self.__rpc_args = True
        return self

    def parse(self, args: list = None, input_args: list = None) -> argparse.Namespace:
        """Parses args (None: sys.argv[1:]; input_args is grpc-helper's name for it). With
        the RPC options, the namespace also has `config` (a dict name → value, a new one
        each time) and `folders` (a Folders from system, user and workspace). A usage
        error exits with status 2 (argparse's); a malformed -c value raises
        argparse.ArgumentTypeError, as grpc-helper's."""
        if args is None:
            args = input_args
        args = args if args is not None else sys.argv[1:]
        out = self.parser.parse_args(args)
        if self.__rpc_args:
            out.config = dict(out.config or {})
            out.folders = Folders(out.system, out.user, out.workspace)
        return out


__all__ = ["RpcCliParser"]
