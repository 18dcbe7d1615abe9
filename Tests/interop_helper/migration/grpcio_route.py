"""A grpcio program: a server and a stub (route.proto) with the four call patterns,
metadata both ways, a deadline, status codes (abort, set_code, an exception, a server
interceptor with abort_with_status, an unknown method), with_call() and future(), then
stop().

Written against grpcio. test_migration.py runs it as is on grpcio, then on grpchelper with
`import grpc` rewritten to `import grpchelper as grpc`, and compares the transcripts
(stdout). Command-line arguments are ignored (the server binds port 0).
"""
import threading
from concurrent import futures

import grpc

import route_pb2
import route_pb2_grpc


def custom(metadata) -> list:
    """The program's own metadata (x-...), without what the library adds (user-agent, ...)."""
    return sorted((k, v) for k, v in (metadata or ()) if k.startswith("x-"))


class Refused(grpc.Status):
    code = grpc.StatusCode.PERMISSION_DENIED
    details = "refused by the interceptor"
    trailing_metadata = (("x-reason", "x-deny"),)


class Deny(grpc.ServerInterceptor):
    """Refuses the calls that carry x-deny: yes."""

    def intercept_service(self, continuation, handler_call_details):
        if ("x-deny", "yes") in handler_call_details.invocation_metadata:
            return grpc.unary_unary_rpc_method_handler(lambda request, context: context.abort_with_status(Refused()))
        return continuation(handler_call_details)


class Route(route_pb2_grpc.RouteServicer):
    def GetFeature(self, request, context):
        context.send_initial_metadata((("x-initial", "yes"),))
        received = custom(context.invocation_metadata())
        if request.x < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"negative x: {request.x}")
        if request.x == 404:
            context.set_code(grpc.StatusCode.NOT_FOUND)
            context.set_details("no feature there")
            return route_pb2.Feature()
        if request.x == 500:
            raise RuntimeError("the map is on fire")
        if request.x == 408:
            # Until the client's deadline has passed (the call ends)
            ended = threading.Event()
            context.add_callback(ended.set)
            ended.wait(30)
            return route_pb2.Feature(name=f"late, still active: {context.is_active()}")
        context.set_trailing_metadata((("x-echo", ",".join(f"{k}={v}" for k, v in received)),
                                       ("x-deadline", str(context.time_remaining() is not None))))
        return route_pb2.Feature(name=f"feature at {request.x},{request.y}", location=request)

    def ListFeatures(self, request, context):
        for i in range(request.x):
            if request.y and i == request.y:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"stopped after {i}")
            yield route_pb2.Feature(name=f"f{i}", location=route_pb2.Point(x=i, y=i * i))

    def RecordRoute(self, request_iterator, context):
        count = total = 0
        for point in request_iterator:
            count += 1
            total += point.x
        return route_pb2.Summary(count=count, total_x=total)

    def RouteChat(self, request_iterator, context):
        for point in request_iterator:
            yield route_pb2.Feature(name=f"chat {point.x}", location=point)


def show_error(label, e, details=True):
    text = repr(e.details()) if details else "(details vary)"
    print(f"{label}: {e.code().name} {text} | is a grpc.Call: {isinstance(e, grpc.Call)}", flush=True)


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=(Deny(),))
    route_pb2_grpc.add_RouteServicer_to_server(Route(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("port chosen:", port > 0, flush=True)

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = route_pb2_grpc.RouteStub(channel)

        # unary-unary, with metadata and a deadline
        feature = stub.GetFeature(route_pb2.Point(x=3, y=4), metadata=(("x-client", "demo"), ("x-run", "1")),
                                  timeout=10)
        print("GetFeature:", feature.name, feature.location.x, feature.location.y, flush=True)

        feature, call = stub.GetFeature.with_call(route_pb2.Point(x=1, y=2), metadata=(("x-client", "with-call"),))
        print("with_call:", feature.name, call.code().name, repr(call.details()), flush=True)
        print("  initial metadata:", custom(call.initial_metadata()), flush=True)
        print("  trailing metadata:", custom(call.trailing_metadata()), flush=True)

        future = stub.GetFeature.future(route_pb2.Point(x=7, y=7))
        print("future:", future.result(timeout=10).name, future.code().name, future.done(), flush=True)

        # unary-stream
        print("ListFeatures:", [(f.name, f.location.y) for f in stub.ListFeatures(route_pb2.Point(x=4))], flush=True)
        got = []
        try:
            for f in stub.ListFeatures(route_pb2.Point(x=5, y=2)):
                got.append(f.name)
        except grpc.RpcError as e:
            show_error(f"ListFeatures after {got}", e)

        # stream-unary
        summary = stub.RecordRoute(iter([route_pb2.Point(x=i) for i in range(1, 6)]))
        print("RecordRoute:", summary.count, summary.total_x, flush=True)
        summary, call = stub.RecordRoute.with_call(iter([]))
        print("RecordRoute empty:", summary.count, call.code().name, flush=True)

        # stream-stream, ping-pong: each request is sent once the previous answer is in
        requests = []
        ready = threading.Semaphore(1)

        def ping_pong():
            for i in range(3):
                ready.acquire()
                requests.append(i)
                yield route_pb2.Point(x=i)

        answers = []
        for f in stub.RouteChat(ping_pong()):
            answers.append((f.name, len(requests)))
            ready.release()
        print("RouteChat:", answers, flush=True)

        # status codes
        for x, label in ((-1, "abort"), (404, "set_code"), (500, "exception"), (408, "deadline")):
            try:
                stub.GetFeature(route_pb2.Point(x=x), timeout=0.5 if x == 408 else 10)
                print(label, ": OK?!", flush=True)
            except grpc.RpcError as e:
                # grpcio's own text for a deadline varies ("Deadline Exceeded", "Stream removed (...)")
                show_error(label, e, details=x != 408)
        try:
            stub.GetFeature(route_pb2.Point(x=1), metadata=(("x-deny", "yes"),), timeout=10)
        except grpc.RpcError as e:
            show_error("interceptor", e)
            print("  trailing metadata:", custom(e.trailing_metadata()), flush=True)
        missing = channel.unary_unary("/route.Route/Missing", request_serializer=route_pb2.Point.SerializeToString,
                                      response_deserializer=route_pb2.Feature.FromString)
        try:
            missing(route_pb2.Point(), timeout=10)
        except grpc.RpcError as e:
            show_error("unknown method", e)

    event = server.stop(grace=1)
    print("stopped:", event.wait(10), flush=True)
    print("wait_for_termination timed out:", server.wait_for_termination(timeout=10), flush=True)


if __name__ == "__main__":
    main()
