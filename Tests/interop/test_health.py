"""grpc.health.v1.Health on our servers, checked with grpcio-health-checking's client
(health_pb2_grpc.HealthStub on a grpcio channel): the C echo_server example
(gh_server_enable_health) and the Swift interop-server (GRPCHelper's HealthService), each
a process of its own stopped by SIGTERM, and a Python server on the binding
(grpchelper.server with enable_health) in this process.

Per server: Check answers SERVING for "" and the served service and NOT_FOUND for another;
Watch gives the status at once (SERVICE_UNKNOWN, not an error, for an unknown service);
at the shutdown every Watch stream gets NOT_SERVING and ends UNAVAILABLE without holding
the server's grace, and the server exits cleanly. On the Python server statuses set by the
host reach Check and Watch."""
import os
import queue
import threading
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import ROOT, binary, start_listening, stop_process

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
WAIT = 20  # bound of every wait, seconds



def c_echo_server():
    path = os.path.join(ROOT, "build", "examples", "c", "echo_server")
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: build it first (cmake --build build)")
    return start_listening([path, "0", "127.0.0.1"]), "grpchelper.examples.Echo"


def swift_interop_server():
    return start_listening([binary("interop-server"), "--port=0"]), "grpc.testing.TestService"


SERVERS = {"c": c_echo_server, "swift": swift_interop_server}


class Watch:
    """A Watch stream read on a thread of its own: `next()` waits (bounded) for the next
    status; None once the stream ended (`code` is then its status code)."""

    def __init__(self, stub, service):
        self.q = queue.Queue()
        self.code = None
        self.call = stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=60)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for r in self.call:
                self.q.put(r.status)
        except grpc.RpcError as e:
            self.code = e.code()
        self.q.put(None)

    def next(self):
        return self.q.get(timeout=WAIT)

    def close(self):
        self.call.cancel()
        self.thread.join(WAIT)


def check(stub, service):
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=WAIT).status


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_check_and_watch_until_the_shutdown(kind):
    (proc, port), service = SERVERS[kind]()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            assert check(stub, "") == SERVING
            assert check(stub, service) == SERVING
            with pytest.raises(grpc.RpcError) as e:
                check(stub, "no.Such")
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
            assert "no.Such" in e.value.details()
            whole = Watch(stub, "")
            unknown = Watch(stub, "no.Such")
            try:
                assert whole.next() == SERVING
                assert unknown.next() == SERVICE_UNKNOWN
                # SIGTERM: both examples shut down gracefully (grace 5 s and more); the
                # streams end at its start, and the process exits 0.
                proc.terminate()
                assert whole.next() == NOT_SERVING
                assert whole.next() is None
                assert whole.code == grpc.StatusCode.UNAVAILABLE
                assert unknown.next() is None
                assert unknown.code == grpc.StatusCode.UNAVAILABLE
            finally:
                whole.close()
                unknown.close()
        assert stop_process(proc) == 0
    finally:
        stop_process(proc)


def test_python_server_statuses_set_by_the_host(grpchelper_module):
    gh = grpchelper_module
    server = gh.server(futures.ThreadPoolExecutor(max_workers=2))
    hello = grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("demo.Greeter", {"Hello": hello}),))
    server.enable_health()
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stopped = None
    try:
        with pytest.raises(RuntimeError):
            server.enable_health()          # after start
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            assert check(stub, "") == SERVING
            assert check(stub, "demo.Greeter") == SERVING
            w = Watch(stub, "demo.Greeter")
            later = Watch(stub, "demo.Later")
            try:
                assert w.next() == SERVING
                assert later.next() == SERVICE_UNKNOWN
                server.set_health_status("demo.Greeter", NOT_SERVING)   # health_pb2's value
                assert w.next() == NOT_SERVING
                assert check(stub, "demo.Greeter") == NOT_SERVING
                assert server.health_status("demo.Greeter") == gh.HealthStatus.NOT_SERVING
                server.set_health_status("demo.Later", gh.HealthStatus.SERVING)
                assert later.next() == SERVING
                server.clear_health_status("demo.Greeter")
                assert w.next() == SERVING
                server.clear_health_status("demo.Later")
                assert later.next() == SERVICE_UNKNOWN
                assert server.health_status("demo.Later") is None
                with pytest.raises(ValueError):
                    server.set_health_status("", SERVICE_UNKNOWN)
                with pytest.raises(ValueError):
                    server.set_health_status("", 9)
                # stop with a long grace: the streams end at its start, not after it
                stopped = server.stop(60)
                assert w.next() == NOT_SERVING
                assert w.next() is None and w.code == grpc.StatusCode.UNAVAILABLE
                assert later.next() is None and later.code == grpc.StatusCode.UNAVAILABLE
                assert stopped.wait(WAIT)
            finally:
                w.close()
                later.close()
        assert server.health_status("demo.Greeter") == gh.HealthStatus.NOT_SERVING
    finally:
        server.stop(0).wait(WAIT)
