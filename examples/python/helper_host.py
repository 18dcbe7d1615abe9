#!/usr/bin/env python3
"""A helper-layer host program in Python, written against grpc-helper's API: its own
config holder, RpcCliParser for the command line (plus an option of its own), a config
set with layered defaults and persisted user values, and a named logging.Logger writing
to the rolling logs.

    python3 helper_host.py -w /tmp/wks -c host-greeting=hi --times 2
    cat /tmp/wks/logs/helper-host/helper-host.log
"""
import argparse
import logging
import sys

from grpchelper import Config, ConfigHolder, ConfigSet, RpcCliParser, RpcException, RpcLogs, RpcStaticConfig
from grpchelper.api import ConfigItemUpdate, ConfigUpdate


class HostConfig(ConfigHolder):
    """This program's own configuration items."""
    GREETING = Config(name="host-greeting", description="Word to greet with", default_value="hello")
    TARGET = Config(name="host-target", description="Who is greeted", default_value="world")


def main(argv=None):
    # Levels are Python's: the root logger is at WARNING unless the program says otherwise
    # (a loggers.json in the system, user or workspace folder can change them too).
    logging.getLogger().setLevel(logging.INFO)
    cli = RpcCliParser("Sample helper-layer host", "1.0.0").with_rpc_args(
        12345, "/etc/helper-host", "~/.config/helper-host", "./helper-host-wks")
    cli.parser.add_argument("--times", type=int, default=1, help="How many greetings to log")
    cli.parser.add_argument("--set-target", help="Persist a new target (a user item) before greeting")
    try:
        args = cli.parse(argv)
    except argparse.ArgumentTypeError as e:
        # A malformed -c value (grpc-helper raises it out of parse()): a usage error.
        cli.parser.error(str(e))
    try:
        with ConfigSet([RpcStaticConfig], [HostConfig], args.folders, args.config) as config:
            if args.set_target is not None:
                config.set(ConfigUpdate(items=[ConfigItemUpdate(name="host-target", value=args.set_target)]))
            with RpcLogs.from_config(config) as logs:
                log = logs.logger("helper-host")
                for w in config.warnings:
                    log.warning(w)
                for i in range(1, max(args.times, 1) + 1):
                    log.info("%s %s (%d) port=%d", HostConfig.GREETING.str_val, HostConfig.TARGET.str_val, i, args.port)
                print(logs.folder / "helper-host" / "helper-host.log")
    except RpcException as e:
        print("error %d: %s" % (e.rc, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
