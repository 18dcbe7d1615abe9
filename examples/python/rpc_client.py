#!/usr/bin/env python3
"""grpc-helper's RpcClient usage example, run on grpchelper: calls MyService.update on the
sample server (rpc_server.py, or its Swift and C twins) and prints the items ("a=1 b=2"), or
"error <code>: <message>" with exit status 1; --shutdown then asks the server to stop.

    PYTHONPATH=bindings/python:examples/python python3 examples/python/rpc_client.py -p 12345 --name a --value 1
"""
import argparse

from sample.my_pb2 import MyApiVersion, MyConfig, MyStatus
from sample.my_pb2_grpc import MyServiceStub

from grpchelper import RpcClient, RpcException
from grpchelper.api import ServerApiVersion, ShutdownRequest
from grpchelper.api.server_pb2_grpc import RpcServerServiceStub


def start():
    p = argparse.ArgumentParser(description="Sample RpcClient")
    p.add_argument("-p", "--port", type=int, default=12345)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--name", default="")
    p.add_argument("--value", default="")
    p.add_argument("--shutdown", action="store_true")
    args = p.parse_args()

    # Get a client access to my service
    c = RpcClient(args.host, args.port, {"my": (MyServiceStub, MyApiVersion.MY_API_CURRENT),
                                         "srv": (RpcServerServiceStub, ServerApiVersion.SERVER_API_CURRENT)},
                  name="myclient", timeout=10)

    # Use API
    s: MyStatus = c.my.update(MyConfig(name=args.name, value=args.value))
    print(" ".join(f"{i.name}={i.value}" for i in s.items))
    if args.shutdown:
        c.srv.shutdown(ShutdownRequest(timeout=-1))


if __name__ == "__main__":
    try:
        start()
    except RpcException as e:
        print(f"error {e.rc}: {e}")
        raise SystemExit(1)
