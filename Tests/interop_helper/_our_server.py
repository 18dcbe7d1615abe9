"""Child process: OUR grpchelper RpcServer (the Python binding) with the sample service.

Run by test_cross.py with PYTHONPATH = bindings/python:<sample code generated for flavor
"grpchelper">, and the library found by the binding's lookup (GRPCHELPER_LIBRARY first when
the environment has it). argv[1] is a JSON spec {"workspace", "cli_config", "with_events"}
and optionally "proxied": true (the sample service is declared proxied, is_proxy=True with
no manager: its calls go to the backend registered with srv.proxy_register), or
"proxied_manager": {"services": [...], "version": "..."} (the sample manager is also our
RpcProxiedManager: it registers at rpc-main-host:rpc-main-port on load, forgets at
shutdown), and "extra_user_items": {name: default} (more int user items after the sample's,
described "An extra int item", as _original_server.py's). Prints:
  LIBRARY <version>     the loaded libgrpchelper's version
  READY <port>          serving (port 0 asked: the port the server bound)
then, once shut down (srv.shutdown by RPC, "shutdown" or EOF on stdin, SIGTERM), STOPPED and
exits 0.

The SampleManager is the original server's one (_original_server.py), plus one probe:
echo of the text "?metadata" answers, instead of "?METADATA", the request metadata this
call's handler was given, as JSON [[key, value], ...] (read with the binding's FFI through
the native call being served: the metadata that reached our server, as grpcio's
context.invocation_metadata() would show it). Deliberately no `from __future__ import
annotations`, as the original's (a manager method's return annotation).
"""
import ctypes
import json
import os
import signal
import sys
import threading
import types
from pathlib import Path

from grpchelper import (Config, Folders, RpcException, RpcManager, RpcProxiedManager, RpcServer,
                        RpcServiceDescriptor)
from grpchelper import _ffi, rpc_server
from grpchelper.api import ConfigValidator, ResultCode, ResultStatus
from sample_pb2 import SampleApiVersion, SampleRequest, SampleStatus
from sample_pb2_grpc import SampleServiceServicer, SampleServiceStub, add_SampleServiceServicer_to_server

import grpchelper

# ServiceInfo.version of the sample: "__title__:__version__", as the original server's
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


METADATA_PROBE = "?metadata"

# The native call (gh_server_call *) each handler thread is serving: the binding's method
# dispatcher is wrapped to remember it (test instrumentation, not the binding's API).
_serving = threading.local()
_serve = rpc_server._Method.serve


def _remember_call(self, call):
    before = getattr(_serving, "call", None)
    _serving.call = call
    try:
        return _serve(self, call)
    finally:
        _serving.call = before


rpc_server._Method.serve = _remember_call


def current_metadata() -> list:
    """[(key, value), ...] of the call being served on this thread, in the order received."""
    md = _ffi.gh_server_call_request_metadata(_serving.call)
    out = []
    for i in range(_ffi.gh_metadata_count(md)):
        key, value, size = ctypes.c_char_p(), ctypes.c_void_p(), ctypes.c_size_t()
        _ffi.gh_metadata_get(md, i, ctypes.byref(key), ctypes.byref(value), ctypes.byref(size))
        out.append((key.value.decode(), ctypes.string_at(value.value, size.value).decode()))
    return out


class SampleManager(SampleServiceServicer, RpcManager):
    def __init__(self):
        RpcManager.__init__(self)

    def echo(self, request: SampleRequest) -> SampleStatus:
        if request.text == METADATA_PROBE:
            return SampleStatus(text=json.dumps(current_metadata()))
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

    # "missing" is deliberately not implemented: the server answers UNIMPLEMENTED



def proxied_sample_manager(services: list, version: str):
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
    # Ours, from bindings/python first on PYTHONPATH, and nothing of the original's
    assert "grpc_helper" not in sys.modules
    ours = Path(os.environ["PYTHONPATH"].split(os.pathsep)[0]).resolve()
    assert Path(grpchelper.__file__).resolve().parent.parent == ours, grpchelper.__file__
    print(f"LIBRARY {grpchelper.library_version()}", flush=True)
    cli_config = {"rpc-shutdown-grace": "2", "rpc-shutdown-timeout": "1", "rpc-client-timeout": "5"}
    cli_config.update(spec.get("cli_config") or {})
    proxied = bool(spec.get("proxied"))
    registering = spec.get("proxied_manager")
    manager = (None if proxied else
               proxied_sample_manager(registering["services"], registering["version"]) if registering
               else SampleManager())
    descriptor = RpcServiceDescriptor(sample_module, "sample", SampleApiVersion, manager,
                                      add_SampleServiceServicer_to_server, SampleServiceStub,
                                      is_proxy=proxied)
    srv = RpcServer(0, [descriptor], Folders(workspace=Path(spec["workspace"])), cli_config,
                    user_items=USER_ITEMS + extra_user_items(spec.get("extra_user_items") or {}),
                    with_events=spec.get("with_events", False))

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
    print(f"READY {srv.port}", flush=True)
    srv.wait_shutdown()
    srv.close()
    print("STOPPED", flush=True)


if __name__ == "__main__":
    main()
