"""A grpc-helper 2.3.1 program: the command line (RpcCliParser with an option of its own),
Folders, config items with layered defaults (hard-coded < system config.json < user
config.json < environment < -c), static and user items, a custom validator,
RpcStaticConfig, the config service's persistence in the workspace across server
restarts, and a local shutdown.

Written against the ORIGINAL's API. test_migration.py runs it as is on grpc-helper, then on
grpchelper with its import lines rewritten, and compares the transcripts (stdout).

    python3 helper_config.py -p PORT -w WORKSPACE --system SYS --user USR

Exit status 3 when the port is busy. The transcript names no port or path.
"""
import json
import os
import re
import sys

from grpc_helper import Folders, RpcCliParser, RpcClient, RpcException, RpcServer
from grpc_helper.config.cfg_item import Config, ConfigHolder
from grpc_helper.static_config import RpcStaticConfig
from grpc_helper_api import ConfigApiVersion, ConfigItemUpdate, ConfigUpdate, ConfigValidator, Filter, ResultCode
from grpc_helper_api.config_pb2_grpc import ConfigServiceStub


def validate_color(name: str, value: str):
    if value not in ("red", "green", "blue"):
        raise RpcException(f"{name}: {value} is not a color", rc=ResultCode.ERROR_PARAM_INVALID)


class DemoStatic(ConfigHolder):
    WORKERS = Config(name="demo-workers", description="Worker threads", default_value="2",
                     validator=ConfigValidator.CONFIG_VALID_POS_INT)
    RATIO = Config(name="demo-ratio", description="A ratio", default_value="0.5",
                   validator=ConfigValidator.CONFIG_VALID_FLOAT)


class DemoUser(ConfigHolder):
    HARD = Config(name="cfg-hard", description="Hard-coded default only", default_value="hard")
    SYSTEM = Config(name="cfg-system", description="Default from the system folder", default_value="hard")
    USER = Config(name="cfg-user", description="Default from the user folder", default_value="hard")
    ENV = Config(name="cfg-env", description="Default from the environment", default_value="hard")
    CLI = Config(name="cfg-cli", description="Default from the command line", default_value="hard")
    COLOR = Config(name="cfg-color", description="A color", default_value="red",
                   validator=ConfigValidator.CONFIG_VALID_CUSTOM, custom_validator=validate_color)


NORMALISE = []


def say(*parts):
    text = " ".join(str(p) for p in parts)
    for pattern, replacement in NORMALISE:
        text = pattern.sub(replacement, text)
    print(text, flush=True)


def values(holder) -> str:
    return ", ".join(f"{c.name}={c.str_val}" for c in holder.all_config_items())


def items(status) -> str:
    return ", ".join(f"{i.name}={i.value} (default {i.default_value})" for i in status.items)


def start(args):
    try:
        return RpcServer(args.port, [], args.folders, args.config, static_items=[DemoStatic], user_items=[DemoUser])
    except RpcException as e:
        if e.rc == ResultCode.ERROR_PORT_BUSY:
            print(f"BUSY {e}", file=sys.stderr)
            sys.exit(3)
        raise


def workspace_file(args) -> str:
    f = args.folders.workspace / "config.json"
    return json.dumps(json.loads(f.read_text()), sort_keys=True) if f.is_file() else "(none)"


def main():
    # The command line: grpc-helper's options, plus one of this program's own, plus -c items
    cli = RpcCliParser("Config demo", "2.0.1")
    cli.parser.add_argument("--label", default="demo", help="A label")
    cli.with_rpc_args(default_port=54321, default_sys="/etc/demo", default_usr="~/.config/demo", default_wks="demo-wks")
    argv = sys.argv[1:] + ["--label", "migration", "-c", "cfg-cli=cli", "-c", "demo-workers=4",
                           "-c", "rpc-client-timeout=7"]
    args = cli.parse(argv)
    NORMALISE.extend([(re.compile(re.escape(str(args.workspace))), "WORKSPACE"),
                      (re.compile(re.escape(str(args.system))), "SYSTEM"),
                      (re.compile(re.escape(str(args.user))), "USER"),
                      (re.compile(rf"\b{args.port}\b"), "PORT")])
    say("label:", args.label, "| port is an int:", isinstance(args.port, int))
    say("config from -c:", sorted(args.config.items()))
    say("folders:", type(args.folders).__name__, args.folders.system, args.folders.user, args.folders.workspace)
    say("user and workspace folders exist:", args.folders.user.is_dir(), args.folders.workspace.is_dir(),
        "| system exists:", args.folders.system.is_dir())

    # The layers below -c: system and user config.json files, the environment
    args.folders.system.mkdir(parents=True, exist_ok=True)
    (args.folders.system / "config.json").write_text(json.dumps({"cfg-system": "system", "cfg-user": "system",
                                                                 "demo-ratio": "0.25"}))
    (args.folders.user / "config.json").write_text(json.dumps({"cfg-user": "user", "cfg-env": "user"}))
    os.environ["CFG_ENV"] = "env"
    say("holder items:", [c.name for c in DemoUser.all_config_items()])

    srv = start(args)
    say("static items:", values(DemoStatic), "| int:", DemoStatic.WORKERS.int_val,
        "| float:", DemoStatic.RATIO.float_val)
    say("user items:", values(DemoUser))
    say("RpcStaticConfig.CLIENT_TIMEOUT:", RpcStaticConfig.CLIENT_TIMEOUT.float_val,
        "| MAX_WORKERS:", RpcStaticConfig.MAX_WORKERS.int_val)

    client = RpcClient("127.0.0.1", args.port, {"config": (ConfigServiceStub, ConfigApiVersion.CONFIG_API_CURRENT)})
    say("config.get:", items(client.config.get(Filter(names=["cfg-hard", "cfg-env", "cfg-cli"]))))
    say("config.set:", items(client.config.set(ConfigUpdate(items=[ConfigItemUpdate(name="cfg-hard", value="changed"),
                                                                   ConfigItemUpdate(name="cfg-color", value="blue")]))))
    try:
        client.config.set(ConfigUpdate(items=[ConfigItemUpdate(name="cfg-color", value="pink")]))
    except RpcException as e:
        say("config.set cfg-color=pink:", ResultCode.Name(e.rc), "|", e)
    say("item objects follow:", DemoUser.HARD.str_val, DemoUser.COLOR.str_val)
    say("workspace config.json:", workspace_file(args))
    srv.shutdown()
    srv.wait_shutdown()
    say("first server running:", srv.is_running)

    # A second server on the same folders: the user values come back from the workspace
    srv = start(args)
    say("restarted, user items:", values(DemoUser))
    say("config.reset:", items(client.config.reset(Filter(names=["cfg-hard"]))))
    say("workspace config.json after reset:", workspace_file(args))
    srv.shutdown()

    # A third one: what the workspace gives back after the reset
    srv = start(args)
    say("restarted after reset, cfg-hard:", DemoUser.HARD.str_val, "| cfg-color:", DemoUser.COLOR.str_val)
    srv.shutdown()
    say("third server running:", srv.is_running)

    # Folders on their own
    f = Folders(workspace=args.folders.workspace / "sub" / "ws")
    say("Folders(workspace=...):", f.system, f.user, f.workspace.relative_to(args.folders.workspace),
        f.workspace.is_dir())
    say("done")


if __name__ == "__main__":
    main()
