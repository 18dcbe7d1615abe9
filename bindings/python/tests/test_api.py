"""grpchelper.api: the helper services' messages and stubs match docs/WIRE.md (the wire
contract with grpc-helper) field by field, and work over grpchelper's server and channel."""

import os
import re

import grpc
import pytest

import grpchelper
from grpchelper import api

HERE = os.path.dirname(os.path.abspath(__file__))
WIRE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "docs", "WIRE.md"))
MODULES = [api.common_pb2, api.server_pb2, api.config_pb2, api.logger_pb2, api.events_pb2]


def wire_tables():
    """{message or enum name: row text} and [(service, method, request, stream, response)]."""
    rows, rpcs = {}, []
    service = None
    for line in open(WIRE, encoding="utf-8"):
        m = re.match(r"## (\w+Service)", line)
        if m:
            service = m.group(1)
        m = re.match(r"\| (enum )?(\w+) \| (.*) \|$", line.strip())
        if m and m.group(2) not in ("message",):
            rows[m.group(2)] = (bool(m.group(1)), m.group(3))
        for r in re.finditer(r"`(\w+)\((\w+)\) → (stream )?(\w+)`", line):
            rpcs.append((service, r.group(1), r.group(2), bool(r.group(3)), r.group(4)))
    return rows, rpcs


def lookup(name):
    for mod in MODULES:
        d = mod.DESCRIPTOR
        if name in d.message_types_by_name:
            return d.message_types_by_name[name]
        if name in d.enum_types_by_name:
            return d.enum_types_by_name[name]
    raise AssertionError("%s is not defined by grpchelper.api" % name)


def test_every_message_and_enum_of_wire_md():
    rows, _ = wire_tables()
    assert len(rows) == 24  # every message and enum of the tables
    for name, (is_enum, text) in rows.items():
        d = lookup(name)
        if is_enum:
            want = {k: int(v) for k, v in re.findall(r"\b([A-Z][A-Z0-9_]*) (\d+)", text)}
            got = {v.name: v.number for v in d.values}
            assert got == want, name
            continue
        want = re.findall(r"(\d+): (\w+)(?: (repeated )?(\w+))?", text)
        assert {f.number: f.name for f in d.fields} == {int(n): f for n, f, _, _ in want}, name
        for n, fname, repeated, ftype in want:
            f = d.fields_by_name[fname]
            is_repeated = (f.is_repeated if hasattr(f, "is_repeated")
                           else f.label == f.LABEL_REPEATED)
            assert is_repeated == bool(repeated), (name, fname)
            if ftype in ("bool", "uint32", "int32"):
                assert f.type == getattr(f, "TYPE_" + ftype.upper()), (name, fname)
            elif ftype and ftype != "string" and not ftype.islower():
                target = f.message_type or f.enum_type
                assert target is not None and target.name == ftype, (name, fname)
            else:
                assert f.type == f.TYPE_STRING, (name, fname)


def test_every_rpc_of_wire_md():
    _, rpcs = wire_tables()
    assert len(rpcs) == 14
    for service, method, request, stream, response in rpcs:
        s = None
        for mod in MODULES:
            s = s or mod.DESCRIPTOR.services_by_name.get(service)
        assert s is not None, service
        assert s.full_name == service  # no package: paths are /<Service>/<method>
        m = s.methods_by_name[method]
        assert (m.input_type.name, m.output_type.name) == (request, response)
        assert m.server_streaming == stream and not m.client_streaming


def test_an_error_result_decodes_as_every_response_type():
    """WIRE.md: `r` is field 1 of every response, so the encoded field 1 alone is an error
    response of any method."""
    r = api.Result(code=api.ResultCode.ERROR_ITEM_UNKNOWN, msg="unknown item: x", stack="tb")
    raw = api.ResultStatus(r=r).SerializeToString()
    for cls in (api.ResultStatus, api.MultiServiceInfo, api.ConfigStatus, api.LoggerStatus,
                api.EventStatus, api.EventQueueStatus):
        assert cls.DESCRIPTOR.fields_by_number[1].name == "r"
        assert cls.FromString(raw).r == r


def test_grpc_helper_api_names():
    assert api.ResultCode.ERROR_CUSTOM == 100
    assert api.ConfigApiVersion.CONFIG_API_SUPPORTED == 1
    assert api.ConfigApiVersion.CONFIG_API_CURRENT == 2
    assert api.ServerApiVersion.SERVER_API_CURRENT == 1
    assert api.LoggerApiVersion.LOGGER_API_CURRENT == 1
    assert api.EventApiVersion.EVENT_API_CURRENT == 2
    assert api.LoggerLevel.LVL_WARNING == 30
    assert api.ConfigValidator.CONFIG_VALID_POS_FLOAT == 5


def test_enum_values_are_names_of_the_package():
    """grpc-helper-api's __init__ star-imports its _pb2 modules, so every enum value is a
    name of the package too (`from grpc_helper_api import ERROR_CUSTOM`)."""
    enums = [getattr(m, name) for m in MODULES for name in m.DESCRIPTOR.enum_types_by_name]
    assert len(enums) == 7
    for enum in enums:
        for name, value in enum.items():
            assert getattr(api, name) == value and name in api.__all__, name
    assert (api.OK, api.ERROR_CUSTOM, api.LVL_DEBUG, api.CONFIG_VALID_POS_INT) == (0, 100, 10, 3)
    assert len(api.__all__) == len(set(api.__all__))
    namespace = {}
    exec("from grpchelper.api import *", namespace)
    assert namespace["ERROR_ITEM_UNKNOWN"] == 30 and namespace["Filter"] is api.Filter


@pytest.mark.parametrize("server_kind", ["grpcio", "grpchelper"])
def test_stubs_and_servicers_over_the_wire(channels, server_kind):
    class Config(api.ConfigServiceServicer):
        def get(self, request, context):
            return api.ConfigStatus(items=[api.ConfigItem(name=n, value="v") for n in request.names])

    pool = None
    if server_kind == "grpchelper":
        srv = grpchelper.server(2)
    else:
        from concurrent import futures
        pool = futures.ThreadPoolExecutor(2)
        srv = grpc.server(pool)
    api.add_ConfigServiceServicer_to_server(Config(), srv)
    api.add_RpcServerServiceServicer_to_server(api.RpcServerServiceServicer(), srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    try:
        ch = channels("127.0.0.1:%d" % port)
        reply = api.ConfigServiceStub(ch).get(api.Filter(names=["a", "b"]), timeout=10)
        assert [i.name for i in reply.items] == ["a", "b"]
        # The raw path has no package.
        raw = ch.unary_unary("/ConfigService/get")(api.Filter(names=["c"]).SerializeToString(),
                                                   timeout=10)
        assert api.ConfigStatus.FromString(raw).items[0].name == "c"
        # A servicer method not overridden: the generated base answers UNIMPLEMENTED.
        with pytest.raises(grpc.RpcError) as e:
            api.RpcServerServiceStub(ch).info(api.Filter(), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        assert srv.stop(None).wait(10)
        if pool is not None:
            pool.shutdown(wait=True)
