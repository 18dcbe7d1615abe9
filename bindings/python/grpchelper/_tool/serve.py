"""`grpchelper serve`: the main server of a proxied system, as a program.

A grpchelper.RpcServer serving srv, config, log and events (and health and reflection, as
every RpcServer), taking grpc-helper's RPC command-line options (--system, --user,
-w/--workspace, -p/--port, -c NAME=VALUE), with its rolling logs under the workspace, the
exit signals (the first SIGINT/SIGTERM shuts it down gracefully, the second at once) and
the debug dump on SIGUSR2. `--proxy NAME=MODULE[:SERVICE]` declares a proxied service
whose backends register themselves (RpcProxiedManager, or `grpchelper proxy register`):
MODULE is its grpcio-tools generated `_pb2_grpc` module (importable: PYTHONPATH), SERVICE
the service when the module has several, and the API version range is the `_pb2` module's
enum named `...ApiVersion`, as grpc-helper's descriptors take it.

Prints "serving on port N" once it serves; exits 0 after a shutdown (srv.shutdown, or a
signal), 1 when it cannot start (the ResultCode name and message on stderr), 2 for bad
options. Its folders default to /etc/grpchelper, ~/.config/grpchelper and the workspace
~/.local/share/grpchelper (logs, proxy.json, queues.json).
"""

import argparse
import importlib
import sys

from .output import EXIT_USAGE, ToolError


def _proxy_descriptor(spec):
    """An RpcServiceDescriptor with is_proxy=True from "NAME=MODULE[:SERVICE]"."""
    from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
    from .. import RpcServiceDescriptor
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise ToolError("ERROR_PARAM_INVALID", "--proxy takes NAME=MODULE[:SERVICE], not %r" % spec, EXIT_USAGE)
    module_name, _, service = rest.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ToolError("ERROR_PARAM_INVALID", "--proxy %s: cannot import %s (%s; is it on PYTHONPATH?)"
                        % (name, module_name, e))
    prefix, suffix = "add_", "Servicer_to_server"
    services = sorted(n[len(prefix):-len(suffix)] for n in dir(module)
                      if n.startswith(prefix) and n.endswith(suffix))
    if service:
        if service not in services:
            raise ToolError("ERROR_PARAM_INVALID", "--proxy %s: %s has no service %s (it has: %s)"
                            % (name, module_name, service, ", ".join(services) or "none"))
    elif len(services) == 1:
        service = services[0]
    else:
        raise ToolError("ERROR_PARAM_INVALID", "--proxy %s: %s has %s services: name one (MODULE:SERVICE)"
                        % (name, module_name, len(services) or "no"))
    pb2_name = module_name[:-len("_grpc")] if module_name.endswith("_grpc") else module_name
    try:
        pb2 = importlib.import_module(pb2_name)
    except ImportError as e:
        raise ToolError("ERROR_PARAM_INVALID", "--proxy %s: cannot import %s (%s)" % (name, pb2_name, e))
    enums = {n: v for n, v in vars(pb2).items() if isinstance(v, EnumTypeWrapper) and n.endswith("ApiVersion")}
    if len(enums) > 1:
        preferred = service[:-len("Service")] + "ApiVersion" if service.endswith("Service") else None
        enums = {n: v for n, v in enums.items() if n == preferred}
    if len(enums) != 1:
        raise ToolError("ERROR_PARAM_INVALID", "--proxy %s: %s needs one ...ApiVersion enum for %s"
                        % (name, pb2_name, service))
    package = importlib.import_module(module_name.split(".")[0])
    return RpcServiceDescriptor(package, name, next(iter(enums.values())),
                                getattr(module, service + "Servicer")(),
                                getattr(module, prefix + service + suffix),
                                getattr(module, service + "Stub"), is_proxy=True)


def serve(args):
    from .. import RpcCliParser, RpcException, RpcServer, __version__
    from ..api import ResultCode
    cli = RpcCliParser("grpchelper serve: the main server of a proxied system (srv, config, log, "
                       "events, proxying, health, reflection).", "grpchelper %s" % __version__)
    cli.with_rpc_args(54321, "/etc/grpchelper", "~/.config/grpchelper", "~/.local/share/grpchelper")
    cli.parser.prog = "grpchelper serve"
    cli.parser.add_argument("--proxy", action="append", default=[], metavar="NAME=MODULE[:SERVICE]",
                            help="a proxied service: NAME for clients, MODULE its generated _pb2_grpc "
                                 "module (on PYTHONPATH), SERVICE when the module has several")
    try:
        a = cli.parse(args.rest)
    except argparse.ArgumentTypeError as e:
        raise ToolError("ERROR_PARAM_INVALID", str(e), EXIT_USAGE)
    descriptors = [_proxy_descriptor(spec) for spec in a.proxy]
    try:
        srv = RpcServer(a.port, descriptors, a.folders, a.config, with_events=True)
    except RpcException as e:
        raise ToolError(ResultCode.Name(e.rc) if e.rc in ResultCode.values() else str(e.rc), str(e))
    try:
        srv.handle_exit_signals()
        print("serving on port %d" % srv.port, flush=True)
        srv.wait_shutdown()
    finally:
        srv.close()
    return 0


def add_commands(sub):
    # Listed for the top-level help only: main() hands "serve ..." to serve() directly
    # (its options are RpcCliParser's, which argparse's sub-commands cannot pass through).
    p = sub.add_parser("serve", add_help=False, help="run a main RpcServer (grpchelper serve --help)",
                       description="Run a main RpcServer: see grpchelper serve --help.")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=serve)
    return p
