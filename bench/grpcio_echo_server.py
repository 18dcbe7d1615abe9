"""grpcio echo peer for bench/run.sh.

    python3 grpcio_echo_server.py [--port N] [--host H] [--workers N]

A synchronous grpcio server (grpc.server with a ThreadPoolExecutor) with one
generic handler for /grpchelper.examples.Echo/Unary that answers with the
request bytes (identity (de)serializers). Prints "listening on port N" once
serving; stops on SIGINT/SIGTERM.
"""
import argparse
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--workers", type=int, default=16)
    args = ap.parse_args()

    handler = grpc.method_handlers_generic_handler(
        "grpchelper.examples.Echo",
        {"Unary": grpc.unary_unary_rpc_method_handler(lambda request, context: request)},
    )
    server = grpc.server(ThreadPoolExecutor(max_workers=args.workers))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    if port == 0:
        print(f"grpcio_echo_server: could not bind {args.host}:{args.port}", file=sys.stderr)
        return 1
    server.start()
    print(f"listening on port {port}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    server.stop(2).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
