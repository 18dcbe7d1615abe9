"""Child process: an ORIGINAL grpc-helper RpcServer with the sample service.

Run by original.py with PYTHONPATH = <original's folder>:<generated sample code>, argv[1] a
JSON spec {"port", "workspace", "cli_config", "with_events"} and optionally:
  "proxied": true       the sample service is declared proxied (is_proxy=True, no real
                        manager: the generated servicer's base class, as grpc-helper's own
                        tests declare a proxy); its calls go to the backend registered
                        with srv.proxy_register
  "proxied_manager": {"services": [...], "version": "..."}
                        the sample manager is also a grpc_helper.manager.RpcProxiedManager
                        (_proxied_services / _proxied_version): on load it registers at
                        rpc-main-host:rpc-main-port (cli_config), at shutdown it forgets
(neither given: the plain sample service, as before), and
  "extra_user_items": {name: default}
                        more user items after the sample's ones: int items described
                        "An extra int item" (as _our_server.py's)
Prints one line:
  READY <port>          serving (after every manager's _load)
  BUSY <port> <msg>     RpcException ERROR_PORT_BUSY (exit status 3)
then, once shut down (srv.shutdown by RPC, "shutdown" or EOF on stdin, SIGTERM), STOPPED and
exits 0. Deliberately no `from __future__ import annotations`: grpc-helper reads the return
annotations of manager methods as classes.
"""
import json
import os
import signal
import sys
import threading
import types
from pathlib import Path

from grpc_helper import Folders, RpcException, RpcManager, RpcServer, RpcServiceDescriptor
from grpc_helper.config.cfg_item import Config
from grpc_helper.manager import RpcProxiedManager
from grpc_helper_api import ConfigValidator, ResultCode, ResultStatus
from sample_pb2 import SampleApiVersion, SampleRequest, SampleStatus
from sample_pb2_grpc import SampleServiceServicer, SampleServiceStub, add_SampleServiceServicer_to_server

import grpc_helper

# The module given to the descriptor: ServiceInfo.version is "__title__:__version__"
sample_module = types.ModuleType("interop_sample")
sample_module.__title__ = "interop-sample"
sample_module.__version__ = "1.2.3"

USER_ITEMS = [
    Config(name="sample-int", description="A sample int item", default_value="12",
           validator=ConfigValidator.CONFIG_VALID_INT),
    Config(name="sample-str", description="A sample string item", default_value="abc",
           can_be_empty=True),
]


def extra_user_items(defaults: dict) -> list:
    """The spec's "extra_user_items" {name: default}: more int user items, after USER_ITEMS."""
    return [Config(name=name, description="An extra int item", default_value=value,
                   validator=ConfigValidator.CONFIG_VALID_INT) for name, value in defaults.items()]


class SampleManager(SampleServiceServicer, RpcManager):
    def __init__(self):
        RpcManager.__init__(self)

    def echo(self, request: SampleRequest) -> SampleStatus:
        return SampleStatus(text=request.text.upper())

    def fail(self, request: SampleRequest) -> SampleStatus:
        raise RpcException(request.message, rc=request.code)

    def crash(self, request: SampleRequest) -> SampleStatus:
        raise ValueError(request.message)

    def count(self, request: SampleRequest) -> SampleStatus:
        for i in range(request.count):
            if request.fail_after and i == request.fail_after:
                raise RpcException(request.message, rc=request.code)
            yield SampleStatus(index=i, text=f"{request.text}{i}")

    def check(self, request: SampleRequest) -> ResultStatus:
        if not request.text:
            raise RpcException("Missing text", rc=ResultCode.ERROR_PARAM_MISSING)
        return ResultStatus()

    # "missing" is deliberately not implemented: the servicer's default answers UNIMPLEMENTED


def proxied_sample_manager(services: list, version: str) -> RpcProxiedManager:
    """A SampleManager that registers with the main server as the backend of `services`."""

    class ProxiedSampleManager(SampleManager, RpcProxiedManager):
        def __init__(self):
            SampleManager.__init__(self)
            RpcProxiedManager.__init__(self)

        def _proxied_services(self) -> list:
            return list(services)

        def _proxied_version(self) -> str:
            return version

    return ProxiedSampleManager()


def main():
    spec = json.loads(sys.argv[1])
    # The original, from the folder first on PYTHONPATH, and nothing of ours
    assert "grpchelper" not in sys.modules
    original_dir = Path(os.environ["PYTHONPATH"].split(os.pathsep)[0]).resolve()
    assert Path(grpc_helper.__file__).resolve().parent.parent == original_dir, grpc_helper.__file__
    port = spec["port"]
    cli_config = {"rpc-shutdown-grace": "2", "rpc-shutdown-timeout": "1", "rpc-client-timeout": "5"}
    cli_config.update(spec.get("cli_config") or {})
    if spec.get("proxied"):
        descriptor = RpcServiceDescriptor(sample_module, "sample", SampleApiVersion, SampleServiceServicer(),
                                          add_SampleServiceServicer_to_server, SampleServiceStub, True)
    else:
        proxied = spec.get("proxied_manager")
        manager = (proxied_sample_manager(proxied["services"], proxied["version"]) if proxied
                   else SampleManager())
        descriptor = RpcServiceDescriptor(sample_module, "sample", SampleApiVersion, manager,
                                          add_SampleServiceServicer_to_server, SampleServiceStub)
    try:
        srv = RpcServer(port, [descriptor], Folders(workspace=Path(spec["workspace"])), cli_config,
                        user_items=USER_ITEMS + extra_user_items(spec.get("extra_user_items") or {}),
                        with_events=spec.get("with_events", False))
    except RpcException as e:
        if e.rc == ResultCode.ERROR_PORT_BUSY:
            print(f"BUSY {port} {e}", flush=True)
            sys.exit(3)
        raise

    def stop_on_stdin():
        # "shutdown" or EOF (the parent closed stdin, or died): graceful shutdown
        for line in sys.stdin:
            if line.strip() == "shutdown":
                break
        srv.shutdown()

    def on_sigterm(signum, frame):
        threading.Thread(target=srv.shutdown, name="SigtermShutdown").start()

    signal.signal(signal.SIGTERM, on_sigterm)
    threading.Thread(target=stop_on_stdin, name="StdinWatch", daemon=True).start()
    print(f"READY {port}", flush=True)
    srv.wait_shutdown()
    print("STOPPED", flush=True)


if __name__ == "__main__":
    main()
