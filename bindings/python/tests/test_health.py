"""Health checking on the binding:

- grpcio-health-checking's own HealthServicer (generated code plus a condition-variable
  iterator for Watch) served by each server implementation and called by each client
  implementation (the four pairings): Check, NOT_FOUND, Watch following set() and
  enter_graceful_shutdown();
- the library's health service on grpchelper.RpcServer (served by default; the host's
  set_health_status / clear_health_status / health_status), seen with grpcio-health-
  checking's client; NOT_SERVING from the shutdown;
- HealthStatus and the argument checks.
"""
import queue
import threading
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from conftest import BOUND, PAIRING_IDS, PAIRINGS, implementation
from grpchelper._native.ffi import InvalidStateError

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class Watch:
    """A Watch stream read on a thread of its own; `next()` waits (bounded) for the next
    status, None once the stream ended (`code` then holds its status code)."""

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
        return self.q.get(timeout=BOUND)

    def close(self):
        self.call.cancel()
        self.thread.join(BOUND)


def check(stub, service):
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=BOUND).status


@pytest.mark.parametrize("server_impl,client_impl", PAIRINGS, ids=PAIRING_IDS)
def test_grpcio_health_servicer(server_impl, client_impl):
    executor = futures.ThreadPoolExecutor(max_workers=8)
    server = implementation(server_impl).server(executor)
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    ch = implementation(client_impl).insecure_channel("127.0.0.1:%d" % port)
    watches = []
    try:
        stub = health_pb2_grpc.HealthStub(ch)
        servicer.set("", SERVING)
        assert check(stub, "") == SERVING
        with pytest.raises(grpc.RpcError) as e:
            check(stub, "demo.Nope")
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        w = Watch(stub, "demo.Svc")
        whole = Watch(stub, "")
        watches += [w, whole]
        assert w.next() == SERVICE_UNKNOWN
        assert whole.next() == SERVING
        servicer.set("demo.Svc", SERVING)
        assert w.next() == SERVING
        servicer.set("demo.Svc", NOT_SERVING)
        assert w.next() == NOT_SERVING
        assert check(stub, "demo.Svc") == NOT_SERVING
        servicer.enter_graceful_shutdown()
        assert whole.next() == NOT_SERVING
        servicer.set("", SERVING)                 # ignored from now on
        assert check(stub, "") == NOT_SERVING
    finally:
        for w in watches:
            w.close()
        ch.close()
        server.stop(0).wait(BOUND)
        executor.shutdown(wait=False)


@pytest.fixture
def rpc_server(tmp_path):
    from grpchelper import Folders, RpcServer
    srv = RpcServer(0, [], folders=Folders(user=tmp_path / "usr", workspace=tmp_path / "wks"),
                    cli_config={"rpc-shutdown-grace": "30"})
    yield srv
    srv.shutdown()
    srv.close()


def test_rpc_server_serves_health(rpc_server):
    import grpchelper
    srv = rpc_server
    with grpc.insecure_channel("127.0.0.1:%d" % srv.port) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for service in ("", "RpcServerService", "ConfigService", "LoggerService"):
            assert check(stub, service) == SERVING, service
            assert srv.health_status(service) == grpchelper.HealthStatus.SERVING
        with pytest.raises(grpc.RpcError) as e:
            check(stub, "EventService")           # made without events
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert srv.health_status("EventService") is None
        srv.set_health_status("ConfigService", grpchelper.HealthStatus.NOT_SERVING)
        assert check(stub, "ConfigService") == NOT_SERVING
        srv.clear_health_status("ConfigService")
        assert check(stub, "ConfigService") == SERVING
        with pytest.raises(ValueError):
            srv.set_health_status("ConfigService", grpchelper.HealthStatus.SERVICE_UNKNOWN)
        with pytest.raises(TypeError):
            srv.set_health_status(None, SERVING)
        w = Watch(stub, "")
        try:
            assert w.next() == SERVING
            srv.shutdown()                        # grace 30: the stream must not hold it
            assert w.next() == NOT_SERVING
            assert w.next() is None and w.code == grpc.StatusCode.UNAVAILABLE
        finally:
            w.close()
    assert srv.health_status("") == grpchelper.HealthStatus.NOT_SERVING


def test_health_status_values():
    from grpchelper import HealthStatus
    for name in ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"):
        assert int(getattr(HealthStatus, name)) == health_pb2.HealthCheckResponse.ServingStatus.Value(name)


def test_enable_health_before_start_only():
    import grpchelper
    server = grpchelper.server(futures.ThreadPoolExecutor(max_workers=1))
    try:
        with pytest.raises(InvalidStateError):
            server.set_health_status("", SERVING)    # not enabled
        server.enable_health()
        with pytest.raises(InvalidStateError):
            server.enable_health()                   # twice
        server.add_insecure_port("127.0.0.1:0")
        server.start()
        with pytest.raises(RuntimeError):
            server.enable_health()                   # after start
        assert server.health_status("") == grpchelper.HealthStatus.SERVING
    finally:
        server.stop(0).wait(BOUND)
