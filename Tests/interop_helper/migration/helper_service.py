"""A grpc-helper 2.3.1 program: a managed RpcServer serving a user service (inventory.proto:
unary and server-streaming methods) through a user manager, called with RpcClient, and the
built-in srv, config and log services; then a shutdown by RPC.

Written against the ORIGINAL's API. test_migration.py runs it as is on grpc-helper, then on
grpchelper with its import lines rewritten, and compares the transcripts (stdout).

    python3 helper_service.py -p PORT -w WORKSPACE --system SYS --user USR

Exit status 3 when the port is busy (the caller picks another one). The transcript names
no port, host, user, address, path or time.
"""
import os
import pwd
import re
import socket
import sys
import types

from google.protobuf import text_format

from grpc_helper import RpcCliParser, RpcClient, RpcException, RpcManager, RpcServer, RpcServiceDescriptor
from grpc_helper.config import Config, ConfigHolder
from grpc_helper_api import (ERROR_CUSTOM, ConfigApiVersion, ConfigItemUpdate, ConfigUpdate, ConfigValidator, Empty,
                             Filter, LoggerApiVersion, LoggerConfig, LoggerLevel, LoggerUpdate, ResultCode,
                             ResultStatus, ServerApiVersion, ShutdownRequest)
from grpc_helper_api.config_pb2_grpc import ConfigServiceStub
from grpc_helper_api.logger_pb2_grpc import LoggerServiceStub
from grpc_helper_api.server_pb2_grpc import RpcServerServiceStub
from inventory_pb2 import INVENTORY_API_CURRENT, InventoryApiVersion, Item, ItemRequest, ItemStatus, ListRequest
from inventory_pb2_grpc import InventoryServiceServicer, InventoryServiceStub, add_InventoryServiceServicer_to_server

# The module given to the descriptor: srv.info reports "__title__:__version__"
inventory_module = types.ModuleType("inventory")
inventory_module.__title__ = "inventory"
inventory_module.__version__ = "1.4.2"


class InventoryConfig(ConfigHolder):
    MAX = Config(name="inventory-max", description="Largest count of one item", default_value="100",
                 validator=ConfigValidator.CONFIG_VALID_POS_INT)
    OWNER = Config(name="inventory-owner", description="Who runs the inventory", default_value="nobody",
                   can_be_empty=True)


class InventoryError(Exception):
    """A custom exception for RpcClient(custom_exception=...)."""

    def __init__(self, message, rc=ResultCode.ERROR):
        super().__init__(message)
        self.rc = rc


class InventoryManager(InventoryServiceServicer, RpcManager):
    def __init__(self):
        RpcManager.__init__(self)
        self.items = {}
        self.hooks = []

    def _load(self):
        # Every service is served: the auto-client reaches them all
        names = [s.name for s in self.client.srv.info(Filter()).items]
        self.hooks.append(f"_load: auto-client sees {names}, port set {self.port is not None}, "
                          f"folders set {self.folders is not None}")

    def _shutdown(self):
        self.hooks.append("_shutdown")

    def add(self, request: ItemRequest) -> ItemStatus:
        if not request.name:
            raise RpcException("Missing item name", rc=ResultCode.ERROR_PARAM_MISSING)
        with self.lock:
            count = self.items.get(request.name, 0) + request.count
            if count > InventoryConfig.MAX.int_val:
                raise RpcException(f"Too many {request.name}: {count} > {InventoryConfig.MAX.int_val}",
                                   rc=ResultCode.ERROR_PARAM_INVALID)
            self.items[request.name] = count
            self.logger.info(f"added {request.count} {request.name}")
            return ItemStatus(item=Item(name=request.name, count=count))

    def get(self, request: ItemRequest) -> ItemStatus:
        with self.lock:
            if request.name not in self.items:
                raise RpcException(f"Unknown item: {request.name}", rc=ResultCode.ERROR_ITEM_UNKNOWN)
            return ItemStatus(item=Item(name=request.name, count=self.items[request.name]))

    def remove(self, request: ItemRequest) -> ResultStatus:
        with self.lock:
            if self.items.pop(request.name, None) is None:
                raise RpcException(f"Unknown item: {request.name}", rc=ResultCode.ERROR_ITEM_UNKNOWN)
        return ResultStatus()

    def list(self, request: ListRequest) -> ItemStatus:
        with self.lock:
            names = sorted(n for n in self.items if n.startswith(request.prefix))
        for i, name in enumerate(names):
            if request.fail_after and i == request.fail_after:
                raise RpcException(f"Listing interrupted after {i} items", rc=ResultCode.ERROR_STATE_UNEXPECTED)
            yield ItemStatus(item=Item(name=name, count=self.items[name]))

    def crash(self, request: Empty) -> ResultStatus:
        raise ValueError("inventory database is gone")

    def reserve(self, request: ItemRequest) -> ItemStatus:
        # A service-specific error code (>= ERROR_CUSTOM): returned to the client, not raised
        raise RpcException(f"Cannot reserve {request.name}", rc=ERROR_CUSTOM + 7)

    # audit is not implemented: the generated servicer's default answers UNIMPLEMENTED


# ---------------------------------------------------------------------------------------------
# Transcript

NORMALISE = []   # (regex, replacement), filled in main()


def norm(value) -> str:
    """One line, without this run's port, host, user, addresses, paths or times."""
    text = str(value)
    for pattern, replacement in NORMALISE:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def say(*parts):
    print(norm(" ".join(str(p) for p in parts)), flush=True)


def msg(message) -> str:
    return text_format.MessageToString(message, as_one_line=True) or "(empty)"


def code_name(rc) -> str:
    try:
        return ResultCode.Name(rc)
    except ValueError:
        return str(rc)


def attempt(label, fn, *args, **kwargs):
    """Calls fn and prints its result, or the exception it raised."""
    try:
        result = fn(*args, **kwargs)
    except RpcException as e:
        say(f"{label}: RpcException {code_name(e.rc)}: {e}")
        return None
    except InventoryError as e:
        say(f"{label}: InventoryError {code_name(e.rc)}: {e}")
        return None
    say(f"{label}: {msg(result)}")
    return result


def attempt_stream(label, fn, *args):
    out = []
    try:
        for status in fn(*args):
            out.append(msg(status))
    except RpcException as e:
        say(f"{label}: {out} then RpcException {code_name(e.rc)}: {e}")
        return
    say(f"{label}: {out}")


def main():
    args = RpcCliParser("Inventory server", "1.4.2").with_rpc_args(54321, "/etc/inventory", "~/.config/inventory",
                                                                   "inventory-wks").parse()
    NORMALISE.extend([
        (re.compile(r"created_time:\"[^\"]*\""), "created_time:TIME"),
        (re.compile(re.escape(str(args.workspace))), "WORKSPACE"),
        (re.compile(r"(?<![\d.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.])"), "IP"),
        (re.compile(rf"\b{args.port}\b"), "PORT"),
        (re.compile(rf"\]{re.escape(pwd.getpwuid(os.getuid()).pw_name)}@{re.escape(socket.gethostname())}\("),
         "]USER@HOST("),
    ])

    manager = InventoryManager()
    descriptor = RpcServiceDescriptor(inventory_module, "inventory", InventoryApiVersion, manager,
                                      add_InventoryServiceServicer_to_server, InventoryServiceStub)
    try:
        srv = RpcServer(args.port, [descriptor], args.folders, args.config, user_items=[InventoryConfig])
    except RpcException as e:
        if e.rc == ResultCode.ERROR_PORT_BUSY:
            print(f"BUSY {e}", file=sys.stderr)
            sys.exit(3)
        raise
    say("server running:", srv.is_running)
    for hook in manager.hooks:
        say("manager", hook)

    stubs = {
        "srv": (RpcServerServiceStub, ServerApiVersion.SERVER_API_CURRENT),
        "config": (ConfigServiceStub, ConfigApiVersion.CONFIG_API_CURRENT),
        "log": (LoggerServiceStub, LoggerApiVersion.LOGGER_API_CURRENT),
        "inventory": (InventoryServiceStub, InventoryApiVersion.INVENTORY_API_CURRENT),
    }
    client = RpcClient("127.0.0.1", args.port, stubs, name="inventory-cli", timeout=10)

    # --- srv: the services served, their versions
    info = client.srv.info(Filter())
    for item in info.items:
        say(f"srv.info: {msg(item)}")
    attempt("srv.info inventory", client.srv.info, Filter(names=["inventory"]))
    attempt("srv.info unknown", client.srv.info, Filter(names=["inventory", "nope"]))
    attempt("server's own info()", srv.info, Filter(names=["srv"]))

    # --- the user service: unary calls, errors, a stream
    attempt("add apple", client.inventory.add, ItemRequest(name="apple", count=3))
    attempt("add apple again", client.inventory.add, ItemRequest(name="apple", count=2))
    attempt("add banana", client.inventory.add, ItemRequest(name="banana", count=7))
    attempt("add avocado", client.inventory.add, ItemRequest(name="avocado", count=1))
    attempt("add no name", client.inventory.add, ItemRequest(count=1))
    attempt("get apple", client.inventory.get, ItemRequest(name="apple"))
    attempt("get cherry", client.inventory.get, ItemRequest(name="cherry"))
    attempt_stream("list", client.inventory.list, ListRequest())
    attempt_stream("list a*", client.inventory.list, ListRequest(prefix="a"))
    attempt_stream("list, failing after 2", client.inventory.list, ListRequest(fail_after=2))
    attempt("remove banana", client.inventory.remove, ItemRequest(name="banana"))
    attempt("remove banana again", client.inventory.remove, ItemRequest(name="banana"))
    attempt("crash", client.inventory.crash, Empty())
    status = client.inventory.reserve(ItemRequest(name="apple"))
    say("reserve (custom code, returned):", status.r.code, status.r.msg, "| has stack:", len(status.r.stack) > 0,
        "| custom:", status.r.code > ResultCode.ERROR_CUSTOM)
    attempt("audit (not implemented)", client.inventory.audit, Empty())

    # --- a client that returns errors instead of raising them, one with its own exception
    quiet = RpcClient("127.0.0.1", args.port, stubs, name="quiet-cli", exception=False)
    status = quiet.inventory.get(ItemRequest(name="cherry"))
    say("exception=False get cherry:", code_name(status.r.code), status.r.msg, "| has stack:", len(status.r.stack) > 0)
    custom = RpcClient("127.0.0.1", args.port, stubs, name="custom-cli", custom_exception=InventoryError)
    attempt("custom_exception get cherry", custom.inventory.get, ItemRequest(name="cherry"))

    # --- API versions: a client older than supported (1 < 2), one newer than current (4 > 3)
    old = RpcClient("127.0.0.1", args.port, {"inventory": (InventoryServiceStub, 1)}, name="old-cli")
    attempt("client api 1", old.inventory.get, ItemRequest(name="apple"))
    new = RpcClient("127.0.0.1", args.port, {"inventory": (InventoryServiceStub, INVENTORY_API_CURRENT + 1)})
    attempt("client api 4", new.inventory.get, ItemRequest(name="apple"))

    # --- config: the user items (layered defaults, set, reset), as a manager sees them
    attempt("config.get", client.config.get, Filter())
    attempt("config.set inventory-max=8", client.config.set,
            ConfigUpdate(items=[ConfigItemUpdate(name="inventory-max", value="8")]))
    say("manager reads inventory-max:", InventoryConfig.MAX.int_val)
    attempt("add apple over the limit", client.inventory.add, ItemRequest(name="apple", count=4))
    attempt("config.set inventory-max=abc", client.config.set,
            ConfigUpdate(items=[ConfigItemUpdate(name="inventory-max", value="abc")]))
    attempt("config.set inventory-max empty", client.config.set,
            ConfigUpdate(items=[ConfigItemUpdate(name="inventory-max", value="")]))
    attempt("config.set inventory-owner empty", client.config.set,
            ConfigUpdate(items=[ConfigItemUpdate(name="inventory-owner", value="")]))
    attempt("config.set nothing", client.config.set, ConfigUpdate())
    attempt("config.get static item", client.config.get, Filter(names=["rpc-max-workers"]))
    attempt("config.get unknown ignored", client.config.get,
            Filter(names=["inventory-max", "nope"], ignore_unknown=True))
    attempt("config.reset inventory-max", client.config.reset, Filter(names=["inventory-max"]))
    say("manager reads inventory-max:", InventoryConfig.MAX.int_val)
    attempt("config.reset nothing", client.config.reset, Filter())

    # --- log: a manager's logger (levels: [log] lines)
    attempt("[log] log.get InventoryManager", client.log.get, Filter(names=["InventoryManager"]))
    attempt("[log] log.set InventoryManager DEBUG", client.log.set,
            LoggerUpdate(items=[LoggerConfig(name="InventoryManager", enabled=True, level=LoggerLevel.LVL_DEBUG)]))
    attempt("[log] log.get InventoryManager", client.log.get, Filter(names=["InventoryManager"]))
    attempt("[log] log.reset InventoryManager", client.log.reset, Filter(names=["InventoryManager"]))
    attempt("[log] log.get root", client.log.get, Filter(names=[""]))
    attempt("log.get nothing", client.log.get, Filter())

    # --- shutdown by RPC; the managers' _shutdown runs, wait_shutdown returns
    attempt("srv.shutdown", client.srv.shutdown, ShutdownRequest(timeout=-1))
    srv.wait_shutdown()
    say("server running:", srv.is_running)
    for hook in manager.hooks[1:]:
        say("manager", hook)
    attempt("srv.info after shutdown (no retry)", RpcClient("127.0.0.1", args.port, stubs, timeout=None).srv.info,
            Filter())
    say("done")


if __name__ == "__main__":
    main()
