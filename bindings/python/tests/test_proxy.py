"""Proxied services in a Python host: a main RpcServer declaring the sample service as
proxied (is_proxy=True) and a backend whose manager is grpc-helper's RpcProxiedManager:
it registers with the main server (rpc-main-host / rpc-main-port) at load, calls made on
the main server reach it (the four patterns), it forgets itself at shutdown; a backend
that cannot reach the main server fails to start with ERROR_RPC."""

import pytest

from grpchelper import Folders, RpcException, RpcProxiedManager, RpcServiceDescriptor
from grpchelper.api import Filter, ResultCode

from test_rpc_server import clients, dirs, free_port, pb, sample_client, servers  # noqa: F401


def proxied(pb):
    return RpcServiceDescriptor(pb.module, "sample", pb.Version, pb.grpc.SampleServiceServicer(), pb.add, pb.Stub,
                                is_proxy=True)


def backend_manager(pb):
    class Backend(pb.grpc.SampleServiceServicer, RpcProxiedManager):
        def _proxied_services(self):
            return ["sample"]

        def _proxied_version(self):
            return "sample:7.0"

        def hello(self, request: pb.Request) -> pb.Response:
            return pb.Response(text="backend " + request.name)

        def count(self, request: pb.Request) -> pb.Response:
            for i in range(request.count):
                yield pb.Response(index=i, text=request.name)

        def collect(self, request_iterator) -> pb.Response:
            return pb.Response(text=",".join(r.name for r in request_iterator))

        def chat(self, request_iterator) -> pb.Response:
            for r in request_iterator:
                yield pb.Response(text="re:" + r.name)

    return Backend()


def test_a_proxied_manager_registers_and_the_main_server_forwards(pb, servers, clients, tmp_path):
    main = servers(proxied(pb), cli_config={"rpc-client-timeout": "5"})
    manager = backend_manager(pb)
    backend = servers(RpcServiceDescriptor(pb.module, "sample", pb.Version, manager, pb.add, pb.Stub),
                      folders=Folders(workspace=tmp_path / "backend"),
                      cli_config={"rpc-main-host": "127.0.0.1", "rpc-main-port": str(main.port)})
    info = main.client.srv.info(Filter(names=["sample"])).items[0]
    assert (info.is_proxy, info.proxy_port, info.proxy_host, info.version) == \
        (True, backend.port, "127.0.0.1", "sample:7.0")
    assert manager.proxy_client is not None
    c = sample_client(clients, pb, main)
    assert c.sample.hello(pb.Request(name="x")).text == "backend x"
    assert [(r.index, r.text) for r in c.sample.count(pb.Request(name="n", count=3))] == \
        [(0, "n"), (1, "n"), (2, "n")]
    assert c.sample.collect(iter([pb.Request(name="a"), pb.Request(name="b")])).text == "a,b"
    assert [r.text for r in c.sample.chat(iter([pb.Request(name="p"), pb.Request(name="q")]))] == ["re:p", "re:q"]
    backend.shutdown()
    assert manager.proxy_client is None
    assert main.client.srv.info(Filter(names=["sample"])).items[0].proxy_port == 0


def test_a_proxied_manager_that_cannot_register_fails_its_server(pb, servers, tmp_path):
    with pytest.raises(RpcException) as e:
        servers(RpcServiceDescriptor(pb.module, "sample", pb.Version, backend_manager(pb), pb.add, pb.Stub),
                folders=Folders(workspace=tmp_path / "backend"),
                cli_config={"rpc-main-host": "127.0.0.1", "rpc-main-port": str(free_port()),
                            "rpc-client-timeout": "0.3"})
    assert e.value.rc == ResultCode.ERROR_RPC
    assert "proxy_register" in str(e.value)
