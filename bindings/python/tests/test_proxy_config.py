"""The config service of a main server with registered proxied servers, in a Python host
(grpc-helper's ConfigManager with proxies): a main RpcServer declaring two services
proxied (is_proxy=True: "sample", and "matrix" from protos/matrix.proto), and two backends
with their own user items: one whose manager is an RpcProxiedManager (registers "sample"
with the main server at load, forgets at shutdown), one registered for "matrix" with an
explicit srv.proxy_register on the main server. Through the main server's config service:

- get merges the items of every server by name: the main server's first, then each
  backend's (untouched); equal values give one entry, different ones ERROR_ITEM_CONFLICT
  "Proxied values conflict for config item NAME: V1 != V2";
- set and reset apply on every server holding the item (checked by asking each backend
  directly, and the main server's own config set), a value invalid for the main server's
  item refused before any backend is changed;
- the names are checked against the merged items: unknown -> ERROR_ITEM_UNKNOWN unless
  ignore_unknown; an empty list for set / reset -> ERROR_PARAM_MISSING;
- without registered backends (none yet, or all forgotten) it is the server's own.

Every server listens on port 0, in its own workspace under tmp_path; all are shut down at
teardown (test_rpc_server's `servers` fixture, which also checks the library released every
handler and hook)."""

import importlib
import json
import os
import subprocess
import sys
import types

import pytest

from grpchelper import Config, Folders, RpcException, RpcServiceDescriptor
from grpchelper.api import (ConfigApiVersion, ConfigItemUpdate, ConfigServiceStub, ConfigUpdate,
                            ConfigValidator, Filter, ProxyRegisterRequest, ResultCode)

from test_proxy import backend_manager, proxied
from test_rpc_server import PROTOS, clients, dirs, pb, servers  # noqa: F401 (fixtures)

UNKNOWN = "RPC returned error: Unknown config item names in filter request: {}"
CONFLICT = "RPC returned error: Proxied values conflict for config item {}: {} != {}"
EMPTY = "RPC returned error: Input request list is empty"


@pytest.fixture(scope="module")
def matrix_pb(tmp_path_factory):
    """matrix_pb2 / matrix_pb2_grpc (protos/matrix.proto): the second proxied service."""
    out = str(tmp_path_factory.mktemp("matrix_pb"))
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"--python_out={out}",
                    f"--grpc_python_out={out}", os.path.join(PROTOS, "matrix.proto")], check=True)
    names = ("matrix_pb2", "matrix_pb2_grpc")
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    sys.path.insert(0, out)
    try:
        yield importlib.import_module("matrix_pb2_grpc")
    finally:
        sys.path.remove(out)
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


def item(name, value, owner):
    """An int user item; its description names the server holding it."""
    return Config(name=name, description=f"{name} of {owner}", default_value=value,
                  validator=ConfigValidator.CONFIG_VALID_INT)


def config_client(clients, srv):  # noqa: F811
    return clients(srv.port, {"config": (ConfigServiceStub, ConfigApiVersion.CONFIG_API_CURRENT)})


def values(client, names=(), **kwargs):
    return [(i.name, i.value) for i in client.config.get(Filter(names=list(names), **kwargs)).items]


def update(*pairs, **kwargs):
    return ConfigUpdate(items=[ConfigItemUpdate(name=n, value=v) for n, v in pairs], **kwargs)


def main_first(status, n):
    """(the first n items, the others sorted) of a ConfigStatus, as (name, value) pairs: the
    main server's items come first; the proxied servers' in no order grpc-helper defines
    (a set of servers)."""
    pairs = [(i.name, i.value) for i in status.items]
    return pairs[:n], sorted(pairs[n:])


def raises(rc, text, fn, *args):
    with pytest.raises(RpcException) as e:
        fn(*args)
    assert (e.value.rc, str(e.value)) == (rc, text)


@pytest.fixture
def trio(pb, matrix_pb, servers, clients, tmp_path):  # noqa: F811
    """The main server ("shared" 1, "main-only" 2), backend b1 (RpcProxiedManager of
    "sample": "shared" 1, "b1-only" 3, "pair" 5) and b2 (registered for "matrix":
    "shared" 1, "b2-only" 4, "pair" 5), with a config client of each; the main server's own
    config service is checked before the backends come."""
    matrix = RpcServiceDescriptor(types.ModuleType("matrix_api"), "matrix", [1],
                                  matrix_pb.MatrixServicer(), matrix_pb.add_MatrixServicer_to_server,
                                  matrix_pb.MatrixStub, is_proxy=True)
    main = servers(proxied(pb), matrix, folders=Folders(workspace=tmp_path / "main"),
                   user_items=[item("shared", "1", "main"), item("main-only", "2", "main")])
    mc = config_client(clients, main)
    # No backend yet: the main server's own config service
    assert values(mc) == [("shared", "1"), ("main-only", "2")]
    raises(ResultCode.ERROR_ITEM_UNKNOWN, UNKNOWN.format("b1-only"), values, mc, ["b1-only"])

    manager = backend_manager(pb)
    b1 = servers(RpcServiceDescriptor(pb.module, "sample", pb.Version, manager, pb.add, pb.Stub),
                 folders=Folders(workspace=tmp_path / "b1"),
                 cli_config={"rpc-main-host": "127.0.0.1", "rpc-main-port": str(main.port)},
                 user_items=[item("shared", "1", "b1"), item("b1-only", "3", "b1"),
                             item("pair", "5", "b1")])
    b2 = servers(folders=Folders(workspace=tmp_path / "b2"),
                 user_items=[item("shared", "1", "b2"), item("b2-only", "4", "b2"),
                             item("pair", "5", "b2")])
    main.client.srv.proxy_register(ProxyRegisterRequest(names=["matrix"], version="m:1",
                                                        host="127.0.0.1", port=b2.port))
    ports = sorted(i.proxy_port for i in main.client.srv.info(Filter()).items if i.is_proxy)
    assert ports == sorted([b1.port, b2.port])
    yield types.SimpleNamespace(main=main, b1=b1, b2=b2, mc=mc, b1c=config_client(clients, b1),
                                b2c=config_client(clients, b2), tmp=tmp_path)
    # The backends first: b1 forgets itself while the main server runs
    b1.shutdown()
    b2.shutdown()


def test_get_merges_the_items_of_every_server_by_name(trio):
    t = trio
    status = t.mc.config.get(Filter())
    # The main server's items first (its "shared"), then the backends' own ones, once each
    assert main_first(status, 2) == ([("shared", "1"), ("main-only", "2")],
                                     [("b1-only", "3"), ("b2-only", "4"), ("pair", "5")])
    got = status.items
    by_name = {i.name: i for i in got}
    assert by_name["shared"].description == "shared of main"
    # A backend's item as that backend gives it (value, default, description, validator)
    (b1_only,) = t.b1c.config.get(Filter(names=["b1-only"])).items
    assert by_name["b1-only"] == b1_only
    (b2_only,) = t.b2c.config.get(Filter(names=["b2-only"])).items
    assert by_name["b2-only"] == b2_only
    assert (by_name["pair"].value, by_name["pair"].description) in [("5", "pair of b1"),
                                                                    ("5", "pair of b2")]
    # A filter: the main server's item first, then the others in the order of the names
    assert values(t.mc, ["b2-only", "shared"]) == [("shared", "1"), ("b2-only", "4")]
    assert values(t.mc, ["b1-only"]) == [("b1-only", "3")]
    assert values(t.mc, ["pair", "main-only"]) == [("main-only", "2"), ("pair", "5")]


def test_set_and_reset_apply_on_every_server_holding_the_item(trio):
    t = trio
    status = t.mc.config.set(update(("shared", "7"), ("b1-only", "8"), ("pair", "9"), ("main-only", "6")))
    assert main_first(status, 2) == ([("shared", "7"), ("main-only", "6")], [("b1-only", "8"), ("pair", "9")])
    # Each server's own value changed (asked directly), and persisted in its workspace
    assert values(t.b1c) == [("shared", "7"), ("b1-only", "8"), ("pair", "9")]
    assert values(t.b2c) == [("shared", "7"), ("b2-only", "4"), ("pair", "9")]
    assert [t.main.config.item(n).str_val for n in ("shared", "main-only")] == ["7", "6"]
    assert json.loads((t.tmp / "b1" / "config.json").read_text()) == {
        "shared": "7", "b1-only": "8", "pair": "9"}
    assert json.loads((t.tmp / "b2" / "config.json").read_text()) == {"shared": "7", "pair": "9"}
    assert values(t.mc, ["shared", "pair"]) == [("shared", "7"), ("pair", "9")]

    # An invalid value for the main server's item: refused before any backend is changed
    with pytest.raises(RpcException) as e:
        t.mc.config.set(update(("b2-only", "10"), ("shared", "not-an-int")))
    assert e.value.rc == ResultCode.ERROR_PARAM_INVALID
    assert values(t.b2c, ["b2-only", "shared"]) == [("b2-only", "4"), ("shared", "7")]
    assert t.main.config.item("shared").str_val == "7"

    # reset: the defaults back on every server holding the items
    status = t.mc.config.reset(Filter(names=["shared", "b1-only", "pair"]))
    assert main_first(status, 1) == ([("shared", "1")], [("b1-only", "3"), ("pair", "5")])
    assert values(t.b1c) == [("shared", "1"), ("b1-only", "3"), ("pair", "5")]
    assert values(t.b2c) == [("shared", "1"), ("b2-only", "4"), ("pair", "5")]
    assert [t.main.config.item(n).str_val for n in ("shared", "main-only")] == ["1", "6"]
    assert json.loads((t.tmp / "b1" / "config.json").read_text()) == {}
    t.mc.config.reset(Filter(names=["main-only"]))
    assert values(t.mc, ["main-only"]) == [("main-only", "2")]


def test_different_values_of_one_name_conflict(trio):
    t = trio
    t.b1c.config.set(update(("shared", "9")))          # on the backend only
    raises(ResultCode.ERROR_ITEM_CONFLICT, CONFLICT.format("shared", "9", "1"), values, t.mc)
    raises(ResultCode.ERROR_ITEM_CONFLICT, CONFLICT.format("shared", "9", "1"), values, t.mc,
           ["shared"])
    # Items out of the filter do not conflict
    assert values(t.mc, ["b1-only", "main-only"]) == [("main-only", "2"), ("b1-only", "3")]
    # set through the main server sets every holder: no conflict left
    status = t.mc.config.set(update(("shared", "11")))
    assert [(i.name, i.value) for i in status.items] == [("shared", "11")]
    assert values(t.b1c, ["shared"]) == values(t.b2c, ["shared"]) == [("shared", "11")]

    # Between two backends (the main server does not hold "pair"): either order
    t.b2c.config.set(update(("pair", "6")))
    with pytest.raises(RpcException) as e:
        values(t.mc, ["pair"])
    assert e.value.rc == ResultCode.ERROR_ITEM_CONFLICT
    assert str(e.value) in (CONFLICT.format("pair", "6", "5"), CONFLICT.format("pair", "5", "6"))
    # reset through the main server: both at their default again
    t.mc.config.reset(Filter(names=["pair"]))
    assert values(t.mc, ["pair"]) == [("pair", "5")]
    assert values(t.b2c, ["pair"]) == [("pair", "5")]


def test_names_are_checked_against_the_merged_items(trio):
    t = trio
    raises(ResultCode.ERROR_ITEM_UNKNOWN, UNKNOWN.format("nope"), values, t.mc, ["nope"])
    # Known somewhere (a backend) is known: only the unknown one is named
    raises(ResultCode.ERROR_ITEM_UNKNOWN, UNKNOWN.format("nope"), values, t.mc,
           ["b2-only", "nope", "b1-only"])
    assert values(t.mc, ["b2-only", "nope"], ignore_unknown=True) == [("b2-only", "4")]
    # Static items are no one's (grpc-helper's config service serves user items only)
    raises(ResultCode.ERROR_ITEM_UNKNOWN, UNKNOWN.format("rpc-main-port"), values, t.mc,
           ["rpc-main-port"])

    # set: nothing changed when a name is unknown; ignore_unknown sets the known ones
    raises(ResultCode.ERROR_ITEM_UNKNOWN, UNKNOWN.format("nope"), t.mc.config.set,
           update(("b1-only", "20"), ("nope", "1")))
    assert values(t.b1c, ["b1-only"]) == [("b1-only", "3")]
    status = t.mc.config.set(update(("b1-only", "20"), ("nope", "1"), ignore_unknown=True))
    assert [(i.name, i.value) for i in status.items] == [("b1-only", "20")]
    assert values(t.b1c, ["b1-only"]) == [("b1-only", "20")]
    raises(ResultCode.ERROR_PARAM_MISSING, EMPTY, t.mc.config.set, update())

    # reset: the same checks
    raises(ResultCode.ERROR_ITEM_UNKNOWN, UNKNOWN.format("nope"), t.mc.config.reset,
           Filter(names=["b1-only", "nope"]))
    assert values(t.b1c, ["b1-only"]) == [("b1-only", "20")]
    status = t.mc.config.reset(Filter(names=["nope", "b1-only"], ignore_unknown=True))
    assert [(i.name, i.value) for i in status.items] == [("b1-only", "3")]
    assert values(t.b1c, ["b1-only"]) == [("b1-only", "3")]
    raises(ResultCode.ERROR_PARAM_MISSING, EMPTY, t.mc.config.reset, Filter())
    with pytest.raises(RpcException) as e:
        t.mc.config.get(Filter(names=["b1-only", ""]))
    assert e.value.rc == ResultCode.ERROR_PARAM_MISSING


def test_forgotten_backends_leave_the_merge(trio):
    t = trio
    assert len(values(t.mc)) == 5
    t.b1.shutdown()                                   # its RpcProxiedManager forgets "sample"
    assert main_first(t.mc.config.get(Filter()), 2) == ([("shared", "1"), ("main-only", "2")],
                                                        [("b2-only", "4"), ("pair", "5")])
    raises(ResultCode.ERROR_ITEM_UNKNOWN, UNKNOWN.format("b1-only"), values, t.mc, ["b1-only"])
    t.main.client.srv.proxy_forget(Filter(names=["matrix"]))
    assert values(t.mc) == [("shared", "1"), ("main-only", "2")]
    # The main server's own set no longer reaches b2
    t.mc.config.set(update(("shared", "3")))
    assert values(t.b2c, ["shared"]) == [("shared", "1")]
    assert t.main.config.item("shared").str_val == "3"
