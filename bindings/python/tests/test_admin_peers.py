"""Who may administer an RpcServer (issue 15). By default anyone who reaches its port may
shut it down, set config items and logger levels and register proxies, as with grpc-helper;
with rpc-admin-peers = "local" only loopback and unix-socket peers may, and others get
PERMISSION_DENIED saying why, while reading (info, config get, log get) stays open.

A peer that is not local is this machine itself reached through a non-loopback address
(the source address of a route out; the test is skipped on a machine without one)."""

import socket

import grpc
import pytest

from grpchelper import Folders, RpcServer
from grpchelper.api import (ConfigServiceStub, Filter, LoggerConfig, LoggerLevel,
                            LoggerServiceStub, LoggerUpdate, RpcServerServiceStub,
                            ShutdownRequest)


def outside_address():
    """This machine's IPv4 address toward the outside (no packet is sent), or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        address = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if address.startswith("127.") else address


OUTSIDE = outside_address()
pytestmark = pytest.mark.skipif(OUTSIDE is None, reason="no non-loopback address on this machine")


@pytest.fixture
def start(tmp_path):
    servers = []

    def run(**cli):
        s = RpcServer(0, [], folders=Folders(workspace=str(tmp_path / str(len(servers)))),
                      cli_config=cli, with_debug_signal=False)
        servers.append(s)
        return s

    yield run
    for s in servers:
        s.shutdown()


def level_update(name="admin.test"):
    return LoggerUpdate(items=[LoggerConfig(name=name, enabled=True, level=LoggerLevel.LVL_DEBUG)])


def test_local_only_refuses_administration_from_other_peers(start):
    server = start(**{"rpc-admin-peers": "local"})
    with grpc.insecure_channel(f"{OUTSIDE}:{server.port}") as outside, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as local:
        for call, request in ((RpcServerServiceStub(outside).shutdown, ShutdownRequest()),
                              (LoggerServiceStub(outside).set, level_update()),
                              (LoggerServiceStub(outside).reset, Filter()),
                              (ConfigServiceStub(outside).reset, Filter()),
                              (RpcServerServiceStub(outside).proxy_forget, Filter(names=["x"]))):
            with pytest.raises(grpc.RpcError) as e:
                call(request, timeout=10)
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert f"is refused to ipv4:{OUTSIDE}:" in e.value.details()
            assert "rpc-admin-peers is 'local'" in e.value.details()
        # Reading stays open to anyone; the server still runs.
        assert RpcServerServiceStub(outside).info(Filter(), timeout=10).items
        ConfigServiceStub(outside).get(Filter(), timeout=10)
        # A loopback peer administers it.
        assert LoggerServiceStub(local).set(level_update(), timeout=10).r.code == 0
        levels = LoggerServiceStub(local).get(Filter(names=["admin.test"]), timeout=10)
        assert [i.level for i in levels.items] == [LoggerLevel.LVL_DEBUG]


def test_by_default_anyone_may_administer(start):
    server = start()
    with grpc.insecure_channel(f"{OUTSIDE}:{server.port}") as outside:
        assert LoggerServiceStub(outside).set(level_update(), timeout=10).r.code == 0


def test_the_option_is_validated(tmp_path):
    from grpchelper import RpcException
    with pytest.raises(RpcException) as e:
        RpcServer(0, [], folders=Folders(workspace=str(tmp_path)), cli_config={"rpc-admin-peers": "everyone"},
                  with_debug_signal=False)
    assert "rpc-admin-peers" in str(e.value) and "expected 'any' or 'local'" in str(e.value)
