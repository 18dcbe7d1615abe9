"""The scaffolding, original against original: an ORIGINAL grpc-helper 2.3.1 RpcClient (child
process) against an ORIGINAL RpcServer (child process). Besides proving the scaffolding,
these tests pin the wire facts that ours must reproduce (FACTS.md): ServiceInfo contents,
exact error messages, error responses on the wire, and the metadata the original client
sends (recorded by a plain grpcio server)."""
import ipaddress
import json
import os
import pwd
import re
import socket
import time

import grpc
import pytest

from . import original
from .original import call, run_client, stubs

SAMPLE_REQ = "sample_pb2:SampleRequest"
GH_VERSION = "grpc-helper:2.3.1"

# Exact texts (grpc_helper/methods.py, server.py, config/cfg_manager.py, config/cfg_item.py,
# logs/logs_manager.py, client.py of grpc-helper 2.3.1)
SERVER_TOO_OLD = "Server current API version ({current}) is too old for client API version ({client})"
# NB: the original puts the CURRENT version in this message, not the supported one
CLIENT_TOO_OLD = "Client API version ({client}) is too old for server supported API version ({current})"
RAISED = "RPC returned error: {msg}"


def parse(data: bytes) -> list:
    """Top-level (field number, value) pairs of a serialized protobuf message: int for
    varints, bytes for length-delimited fields (the only wire types used here)."""
    i, out = 0, []

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            out.append((number, varint()))
        elif wire_type == 2:
            length = varint()  # (not `i += varint()`: varint() moves i)
            out.append((number, data[i:i + length]))
            i += length
        else:
            raise AssertionError(f"unexpected wire type {wire_type}")
    assert i == len(data)
    return out


def fields(hex_msg: str) -> list:
    """Top-level field numbers of a serialized message given in hex."""
    return [n for n, _ in parse(bytes.fromhex(hex_msg))]


def raised(result, rc_name, msg):
    assert result["ok"] is False, result
    assert result["exception"]["type"] == "RpcException"
    assert result["exception"]["rc_name"] == rc_name
    assert result["exception"]["message"] == RAISED.format(msg=msg)


def error_response(result, code, msg):
    """A response (exception=False) that is an error: only field 1 (r) on the wire, with
    code, msg and a non-empty Python stack."""
    assert result["ok"] is True, result
    assert set(result["response"]) == {"r"}
    assert fields(result["hex"]) == [1]
    r = result["response"]["r"]
    assert r["code"] == code
    assert r["msg"] == msg
    assert r["stack"].startswith("  File \"")
    return r


# ---------------------------------------------------------------------------------------------
# Install

def test_install_is_idempotent_and_offline_second_time(original_target, monkeypatch):
    marker = json.loads((original_target / ".installed.json").read_text())
    assert marker["packages"] == list(original.PACKAGES)

    def no_subprocess(*a, **k):
        raise AssertionError("a second ensure_installed must not run pip")
    monkeypatch.setattr(original.subprocess, "run", no_subprocess)
    assert original.ensure_installed() == original_target
    assert original.ensure_installed(original_target) == original_target


def test_child_runs_the_original_beside_our_grpcio_and_protobuf(original_target):
    import google.protobuf
    out = json.loads(original.run_python(original_target, """
import json, sys, grpc, google.protobuf, grpc_helper, grpc_helper_api, pkg_resources, argcomplete
print(json.dumps({
    "grpc_helper": [grpc_helper.__version__, grpc_helper.__file__],
    "grpc_helper_api": grpc_helper_api.__file__,
    "grpcio": [grpc.__version__, grpc.__file__],
    "protobuf": [google.protobuf.__version__, google.protobuf.__file__],
    "ours_loaded": "grpchelper" in sys.modules,
}))
"""))
    target = str(original_target)
    assert out["grpc_helper"][0] == original.ORIGINAL_VERSION
    assert out["grpc_helper"][1].startswith(target)
    assert out["grpc_helper_api"].startswith(target)
    # grpcio and protobuf are the environment's, not copies in the original's folder
    assert out["grpcio"] == [grpc.__version__, grpc.__file__]
    assert out["protobuf"] == [google.protobuf.__version__, google.protobuf.__file__]
    assert not out["grpcio"][1].startswith(target)
    assert out["ours_loaded"] is False


def test_sample_code_for_our_binding(tmp_path):
    """The same sample.proto generated against Protos/grpchelper/api/common.proto (for our
    server or client later): same messages, the import rewritten."""
    gen = original.generate_sample(tmp_path / "gen", "grpchelper")
    code = (gen / "sample_pb2.py").read_text()
    assert "from grpchelper.api import common_pb2" in code
    assert "grpc_helper_api" not in code
    assert (gen / "sample_pb2_grpc.py").exists() and not (gen / "_proto").exists()


# ---------------------------------------------------------------------------------------------
# srv

def test_srv_info_lists_builtin_and_sample_services(original_client):
    (r,) = original_client([call("srv", "info", "Filter")])
    assert r["ok"], r
    assert r["response"]["items"] == [
        {"name": "srv", "version": GH_VERSION, "current_api_version": 1, "supported_api_version": 1},
        {"name": "config", "version": GH_VERSION, "current_api_version": 2, "supported_api_version": 1},
        {"name": "log", "version": GH_VERSION, "current_api_version": 1, "supported_api_version": 1},
        {"name": "sample", "version": f"{original.SAMPLE_TITLE}:{original.SAMPLE_VERSION}",
         "current_api_version": 3, "supported_api_version": 2},
    ]
    # No r on success; items is field 2; not-proxy services carry fields 1-4 only
    assert fields(r["hex"]) == [2, 2, 2, 2]
    assert r["hex"].startswith("121c0a03737276121167")  # items{name "srv", version "grpc-helper:...


def test_srv_info_filter_and_unknown_name(original_client):
    ok, unknown = original_client([
        call("srv", "info", "Filter", {"names": ["sample", "srv"]}),
        call("srv", "info", "Filter", {"names": ["srv", "nope"]}),
    ])
    assert [i["name"] for i in ok["response"]["items"]] == ["sample", "srv"]  # the filter's order
    raised(unknown, "ERROR_ITEM_UNKNOWN", "At least one of the required service names is unknown")
    (r,) = original_client([call("srv", "info", "Filter", {"names": ["nope"]})], exception=False)
    error_response(r, "ERROR_ITEM_UNKNOWN", "At least one of the required service names is unknown")


def test_srv_shutdown_by_rpc(start_original, original_target, sample_gen):
    srv = start_original()
    (r,) = run_client(original_target, srv.port,
                      [call("srv", "shutdown", "ShutdownRequest", {"timeout": -1})],
                      gen_dir=sample_gen)
    assert r == {"ok": True, "response": {}, "hex": ""}
    assert srv.wait_exit() == 0
    assert srv.lines == [f"READY {srv.port}", "STOPPED"]


def test_stop_by_sigterm(start_original):
    srv = start_original()
    srv.proc.terminate()
    assert srv.wait_exit() == 0
    assert srv.lines[-1] == "STOPPED"


def test_busy_port_then_retry_on_another(start_original, monkeypatch):
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        with pytest.raises(original.PortBusy) as e:
            start_original(port=busy)
        assert re.fullmatch(rf"BUSY {busy} Failed to start RPC server on port {busy}: "
                            rf"Failed to bind to address \[::\]:{busy}; .*", str(e.value))
        # A free port that was taken meanwhile: start_server tries another one
        picks = iter([busy, original.free_port()])
        real = original.free_port
        monkeypatch.setattr(original, "free_port", lambda: next(picks, None) or real())
        srv = start_original()
        assert srv.port != busy
        assert srv.running


# ---------------------------------------------------------------------------------------------
# config

SAMPLE_INT = {"name": "sample-int", "description": "A sample int item", "value": "12",
              "default_value": "12", "validator": "CONFIG_VALID_INT"}
SAMPLE_STR = {"name": "sample-str", "description": "A sample string item", "value": "abc",
              "default_value": "abc", "can_be_empty": True}


def test_config_get_set_reset(original_client, original_server):
    get_all, get_one, static, ignored, set_ok, set_bad, set_unknown, set_empty, reset, reset_empty = \
        original_client([
            call("config", "get", "Filter"),
            call("config", "get", "Filter", {"names": ["sample-str"]}),
            call("config", "get", "Filter", {"names": ["rpc-max-workers"]}),
            call("config", "get", "Filter", {"names": ["nope"], "ignore_unknown": True}),
            call("config", "set", "ConfigUpdate", {"items": [{"name": "sample-int", "value": "42"}]}),
            call("config", "set", "ConfigUpdate", {"items": [{"name": "sample-int", "value": "abc"}]}),
            call("config", "set", "ConfigUpdate", {"items": [{"name": "nope", "value": "1"}]}),
            call("config", "set", "ConfigUpdate", {}),
            call("config", "reset", "Filter", {"names": ["sample-int"]}),
            call("config", "reset", "Filter"),
        ])
    # get: the user items only (static ones, rpc-* included, are unknown to the service)
    assert get_all["response"] == {"items": [SAMPLE_INT, SAMPLE_STR]}
    assert get_one["response"] == {"items": [SAMPLE_STR]}
    raised(static, "ERROR_ITEM_UNKNOWN", "Unknown config item names in filter request: rpc-max-workers")
    assert ignored == {"ok": True, "response": {}, "hex": ""}
    # set: returns the updated items; validation and name errors
    assert set_ok["response"] == {"items": [dict(SAMPLE_INT, value="42")]}
    raised(set_bad, "ERROR_PARAM_INVALID", "Invalid int value for config item sample-int: abc")
    raised(set_unknown, "ERROR_ITEM_UNKNOWN", "Unknown config item names in filter request: nope")
    raised(set_empty, "ERROR_PARAM_MISSING", "Input request list is empty")
    # reset: back to the default; an empty filter is an error
    assert reset["response"] == {"items": [SAMPLE_INT]}
    raised(reset_empty, "ERROR_PARAM_MISSING", "Input request list is empty")
    # config.json holds the non-default user values; reset does NOT rewrite it (2.3.1)
    assert json.loads((original_server.workspace / "config.json").read_text()) == {"sample-int": "42"}
    # set of the default value rewrites it without the item
    original_client([call("config", "set", "ConfigUpdate", {"items": [{"name": "sample-int", "value": "12"}]})])
    assert json.loads((original_server.workspace / "config.json").read_text()) == {}


def test_config_empty_value(original_client):
    empty_ok, empty_bad, back = original_client([
        call("config", "set", "ConfigUpdate", {"items": [{"name": "sample-str", "value": ""}]}),
        call("config", "set", "ConfigUpdate", {"items": [{"name": "sample-int", "value": ""}]}),
        call("config", "reset", "Filter", {"names": ["sample-str"]}),
    ])
    assert empty_ok["response"] == {"items": [{k: v for k, v in SAMPLE_STR.items() if k != "value"}]}
    raised(empty_bad, "ERROR_PARAM_MISSING", "Empty value provided for item sample-int (not supported)")
    assert back["response"] == {"items": [SAMPLE_STR]}


# ---------------------------------------------------------------------------------------------
# log

def test_log_get_set_reset(original_client, original_server):
    root, manager, empty, set_debug, set_off, reset, after = original_client([
        call("log", "get", "Filter", {"names": [""]}),
        call("log", "get", "Filter", {"names": ["SampleManager"]}),
        call("log", "get", "Filter"),
        call("log", "set", "LoggerUpdate",
             {"items": [{"name": "sample.logger", "enabled": True, "level": "LVL_DEBUG"}]}),
        call("log", "set", "LoggerUpdate",
             {"items": [{"name": "sample.off", "enabled": False, "level": "LVL_ERROR"}]}),
        call("log", "reset", "Filter", {"names": ["sample.logger"]}),
        call("log", "get", "Filter", {"names": ["sample.logger", "sample.off"]}),
    ])
    # "" is the root logger, named "root"; a manager's logger is named after its class, level
    # NOTSET -> LVL_UNKNOWN (0, so absent)
    assert root["response"] == {"items": [{"name": "root", "enabled": True, "level": "LVL_WARNING"}]}
    assert manager["response"] == {"items": [{"name": "SampleManager", "enabled": True}]}
    raised(empty, "ERROR_PARAM_MISSING", "Empty request")
    assert set_debug["response"] == {"items": [{"name": "sample.logger", "enabled": True, "level": "LVL_DEBUG"}]}
    assert set_off["response"] == {"items": [{"name": "sample.off", "level": "LVL_ERROR"}]}
    assert reset["response"] == {"items": [{"name": "sample.logger", "enabled": True}]}
    assert after["response"] == {"items": [{"name": "sample.logger", "enabled": True},
                                           {"name": "sample.off", "level": "LVL_ERROR"}]}
    # loggers.json in the workspace: level name without LVL_, or false when disabled; reset
    # removes the entry
    assert json.loads((original_server.workspace / "loggers.json").read_text()) == {"sample.off": False}
    original_client([call("log", "reset", "Filter", {"names": ["sample.off"]})])
    assert json.loads((original_server.workspace / "loggers.json").read_text()) == {}


# ---------------------------------------------------------------------------------------------
# API versions

@pytest.mark.parametrize("service,method,request_type,current,supported", [
    ("srv", "info", "Filter", 1, 1),
    ("config", "get", "Filter", 2, 1),
    ("log", "get", "Filter", 1, 1),
    ("sample", "echo", SAMPLE_REQ, 3, 2),
])
def test_version_errors_both_ways(original_client, service, method, request_type, current, supported):
    request = {"names": [""]} if service == "log" else {}
    too_new, too_old, ok_low, ok_high, unversioned = current + 1, supported - 1, supported, current, None
    m = stubs(new=(service, too_new), old=(service, too_old), low=(service, ok_low),
              high=(service, ok_high), bare=(service, unversioned))
    new, old, low, high, bare = original_client(
        [call(n, method, request_type, request) for n in ("new", "old", "low", "high", "bare")],
        stubs_map=m)
    raised(new, "ERROR_API_SERVER_TOO_OLD", SERVER_TOO_OLD.format(current=current, client=too_new))
    raised(old, "ERROR_API_CLIENT_TOO_OLD", CLIENT_TOO_OLD.format(current=current, client=too_old))
    assert low["ok"] and high["ok"] and bare["ok"], (low, high, bare)
    # The same errors as responses (exception=False): only r, with a stack
    new, old = original_client(
        [call(n, method, request_type, request) for n in ("new", "old")], stubs_map=m, exception=False)
    r = error_response(new, "ERROR_API_SERVER_TOO_OLD", SERVER_TOO_OLD.format(current=current, client=too_new))
    assert "in delegate_call" in r["stack"]
    error_response(old, "ERROR_API_CLIENT_TOO_OLD", CLIENT_TOO_OLD.format(current=current, client=too_old))


def test_version_error_on_streaming_method_is_its_only_message(original_client):
    (r,) = original_client([call("too_new", "count", SAMPLE_REQ, {"count": 3})],
                           stubs_map=stubs(too_new=("sample", 4)), exception=False)
    assert r["ok"] and len(r["responses"]) == 1
    assert set(r["responses"][0]) == {"r"} and fields(r["hex"][0]) == [1]
    assert r["responses"][0]["r"]["code"] == "ERROR_API_SERVER_TOO_OLD"
    assert r["responses"][0]["r"]["msg"] == SERVER_TOO_OLD.format(current=3, client=4)


# ---------------------------------------------------------------------------------------------
# The sample service: results, errors, streaming

def test_sample_results_and_errors(original_client):
    echo, fail, custom, crash, check_bad, check_ok, missing = original_client([
        call("sample", "echo", SAMPLE_REQ, {"text": "hi"}),
        call("sample", "fail", SAMPLE_REQ, {"code": 30, "message": "boom"}),
        call("sample", "fail", SAMPLE_REQ, {"code": 101, "message": "custom"}),
        call("sample", "crash", SAMPLE_REQ, {"message": "kaput"}),
        call("sample", "check", SAMPLE_REQ, {}),
        call("sample", "check", SAMPLE_REQ, {"text": "x"}),
        call("sample", "missing", SAMPLE_REQ, {}),
    ])
    assert echo == {"ok": True, "response": {"text": "HI"}, "hex": "12024849"}
    raised(fail, "ERROR_ITEM_UNKNOWN", "boom")
    # codes >= ERROR_CUSTOM are returned, not raised
    assert custom["ok"] and custom["response"]["r"]["code"] == 101
    assert custom["response"]["r"]["msg"] == "custom"
    # any other exception in a manager -> ERROR with str(e)
    raised(crash, "ERROR", "kaput")
    raised(check_bad, "ERROR_PARAM_MISSING", "Missing text")
    assert check_ok == {"ok": True, "response": {}, "hex": ""}
    # declared in the .proto, not implemented by the manager: gRPC UNIMPLEMENTED -> ERROR_RPC
    assert missing["exception"]["rc_name"] == "ERROR_RPC"
    assert re.match(r"RPC error \(on \[RPC\] \[interop-client\]\S+@\S+\(\S+\) api:3 >>> "
                    r"SampleServiceStub\(127\.0\.0\.1:\d+\)\.missing \(SampleRequest\{\}\)\): "
                    r"<_InactiveRpcError of RPC that terminated with:\n\tstatus = StatusCode\.UNIMPLEMENTED\n"
                    r"\tdetails = \"Method not implemented!\"", missing["exception"]["message"])


def test_sample_error_responses_on_the_wire(original_client):
    fail, crash, check = original_client([
        call("sample", "fail", SAMPLE_REQ, {"code": 30, "message": "boom"}),
        call("sample", "crash", SAMPLE_REQ, {"message": "kaput"}),
        call("sample", "check", SAMPLE_REQ, {}),
    ], exception=False)
    r = error_response(fail, "ERROR_ITEM_UNKNOWN", "boom")
    # stack = "".join(traceback.format_tb(e.__traceback__)): the frames from the server's
    # method wrapper down to the raise, no "Traceback" header, no exception line
    assert r["stack"].endswith("in fail\n    raise RpcException(request.message, rc=request.code)\n")
    assert "Traceback" not in r["stack"]
    # field 1 = Result{1: code, 2: msg, 3: stack}
    assert fail["hex"].startswith("0a") and fail["hex"][6:18] == "081e1204626f"
    r = error_response(crash, "ERROR", "kaput")
    assert r["stack"].endswith("in crash\n    raise ValueError(request.message)\n")
    error_response(check, "ERROR_PARAM_MISSING", "Missing text")


def test_sample_streaming(original_client):
    plain, raising, limited = original_client([
        call("sample", "count", SAMPLE_REQ, {"count": 3, "text": "x"}),
        call("sample", "count", SAMPLE_REQ, {"count": 5, "text": "y", "fail_after": 2,
                                             "code": 31, "message": "bad"}),
        call("sample", "count", SAMPLE_REQ, {"count": 1000}, limit=2),
    ])
    assert plain["responses"] == [{"text": "x0"}, {"text": "x1", "index": 1}, {"text": "x2", "index": 2}]
    # the client yields the messages before the error, then raises
    raised(raising, "ERROR_ITEM_CONFLICT", "bad")
    assert raising["responses"] == [{"text": "y0"}, {"text": "y1", "index": 1}]
    assert len(limited["responses"]) == 2
    # exception=False: the error is the last message, only r
    (returned,) = original_client([call("sample", "count", SAMPLE_REQ, {
        "count": 5, "text": "y", "fail_after": 2, "code": 31, "message": "bad"})], exception=False)
    assert returned["responses"][:2] == [{"text": "y0"}, {"text": "y1", "index": 1}]
    assert len(returned["responses"]) == 3
    last = returned["responses"][2]["r"]
    assert (last["code"], last["msg"]) == ("ERROR_ITEM_CONFLICT", "bad")
    assert fields(returned["hex"][2]) == [1]


# ---------------------------------------------------------------------------------------------
# What the original client sends

def test_client_metadata(metadata_recorder, original_target, sample_gen):
    m = stubs(log=None, srv0=("srv", 0), events=("events", 2))
    results = run_client(original_target, metadata_recorder.port, [
        call("srv", "info", "Filter"),
        call("config", "get", "Filter"),
        call("log", "get", "Filter"),
        call("sample", "echo", SAMPLE_REQ),
        call("srv0", "info", "Filter"),
        call("sample", "count", SAMPLE_REQ),
        call("events", "inspect", "Empty"),
    ], stubs_map=m, gen_dir=sample_gen, name="interop-client")
    # UNIMPLEMENTED is not retried: one call each, raised as ERROR_RPC
    assert all(r["exception"]["rc_name"] == "ERROR_RPC" for r in results), results
    assert "StatusCode.UNIMPLEMENTED" in results[0]["exception"]["message"]
    assert "api:0 >>> LoggerServiceStub" in results[2]["exception"]["message"]
    calls = metadata_recorder.calls
    assert [c[0] for c in calls] == ["/RpcServerService/info", "/ConfigService/get",
                                     "/LoggerService/get", "/SampleService/echo",
                                     "/RpcServerService/info", "/SampleService/count",
                                     "/EventService/inspect"]
    user = pwd.getpwuid(os.getuid()).pw_name
    host = socket.gethostname()
    seen = []
    for (method, md), version in zip(calls, ["1", "2", None, "3", "0", "3", "2"]):
        own = [(k, v) for k, v in md if k != "user-agent"]
        keys = sorted(k for k, _ in own)
        expected = sorted(["client", "user", "host", "ip"] + (["api_version"] if version else []))
        assert keys == expected, (method, md)
        d = dict(own)
        assert (d["client"], d["user"], d["host"], d.get("api_version")) == \
            ("interop-client", user, host, version)
        assert ipaddress.ip_address(d["ip"]).version == 4
        assert dict(md)["user-agent"].startswith("grpc-python/")
        seen.append(d["ip"])
    assert len(set(seen)) == 1


def test_client_metadata_without_name(metadata_recorder, original_target, sample_gen):
    run_client(original_target, metadata_recorder.port, [call("srv", "info", "Filter")],
               gen_dir=sample_gen, name="")
    ((method, md),) = metadata_recorder.calls
    assert sorted(k for k, _ in md if k != "user-agent") == ["api_version", "host", "ip", "user"]


def test_client_retries_unavailable_then_raises_error_rpc(original_target, sample_gen):
    port = original.free_port()  # nobody listens there
    t0 = time.monotonic()
    (r,) = run_client(original_target, port, [call("srv", "info", "Filter")], gen_dir=sample_gen,
                      timeout=1.2)
    elapsed = time.monotonic() - t0
    assert r["exception"]["rc_name"] == "ERROR_RPC"
    assert re.match(r"RPC error \(on \[RPC\] \[interop-client\]\S+ api:1 >>> "
                    rf"RpcServerServiceStub\(127\.0\.0\.1:{port}\)\.info \(Filter\{{\}}\)\): "
                    r"<_InactiveRpcError of RPC that terminated with:\n\tstatus = StatusCode\.UNAVAILABLE",
                    r["exception"]["message"])
    # retries after 0.5 s, then 1 s (0.5 doubling) while less than `timeout` has elapsed
    assert elapsed >= 1.5


# ---------------------------------------------------------------------------------------------
# The server's checks on raw calls (plain grpcio client, hand-encoded messages)

def raw_info(port, metadata):
    """/RpcServerService/info with an empty Filter (zero bytes) and `metadata`; returns the
    response's top-level fields and, when field 1 (r) is there, the Result's fields."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        info = ch.unary_unary("/RpcServerService/info")
        data = info(b"", metadata=metadata, timeout=10)
    top = parse(data)
    r = dict(parse(top[0][1])) if top and top[0][0] == 1 else None
    return top, r


def test_server_checks_api_version_metadata_only(original_server):
    # no metadata at all: no version check, the answer is the service list
    top, r = raw_info(original_server.port, ())
    assert r is None and [n for n, _ in top] == [2, 2, 2, 2]
    # only api_version matters: a too new version is refused whatever sent it
    top, r = raw_info(original_server.port, (("api_version", "2"),))
    assert [n for n, _ in top] == [1]
    assert r == {1: 12, 2: SERVER_TOO_OLD.format(current=1, client=2).encode(), 3: r[3]}
    # a value that is not a decimal integer: int() fails in the check -> ERROR with its text
    top, r = raw_info(original_server.port, (("api_version", "abc"),))
    assert (r[1], r[2]) == (1, b"invalid literal for int() with base 10: 'abc'")
    # an empty value is the same as no key
    top, r = raw_info(original_server.port, (("api_version", ""),))
    assert r is None
