"""A grpc-helper 2.3.1 program: an RpcClient that is up before its server. Its first call is
refused (the port is held by a plain socket that accepts the connection and resets it);
RpcClient retries UNAVAILABLE until its timeout, and gets the answer once the RpcServer has
started on that port. Then a client whose timeout runs out, a call deadline, and a
shutdown through the auto-client.

Written against the ORIGINAL's API. test_migration.py runs it as is on grpc-helper, then on
grpchelper with its import lines rewritten, and compares the transcripts (stdout).

    python3 helper_retry.py -p PORT -w WORKSPACE --system SYS --user USR

Exit status 3 when the port is busy. The transcript names no port, path or time.
"""
import socket
import struct
import sys
import threading
import types

import grpc_helper
from grpc_helper.server import RpcServer, RpcServiceDescriptor
from grpc_helper_api import Filter, ResultCode, ServerApiVersion, ShutdownRequest
from grpc_helper_api.server_pb2_grpc import RpcServerServiceStub
from inventory_pb2 import InventoryApiVersion, Item, ItemRequest, ItemStatus, ListRequest
from inventory_pb2_grpc import InventoryServiceServicer, InventoryServiceStub, add_InventoryServiceServicer_to_server

inventory_module = types.ModuleType("inventory")
inventory_module.__title__ = "inventory"
inventory_module.__version__ = "0.9.0"


class SlowInventory(InventoryServiceServicer, grpc_helper.RpcManager):
    """list() streams until the server shuts down (or its caller goes away)."""

    def __init__(self):
        grpc_helper.RpcManager.__init__(self)
        self.stopping = threading.Event()

    def _shutdown(self):
        self.stopping.set()

    def get(self, request: ItemRequest) -> ItemStatus:
        return ItemStatus(item=Item(name=request.name, count=len(request.name)))

    def list(self, request: ListRequest) -> ItemStatus:
        yield ItemStatus(item=Item(name="first"))
        self.stopping.wait(30)


def rpc_error(e: grpc_helper.RpcException) -> str:
    # grpc's status name, found in the message (both libraries name it)
    for status in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"):
        if status in str(e):
            return f"{ResultCode.Name(e.rc)} ({status})"
    return f"{ResultCode.Name(e.rc)} (?)"


def main():
    args = grpc_helper.RpcCliParser("Retry demo").with_rpc_args().parse()
    stubs = {"srv": (RpcServerServiceStub, ServerApiVersion.SERVER_API_CURRENT),
             "inventory": (InventoryServiceStub, InventoryApiVersion.INVENTORY_API_CURRENT)}

    # Hold the port: a listening socket that resets the first connection it gets
    gate = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    gate.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        gate.bind(("127.0.0.1", args.port))
    except OSError as e:
        print(f"BUSY {e}", file=sys.stderr)
        sys.exit(3)
    gate.listen(8)
    gate.settimeout(60)

    # The early client: timeout 60 s, so it retries while the port refuses it
    early = grpc_helper.RpcClient("127.0.0.1", args.port, stubs, name="early", timeout=60)
    answer = {}

    def call():
        try:
            answer["info"] = early.srv.info(Filter())
        except grpc_helper.RpcException as e:
            answer["error"] = e

    caller = threading.Thread(target=call, name="EarlyCall")
    caller.start()
    conn, _ = gate.accept()                 # the client's first try...
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()                            # ...reset (UNAVAILABLE: the client retries)
    gate.close()
    print("first try refused", flush=True)

    manager = SlowInventory()
    try:
        srv = RpcServer(args.port, [RpcServiceDescriptor(inventory_module, "inventory", InventoryApiVersion, manager,
                                                         add_InventoryServiceServicer_to_server, InventoryServiceStub)],
                        args.folders, args.config)
    except grpc_helper.RpcException as e:
        if e.rc == ResultCode.ERROR_PORT_BUSY:
            print(f"BUSY {e}", file=sys.stderr)
            sys.exit(3)
        raise
    caller.join(60)
    if "error" in answer:
        print("early client failed:", rpc_error(answer["error"]), flush=True)
    else:
        print("early client got:", [(s.name, s.version) for s in answer["info"].items], flush=True)

    # The same client, later calls: at once
    print("get:", early.inventory.get(ItemRequest(name="pear")).item.count, flush=True)

    # A call deadline (the method's timeout argument) on a stream that does not end by itself
    try:
        for status in early.inventory.list(ListRequest(), timeout=0.5):
            print("streamed:", status.item.name, flush=True)
    except grpc_helper.RpcException as e:
        print("stream with deadline:", rpc_error(e), flush=True)

    # A client whose timeout runs out: nothing listens on its port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    lost = grpc_helper.RpcClient("127.0.0.1", closed_port, stubs, name="lost", timeout=1)
    try:
        lost.srv.info(Filter())
        print("lost client: answered?!", flush=True)
    except grpc_helper.RpcException as e:
        print("lost client:", rpc_error(e), flush=True)

    # Shutdown through the server's own auto-client (srv.client), then wait for it
    print("shutdown:", srv.client.srv.shutdown(ShutdownRequest(timeout=-1)).r.code == ResultCode.OK, flush=True)
    srv.wait_shutdown()
    print("running after shutdown:", srv.is_running, "| manager told:", manager.stopping.is_set(), flush=True)


if __name__ == "__main__":
    main()
