"""The grpchelper command-line tool (the package's `grpchelper` console script, also
`python3 -m grpchelper`): one tool to run a main server and to poke running ones.

    grpchelper serve ...                      a main RpcServer (srv, config, log, events,
                                              proxying, health, reflection)
    grpchelper info | config | log | events | proxy | shutdown   (--host/--port)
                                              the helper services of a running server
    grpchelper list HOST:PORT                 its services, through reflection
    grpchelper call HOST:PORT /pkg.Service/Method '{json}'
                                              a call built from reflected descriptors

Tables for people, `--json` for scripts; a failure prints "<RESULT_CODE_NAME>: <message>"
on stderr and exits non-zero (1: the server answered an error; 2: bad usage; 3: the
server could not be reached). Each subcommand has --help.
"""

import argparse
import os
import sys

from .output import EXIT_ERROR, EXIT_UNREACHABLE, ToolError


def serve_command(args):
    from .serve import serve
    return serve(args)


def parser():
    p = argparse.ArgumentParser(
        prog="grpchelper",
        description="Run a grpchelper main server, or talk to a running gRPC server: its "
                    "helper services (info, config, log, events, proxy, shutdown), its "
                    "reflection (list, call).")
    from .. import __version__
    p.add_argument("-V", "--version", action="version", version="grpchelper %s" % __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from . import admin, dynamic, serve
    serve.add_commands(sub)
    admin.add_commands(sub)
    dynamic.add_commands(sub)
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        # serve's options are grpc-helper's RPC command line (RpcCliParser), parsed there
        args = argparse.Namespace(func=serve_command, rest=argv[1:])
    else:
        args = parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except ToolError as e:
        sys.stdout.flush()
        sys.stderr.write("%s: %s\n" % (e.name, e.message))
        return e.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): nothing more to print, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except ImportError as e:
        sys.stderr.write("ERROR: the grpchelper tool needs protobuf and grpcio (pip install "
                         "'grpchelper[api]'): %s\n" % e)
        return EXIT_ERROR


__all__ = ["main", "parser", "EXIT_UNREACHABLE"]
