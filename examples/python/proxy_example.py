#!/usr/bin/env python3
"""grpc-helper's proxied services, run on grpchelper: a main server that proxies the sample
service MyService (examples/python/sample) and a backend whose manager is an
RpcProxiedManager: it registers with the main server (rpc-main-host / rpc-main-port) when
it loads and forgets itself when it stops. Clients only know the main server
(examples/python/rpc_client.py works against either). Checked by
examples/run_proxy_example.sh.

    PYTHONPATH=bindings/python:examples/python python3 examples/python/proxy_example.py main -p 54321
    PYTHONPATH=bindings/python:examples/python python3 examples/python/proxy_example.py backend -p 0 \\
        -c rpc-main-host=127.0.0.1 -c rpc-main-port=54321
"""
import sys

import sample
from sample.my_pb2 import MyApiVersion, MyConfig, MyStatus
from sample.my_pb2_grpc import MyServiceServicer, MyServiceStub, add_MyServiceServicer_to_server

from grpchelper import (Config, RpcCliParser, RpcException, RpcProxiedManager, RpcServer,
                        RpcServiceDescriptor)
from grpchelper.api import Empty, ResultCode


# A config item of the backend (persisted in its workspace), read at each call: the main
# server's config service merges it with its own items, so it can be set there too.
PREFIX = Config(name="my-prefix", description="Prefix of the names list answers", default_value="",
                can_be_empty=True)


class MyBackendManager(MyServiceServicer, RpcProxiedManager):
    # The sample service, served by a backend that registers with the main server

    def __init__(self):
        MyServiceServicer.__init__(self)
        RpcProxiedManager.__init__(self)
        self.items = {}

    def _proxied_services(self):
        return ["my"]

    def _proxied_version(self):
        return "proxy-sample:1.0.0"

    def update(self, request: MyConfig) -> MyStatus:
        if not request.name:
            raise RpcException("empty name", rc=ResultCode.ERROR_PARAM_MISSING)
        with self.lock:
            self.items[request.name] = request.value
        self.logger.info(f"{request.name} = {request.value}")
        return self.list(Empty())

    def list(self, request: Empty) -> MyStatus:
        with self.lock:
            prefix = PREFIX.str_val
            self.logger.debug(f"list: {len(self.items)} items, prefix {prefix!r}")
            return MyStatus(items=[MyConfig(name=prefix + n, value=v) for n, v in sorted(self.items.items())])


def serve(role, argv):
    args = RpcCliParser(f"Proxy sample ({role})", "1.0.0").with_rpc_args(
        54321 if role == "main" else 54322, None, "~/.config/proxy-sample", f"proxy-sample-{role}").parse(argv)
    if role == "main":
        # The main server only declares the service: calls are forwarded to its backend
        descriptor = RpcServiceDescriptor(sample, "my", MyApiVersion, MyServiceServicer(),
                                          add_MyServiceServicer_to_server, MyServiceStub, is_proxy=True)
    else:
        descriptor = RpcServiceDescriptor(sample, "my", MyApiVersion, MyBackendManager(),
                                          add_MyServiceServicer_to_server, MyServiceStub)
    srv = RpcServer(args.port, [descriptor], args.folders, args.config,
                    user_items=[PREFIX] if role == "backend" else None)
    srv.handle_exit_signals()
    print(f"serving on port {srv.port}", flush=True)
    srv.wait_shutdown()


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("main", "backend"):
        raise SystemExit(f"usage: {sys.argv[0]} main|backend [RPC options]")
    try:
        serve(sys.argv[1], sys.argv[2:])
    except RpcException as e:
        print(f"error {e.rc}: {e}")
        raise SystemExit(1)
