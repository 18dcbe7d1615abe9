"""Server reflection, checked with grpcio-reflection's client (ProtoReflectionDescriptorDatabase
behind a protobuf DescriptorPool, what grpcurl-like tools do): every service a server lists
must resolve, with its methods and their message types.

- The seed's sample RpcServer in C (examples/c/rpc_server: descriptors registered with
  gh_rpc_service_add_descriptor_set), Swift (rpc-sample serve: RpcServiceDescriptor.
  fileDescriptors) and Python (examples/python/rpc_server.py: from the _pb2 modules), each a
  process of its own: the helper services, health, reflection and MyService.
- grpchelper.server() with enable_reflection(): the matrix service from its _pb2 module,
  add_reflection_file for a file no handler serves; v1 asked directly (grpcio-reflection's
  client speaks v1alpha).
- grpcio-reflection's own servicer (enable_server_reflection) on the binding's server.
"""
import os
import queue
import subprocess
import sys
import threading
from concurrent import futures

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import \
    ProtoReflectionDescriptorDatabase

from conftest import BOUND

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SAMPLE_SERVERS = {
    "C": [os.path.join(REPO, "build", "examples", "c", "rpc_server")],
    "Swift": [os.path.join(REPO, ".build", "debug", "rpc-sample"), "serve"],
    "Python": [sys.executable, os.path.join(REPO, "examples", "python", "rpc_server.py")],
}
LIBRARY_SERVICES = ["ConfigService", "LoggerService", "RpcServerService", "grpc.health.v1.Health",
                    "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]


def resolve_all(channel):
    """{service: {method: (input type, output type)}} of every listed service."""
    db = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(db)
    out = {}
    for name in db.get_services():
        sd = pool.FindServiceByName(name)
        out[name] = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in sd.methods}
    return out


class SampleServer:
    """An example server process: "-p 0 -w W --system S --user U", "serving on port N"."""

    def __init__(self, cmd, tmp):
        for d in ("sys", "usr"):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "bindings", "python"),
                                                            os.path.join(REPO, "examples", "python")]))
        self.proc = subprocess.Popen(cmd + ["-p", "0", "-w", os.path.join(tmp, "wks"), "--system",
                                            os.path.join(tmp, "sys"), "--user", os.path.join(tmp, "usr")],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout] and None,
                         daemon=True).start()
        self.port = None
        seen = []
        while self.port is None:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                break
            seen.append(line)
            if line.startswith("serving on port "):
                self.port = int(line.split()[-1])
        if self.port is None:
            self.stop()
            raise RuntimeError("%s did not start: %s" % (cmd, "".join(seen)))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.parametrize("language", list(SAMPLE_SERVERS))
def test_sample_rpc_server_lists_and_resolves_every_service(language, tmp_path):
    cmd = SAMPLE_SERVERS[language]
    if not os.path.exists(cmd[0]):
        pytest.skip("%s is not built (scripts/test.sh builds it)" % cmd[0])
    server = SampleServer(cmd, str(tmp_path))
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as ch:
            services = resolve_all(ch)
    finally:
        server.stop()
    assert sorted(services) == sorted(LIBRARY_SERVICES + ["MyService"])
    assert services["MyService"] == {"update": ("MyConfig", "MyStatus"), "list": ("Empty", "MyStatus")}
    assert services["ConfigService"]["get"] == ("Filter", "ConfigStatus")
    assert services["grpc.health.v1.Health"]["Watch"] == ("grpc.health.v1.HealthCheckRequest",
                                                          "grpc.health.v1.HealthCheckResponse")


def test_core_server_describes_its_services(pb):
    import grpchelper
    server = grpchelper.server(futures.ThreadPoolExecutor(max_workers=2))
    try:
        pb.add_MatrixServicer_to_server(pb.MatrixServicer(), server)
        server.enable_reflection()
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        with pytest.raises(RuntimeError):
            server.enable_reflection()
        # a file no handler serves: described (resolvable), not listed
        server.add_reflection_file(descriptor_pb2.DESCRIPTOR)
        with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
            services = resolve_all(ch)
            assert sorted(services) == ["grpc.reflection.v1.ServerReflection",
                                        "grpc.reflection.v1alpha.ServerReflection", "matrix.Matrix"]
            assert services["matrix.Matrix"]["Unary"] == ("matrix.Msg", "matrix.Msg")
            db = ProtoReflectionDescriptorDatabase(ch)
            assert db.FindFileContainingSymbol("google.protobuf.FileDescriptorProto").name == \
                "google/protobuf/descriptor.proto"
            # v1, asked directly: the same answers (its messages are v1alpha's, but the package)
            info = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                    request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                    response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
            answers = list(info(iter([
                reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(file_containing_symbol="matrix.Msg"),
                reflection_pb2.ServerReflectionRequest(file_containing_symbol="matrix.Nope"),
            ]), timeout=BOUND))
            assert [s.name for s in answers[0].list_services_response.service] == sorted(services)
            f = descriptor_pb2.FileDescriptorProto.FromString(
                answers[1].file_descriptor_response.file_descriptor_proto[0])
            assert f.package == "matrix"
            assert answers[2].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    finally:
        server.stop(0).wait(BOUND)


@pytest.mark.parametrize("client_impl", ["grpcio", "grpchelper"])
def test_grpcio_reflection_servicer_on_our_server(pb, client_impl):
    import grpchelper
    server = grpchelper.server(futures.ThreadPoolExecutor(max_workers=4))
    try:
        pb.add_MatrixServicer_to_server(pb.MatrixServicer(), server)
        names = ("matrix.Matrix", reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        mod = grpc if client_impl == "grpcio" else grpchelper
        with mod.insecure_channel("127.0.0.1:%d" % port) as ch:
            services = resolve_all(ch)
        assert sorted(services) == sorted(names)
        assert services["matrix.Matrix"]["Bidi"] == ("matrix.Msg", "matrix.Msg")
    finally:
        server.stop(0).wait(BOUND)
