#!/usr/bin/env python3
"""grpc-helper's RpcServer usage example, run on grpchelper: the sample service MyService
(examples/python/sample, from Protos/sample/my.proto) served by a manager that uses its
auto-client when it loads; serves until srv.shutdown or Ctrl-C.

    PYTHONPATH=bindings/python:examples/python python3 examples/python/rpc_server.py -p 12345 -w /tmp/wks
"""
import sample
from sample.my_pb2 import MyApiVersion, MyConfig, MyStatus
from sample.my_pb2_grpc import MyServiceServicer, MyServiceStub, add_MyServiceServicer_to_server

from grpchelper import RpcCliParser, RpcException, RpcManager, RpcServer, RpcServiceDescriptor
from grpchelper.api import Empty, Filter, ResultCode


class MySampleManager(MyServiceServicer, RpcManager):
    # Custom implementation for sample service

    def __init__(self):
        MyServiceServicer.__init__(self)
        RpcManager.__init__(self)
        self.items = {}

    def _load(self):
        # The auto-client reaches every service of this server
        served = [s.name for s in self.client.srv.info(Filter()).items]
        self.logger.info(f"serving {served}")

    def update(self, request: MyConfig) -> MyStatus:
        # Note that return message *MUST* be explicitely annoted for each implemented method!
        if not request.name:
            raise RpcException("empty name", rc=ResultCode.ERROR_PARAM_MISSING)
        with self.lock:
            self.items[request.name] = request.value
        self.logger.info(f"{request.name} = {request.value}")
        return self.list(Empty())

    def list(self, request: Empty) -> MyStatus:
        with self.lock:
            return MyStatus(items=[MyConfig(name=n, value=v) for n, v in sorted(self.items.items())])


def start():
    # Parse arguments to create RPC server instance
    args = RpcCliParser("Sample RpcServer", "1.0.0").with_rpc_args(12345, "/etc/rpc-sample", "~/.config/rpc-sample",
                                                                  "rpc-sample-wks").parse()
    srv = RpcServer(args.port, [RpcServiceDescriptor(sample, "my", MyApiVersion, MySampleManager(),
                                                     add_MyServiceServicer_to_server, MyServiceStub)],
                    args.folders, args.config)
    srv.handle_exit_signals()
    print(f"serving on port {srv.port}", flush=True)

    # Server is running in its own thread; we need to wait it for shutdown (on Ctrl-C or remote shutdown call)
    srv.wait_shutdown()


if __name__ == "__main__":
    try:
        start()
    except RpcException as e:
        print(f"error {e.rc}: {e}")
        raise SystemExit(1)
