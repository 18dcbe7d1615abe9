"""A grpcio echo server with the same raw-bytes methods as examples/swift/EchoServer.

Run as a program: prints "listening on port N" and serves until stdin closes or SIGTERM.
"""
import sys
import threading
from concurrent import futures

import grpc

SERVICE = "grpchelper.examples.Echo"


def _echo_metadata(context):
    md = context.invocation_metadata()
    initial = tuple((k, v) for k, v in md if k == "x-echo")
    trailing = tuple((k, v) for k, v in md if k == "x-echo-trailer")
    if initial:
        context.send_initial_metadata(initial)
    if trailing:
        context.set_trailing_metadata(trailing)


def unary(request, context):
    _echo_metadata(context)
    return request


def server_stream(request, context):
    _echo_metadata(context)
    n, _, text = request.decode().partition(":")
    for i in range(int(n)):
        yield f"{text} {i}".encode()


def client_stream(request_iterator, context):
    _echo_metadata(context)
    return b",".join(request_iterator)


def bidi(request_iterator, context):
    _echo_metadata(context)
    for m in request_iterator:
        yield m


def make_server(compression=None):
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), compression=compression)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    return server, port


if __name__ == "__main__":
    srv, p = make_server()
    srv.start()
    print(f"listening on port {p}", flush=True)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    srv.stop(grace=1).wait()
