"""Wire interop with the ORIGINAL grpc-helper 2.3.1, both directions (issue 5, "Compatibility
and tests"):

1. an ORIGINAL RpcClient (child process, `run_client`) against OUR grpchelper.RpcServer
   (child process, `_our_server.py`: the binding on bindings/python, the library found by the
   binding's lookup, GRPCHELPER_LIBRARY first);
2. OUR grpchelper.RpcClient (in this process) against an ORIGINAL RpcServer (child process,
   `start_server`).

Where our side must match the original, the assertions are FACTS.md's (the ones
test_original_sanity.py pins original against original); where ours differs on purpose
(texts of our own errors, versions, a few behaviours) they assert ours, listed in FACTS.md
under "Ours vs the original". No sleeps: READY lines with timeouts, joined threads; every
child is waited for and every temporary folder removed.
"""
import importlib
import ipaddress
import json
import logging
import os
import pwd
import queue
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import pytest

from . import original
from .original import call, run_client, stubs
# (helpers and FACTS.md's texts; `raised` checks what the original client raised:
# RpcException, its rc, "RPC returned error: {msg}")
from .test_original_sanity import (CLIENT_TOO_OLD, GH_VERSION, SAMPLE_INT, SAMPLE_REQ, SAMPLE_STR,
                                   SERVER_TOO_OLD, fields, parse, raised, raw_info)

BINDINGS_PYTHON = original.ROOT / "bindings" / "python"
OUR_SERVER_SCRIPT = original.HERE / "_our_server.py"
SAMPLE_VERSION = f"{original.SAMPLE_TITLE}:{original.SAMPLE_VERSION}"
METADATA_PROBE = "?metadata"       # _our_server.py: echo answers the call's metadata
USER = pwd.getpwuid(os.getuid()).pw_name
HOST = socket.gethostname()

# The texts of our own errors where they differ from the original's (FACTS.md, "Ours vs the
# original"): built-in services, config and log are the library's.
OUR_CLIENT_TOO_OLD = "Client API version ({client}) is too old for server supported API version ({supported})"
# (the config and srv errors are the original's texts, word for word)
OUR_UNKNOWN_SERVICE = "At least one of the required service names is unknown"
OUR_UNKNOWN_CONFIG = "Unknown config item names in filter request: {name}"
OUR_INVALID_INT = "Invalid int value for config item {name}: {value}"
OUR_EMPTY_VALUE = "Empty value provided for item {name} (not supported)"
OUR_EMPTY_UPDATE = "Input request list is empty"
OUR_EMPTY_NAMES = "Input request list is empty"
OUR_BAD_API_VERSION = 'Invalid api_version metadata: "{text}"'
# Our client's messages: an error result as the original's ("RPC returned error: msg"); a
# failed call names the method and target
OUR_RAISED = "RPC returned error: {msg}"
OUR_RPC_ERROR = "RPC error (on {path} @ 127.0.0.1:{port}): {status}: {details}"


def error_response(result, code, msg):
    """An error response (exception=False): only field 1 (r) on the wire, with code, msg
    and a non-empty stack (for errors of the library, e.g. version checks, ours is not a
    Python traceback); returns r."""
    assert result["ok"] is True, result
    assert set(result["response"]) == {"r"}
    assert fields(result["hex"]) == [1]
    r = result["response"]["r"]
    assert (r["code"], r["msg"]) == (code, msg)
    assert r["stack"]
    return r


def result_fields(hex_msg: str) -> list:
    """[(field, value), ...] of the Result in field 1 of an error response."""
    ((number, r),) = parse(bytes.fromhex(hex_msg))
    assert number == 1
    return parse(r)


# ---------------------------------------------------------------------------------------------
# Our server in a child process

def our_env(gen_dir: Path) -> dict:
    """Environment of a child running our binding: bindings/python then the sample code on
    PYTHONPATH; GRPCHELPER_LIBRARY kept when set (else the binding's lookup order)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(BINDINGS_PYTHON), str(gen_dir)])
    env["PYTHONUNBUFFERED"] = "1"
    return env


class OurServer(original.OriginalServer):
    """OUR RpcServer (srv, config, log and the sample service) in a child process, on a port
    it picks (0): `port` is known once `wait_ready()` has read "READY <port>". Stopped as the
    original one (`stop()`: "shutdown" then EOF on stdin, then SIGTERM, then SIGKILL)."""

    def __init__(self, gen_dir: Path, workspace: Path, cli_config: dict = None,
                 with_events: bool = False, options: dict = None):
        self.gen_dir = Path(gen_dir)
        self.workspace = Path(workspace)
        self.port = None
        self.library_version = None
        self.lines = []
        self._queue = queue.Queue()
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.stderr_path = self.workspace.parent / "our-server.stderr"
        spec = {"workspace": str(self.workspace), "cli_config": cli_config or {},
                "with_events": with_events}
        spec.update(options or {})      # _our_server.py's optional keys ("proxied")
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(OUR_SERVER_SCRIPT), json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            env=our_env(self.gen_dir), cwd=str(self.workspace.parent))
        self._reader = threading.Thread(target=self._read, name="our-server", daemon=True)
        self._reader.start()

    def wait_ready(self, timeout: float = original.START_TIMEOUT):
        self.library_version = self.wait_line(r"LIBRARY (\S+)$", timeout).group(1)
        self.port = int(self.wait_line(r"READY (\d+)$", timeout).group(1))
        assert self.port > 0


class OurServers:
    """Starts our servers in fresh folders under `base`; stop_all() stops them all."""

    def __init__(self, gen, workdir):
        self.gen = gen
        self.base = Path(tempfile.mkdtemp(prefix="our-servers-", dir=workdir))
        self.started = []

    def __call__(self, **kwargs):
        ws = Path(tempfile.mkdtemp(prefix="srv-", dir=self.base)) / "workspace"
        srv = OurServer(self.gen, ws, **kwargs)
        self.started.append(srv)
        try:
            srv.wait_ready()
        except BaseException:
            srv.stop()
            raise
        return srv

    def stop_all(self):
        return [srv.stop() for srv in self.started]


@pytest.fixture(scope="session")
def our_gen(workdir):
    """The sample code generated against our Protos/grpchelper/api/common.proto."""
    return original.generate_sample(workdir / "gen-grpchelper", "grpchelper")


@pytest.fixture(scope="module")
def our_server(original_target, our_gen, workdir):
    """One of our servers for this module's tests (needs the original: its client)."""
    servers = OurServers(our_gen, workdir)
    srv = servers()
    yield srv
    assert servers.stop_all() == [0], srv.stderr()[-3000:]
    assert srv.lines[-1] == "STOPPED"


@pytest.fixture
def start_ours(our_gen, workdir):
    servers = OurServers(our_gen, workdir)
    yield servers
    servers.stop_all()


@pytest.fixture
def to_ours(original_target, sample_gen, our_server):
    """run_client (the ORIGINAL client, in a child) bound to our_server."""
    def run(calls, **kwargs):
        kwargs.setdefault("gen_dir", sample_gen)
        return run_client(original_target, our_server.port, calls, **kwargs)
    return run


# ---------------------------------------------------------------------------------------------
# 1. The original client against our server

def test_ours_srv_info(to_ours, our_server):
    assert re.fullmatch(r"\d+\.\d+\.\d+", our_server.library_version)
    builtin = f"grpchelper:{our_server.library_version}"
    (r,) = to_ours([call("srv", "info", "Filter")])
    assert r["ok"], r
    assert r["response"]["items"] == [
        {"name": "srv", "version": builtin, "current_api_version": 1, "supported_api_version": 1},
        {"name": "config", "version": builtin, "current_api_version": 2, "supported_api_version": 1},
        {"name": "log", "version": builtin, "current_api_version": 1, "supported_api_version": 1},
        {"name": "sample", "version": SAMPLE_VERSION, "current_api_version": 3, "supported_api_version": 2},
    ]
    # No r on success; items is field 2; a non-proxy ServiceInfo carries fields 1-4 only
    assert fields(r["hex"]) == [2, 2, 2, 2]
    items = [v for _, v in parse(bytes.fromhex(r["hex"]))]
    assert all([n for n, _ in parse(item)] == [1, 2, 3, 4] for item in items)
    assert items[0] == b"\x0a\x03srv\x12" + bytes([len(builtin)]) + builtin.encode() + b"\x18\x01\x20\x01"

    ok, unknown = to_ours([
        call("srv", "info", "Filter", {"names": ["sample", "srv"]}),
        call("srv", "info", "Filter", {"names": ["srv", "nope"]}),
    ])
    assert [i["name"] for i in ok["response"]["items"]] == ["sample", "srv"]  # the filter's order
    raised(unknown, "ERROR_ITEM_UNKNOWN", OUR_UNKNOWN_SERVICE.format(name="nope"))
    (r,) = to_ours([call("srv", "info", "Filter", {"names": ["nope"]})], exception=False)
    error_response(r, "ERROR_ITEM_UNKNOWN", OUR_UNKNOWN_SERVICE.format(name="nope"))


def test_ours_config_get_set_reset(to_ours, our_server):
    config_json = our_server.workspace / "config.json"
    get_all, get_one, static, ignored, set_ok = to_ours([
        call("config", "get", "Filter"),
        call("config", "get", "Filter", {"names": ["sample-str"]}),
        call("config", "get", "Filter", {"names": ["rpc-max-workers"]}),
        call("config", "get", "Filter", {"names": ["nope"], "ignore_unknown": True}),
        call("config", "set", "ConfigUpdate", {"items": [{"name": "sample-int", "value": "42"}]}),
    ])
    # get: the user items only, in declaration order (static ones are unknown to the service)
    assert get_all["response"] == {"items": [SAMPLE_INT, SAMPLE_STR]}
    assert fields(get_all["hex"]) == [2, 2]
    assert get_one["response"] == {"items": [SAMPLE_STR]}
    raised(static, "ERROR_ITEM_UNKNOWN", OUR_UNKNOWN_CONFIG.format(name="rpc-max-workers"))
    assert ignored == {"ok": True, "response": {}, "hex": ""}
    # set: the updated items, persisted (non-default user values)
    assert set_ok["response"] == {"items": [dict(SAMPLE_INT, value="42")]}
    assert json.loads(config_json.read_text()) == {"sample-int": "42"}

    set_bad, set_unknown, set_empty, empty_value, reset_empty, after = to_ours([
        call("config", "set", "ConfigUpdate", {"items": [{"name": "sample-int", "value": "abc"}]}),
        call("config", "set", "ConfigUpdate", {"items": [{"name": "nope", "value": "1"}]}),
        call("config", "set", "ConfigUpdate", {}),
        call("config", "set", "ConfigUpdate", {"items": [{"name": "sample-int", "value": ""}]}),
        call("config", "reset", "Filter"),
        call("config", "get", "Filter", {"names": ["sample-int"]}),
    ])
    raised(set_bad, "ERROR_PARAM_INVALID", OUR_INVALID_INT.format(name="sample-int", value="abc"))
    raised(set_unknown, "ERROR_ITEM_UNKNOWN", OUR_UNKNOWN_CONFIG.format(name="nope"))
    raised(set_empty, "ERROR_PARAM_MISSING", OUR_EMPTY_UPDATE)
    raised(empty_value, "ERROR_PARAM_MISSING", OUR_EMPTY_VALUE.format(name="sample-int"))
    raised(reset_empty, "ERROR_PARAM_MISSING", OUR_EMPTY_NAMES)
    assert after["response"] == {"items": [dict(SAMPLE_INT, value="42")]}   # nothing applied

    # reset: back to the default; ours rewrites config.json (the original 2.3.1 does not)
    (reset,) = to_ours([call("config", "reset", "Filter", {"names": ["sample-int"]})])
    assert reset["response"] == {"items": [SAMPLE_INT]}
    assert json.loads(config_json.read_text()) == {}

    # an empty value where it may be empty, then back
    empty_ok, back = to_ours([
        call("config", "set", "ConfigUpdate", {"items": [{"name": "sample-str", "value": ""}]}),
        call("config", "reset", "Filter", {"names": ["sample-str"]}),
    ])
    assert empty_ok["response"] == {"items": [{k: v for k, v in SAMPLE_STR.items() if k != "value"}]}
    assert back["response"] == {"items": [SAMPLE_STR]}


def test_ours_log_get_set_reset(to_ours, our_server):
    loggers_json = our_server.workspace / "loggers.json"
    root, manager, empty, set_debug, set_off, reset, after = to_ours([
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
    # "" is the root logger, named "root": Python's, at WARNING by default (as the original)
    assert root["response"] == {"items": [{"name": "root", "enabled": True, "level": "LVL_WARNING"}]}
    assert manager["response"] == {"items": [{"name": "SampleManager", "enabled": True}]}
    raised(empty, "ERROR_PARAM_MISSING", "Empty request")
    assert set_debug["response"] == {"items": [{"name": "sample.logger", "enabled": True, "level": "LVL_DEBUG"}]}
    assert set_off["response"] == {"items": [{"name": "sample.off", "level": "LVL_ERROR"}]}
    assert reset["response"] == {"items": [{"name": "sample.logger", "enabled": True}]}
    assert after["response"] == {"items": [{"name": "sample.logger", "enabled": True},
                                           {"name": "sample.off", "level": "LVL_ERROR"}]}
    assert json.loads(loggers_json.read_text()) == {"sample.off": False}
    (r,) = to_ours([call("log", "reset", "Filter", {"names": ["sample.off"]})])
    assert r["response"] == {"items": [{"name": "sample.off", "enabled": True}]}
    assert json.loads(loggers_json.read_text()) == {}


@pytest.mark.parametrize("service,method,request_type,current,supported", [
    ("srv", "info", "Filter", 1, 1),
    ("config", "get", "Filter", 2, 1),
    ("log", "get", "Filter", 1, 1),
    ("sample", "echo", SAMPLE_REQ, 3, 2),
])
def test_ours_version_errors_both_ways(to_ours, service, method, request_type, current, supported):
    request = {"names": [""]} if service == "log" else {}
    too_new, too_old = current + 1, supported - 1     # the original client sends 0 as "0"
    m = stubs(new=(service, too_new), old=(service, too_old), low=(service, supported),
              high=(service, current), bare=(service, None))
    names = ("new", "old", "low", "high", "bare")
    new, old, low, high, bare = to_ours([call(n, method, request_type, request) for n in names],
                                        stubs_map=m)
    raised(new, "ERROR_API_SERVER_TOO_OLD", SERVER_TOO_OLD.format(current=current, client=too_new))
    # ours names the supported version (the original: the current one)
    raised(old, "ERROR_API_CLIENT_TOO_OLD", OUR_CLIENT_TOO_OLD.format(supported=supported, client=too_old))
    assert low["ok"] and high["ok"] and bare["ok"], (low, high, bare)
    # The same errors as responses (exception=False): only r, with a stack
    new, old = to_ours([call(n, method, request_type, request) for n in ("new", "old")],
                       stubs_map=m, exception=False)
    error_response(new, "ERROR_API_SERVER_TOO_OLD", SERVER_TOO_OLD.format(current=current, client=too_new))
    error_response(old, "ERROR_API_CLIENT_TOO_OLD",
                   OUR_CLIENT_TOO_OLD.format(supported=supported, client=too_old))


def test_ours_version_error_on_streaming_method_is_its_only_message(to_ours):
    (r,) = to_ours([call("too_new", "count", SAMPLE_REQ, {"count": 3})],
                   stubs_map=stubs(too_new=("sample", 4)), exception=False)
    assert r["ok"] and len(r["responses"]) == 1, r
    assert set(r["responses"][0]) == {"r"} and fields(r["hex"][0]) == [1]
    assert r["responses"][0]["r"]["code"] == "ERROR_API_SERVER_TOO_OLD"
    assert r["responses"][0]["r"]["msg"] == SERVER_TOO_OLD.format(current=3, client=4)


def test_ours_checks_api_version_metadata_only(our_server):
    """Raw calls (plain grpcio client): the api_version key alone decides."""
    top, r = raw_info(our_server.port, ())
    assert r is None and [n for n, _ in top] == [2, 2, 2, 2]
    top, r = raw_info(our_server.port, (("api_version", "2"),))
    assert [n for n, _ in top] == [1]
    assert (r[1], r[2]) == (12, SERVER_TOO_OLD.format(current=1, client=2).encode()) and r[3]
    # not a decimal integer: ERROR (as the original's int() failing), with our text
    top, r = raw_info(our_server.port, (("api_version", "abc"),))
    assert (r[1], r[2]) == (1, OUR_BAD_API_VERSION.format(text="abc").encode())


def test_ours_empty_api_version_is_no_version(our_server):
    """An empty api_version value is no version, as the original's check skips it."""
    top, r = raw_info(our_server.port, (("api_version", ""),))
    assert r is None and [n for n, _ in top] == [2, 2, 2, 2]


def test_ours_sample_results_and_errors(to_ours, our_server):
    echo, fail, custom, crash, check_bad, check_ok, missing = to_ours([
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
    assert fields(custom["hex"]) == [1]
    # any other exception in a manager -> ERROR with str(e)
    raised(crash, "ERROR", "kaput")
    raised(check_bad, "ERROR_PARAM_MISSING", "Missing text")
    assert check_ok == {"ok": True, "response": {}, "hex": ""}
    # declared in the .proto, not implemented by the manager: gRPC UNIMPLEMENTED -> ERROR_RPC
    assert missing["exception"]["rc_name"] == "ERROR_RPC"
    assert re.match(r"RPC error \(on \[RPC\] \[interop-client\]\S+@\S+\(\S+\) api:3 >>> "
                    rf"SampleServiceStub\(127\.0\.0\.1:{our_server.port}\)\.missing \(SampleRequest\{{\}}\)\): "
                    r"<_InactiveRpcError of RPC that terminated with:\n\tstatus = StatusCode\.UNIMPLEMENTED\n"
                    r"\tdetails = \"Method not implemented!\"", missing["exception"]["message"])


def test_ours_error_responses_on_the_wire(to_ours):
    fail, crash, check = to_ours([
        call("sample", "fail", SAMPLE_REQ, {"code": 30, "message": "boom"}),
        call("sample", "crash", SAMPLE_REQ, {"message": "kaput"}),
        call("sample", "check", SAMPLE_REQ, {}),
    ], exception=False)
    # stack: the Python frames (traceback.format_tb) from the binding's dispatcher down to
    # the raise, no "Traceback" header, no exception line: as the original's
    r = error_response(fail, "ERROR_ITEM_UNKNOWN", "boom")
    assert r["stack"].startswith('  File "')
    assert r["stack"].endswith("in fail\n    raise RpcException(request.message, rc=request.code)\n")
    assert "Traceback" not in r["stack"]
    # field 1 = Result{1: code, 2: msg, 3: stack}, in that order
    assert result_fields(fail["hex"]) == [(1, 30), (2, b"boom"), (3, r["stack"].encode())]
    r = error_response(crash, "ERROR", "kaput")
    assert r["stack"].endswith("in crash\n    raise ValueError(request.message)\n")
    assert [n for n, _ in result_fields(crash["hex"])] == [1, 2, 3]
    error_response(check, "ERROR_PARAM_MISSING", "Missing text")


def test_ours_streaming(to_ours):
    plain, raising, limited = to_ours([
        call("sample", "count", SAMPLE_REQ, {"count": 3, "text": "x"}),
        call("sample", "count", SAMPLE_REQ, {"count": 5, "text": "y", "fail_after": 2,
                                             "code": 31, "message": "bad"}),
        call("sample", "count", SAMPLE_REQ, {"count": 1000}, limit=2),
    ])
    assert plain["responses"] == [{"text": "x0"}, {"text": "x1", "index": 1}, {"text": "x2", "index": 2}]
    assert plain["hex"] == ["12027830", "120278311801", "120278321802"]
    # the client yields the messages before the error, then raises
    raised(raising, "ERROR_ITEM_CONFLICT", "bad")
    assert raising["responses"] == [{"text": "y0"}, {"text": "y1", "index": 1}]
    assert limited["responses"] == [{"text": "0"}, {"text": "1", "index": 1}]
    # exception=False: the error is the last message, only r
    (returned,) = to_ours([call("sample", "count", SAMPLE_REQ, {
        "count": 5, "text": "y", "fail_after": 2, "code": 31, "message": "bad"})], exception=False)
    assert returned["responses"][:2] == [{"text": "y0"}, {"text": "y1", "index": 1}]
    assert len(returned["responses"]) == 3
    last = returned["responses"][2]["r"]
    assert (last["code"], last["msg"]) == ("ERROR_ITEM_CONFLICT", "bad")
    assert last["stack"].endswith("in count\n    raise RpcException(request.message, rc=request.code)\n")
    assert fields(returned["hex"][2]) == [1]
    # a later call still works (the cancelled stream left nothing behind)
    (echo,) = to_ours([call("sample", "echo", SAMPLE_REQ, {"text": "after"})])
    assert echo["response"] == {"text": "AFTER"}


def test_ours_sees_the_original_client_metadata(to_ours, our_server):
    """The metadata our server gets from the original client: as a handler sees it (echo's
    probe, in _our_server.py) and as the library reads the caller's identity (the debug
    line of the manager's log). `host` arrives as grpcio sends it: a plain HTTP/2 `host`
    header holding the client's host name (FACTS.md), not the authority."""
    probe = {"text": METADATA_PROBE}
    debug, named, bare, reset = to_ours([
        call("log", "set", "LoggerUpdate",
             {"items": [{"name": "SampleManager", "enabled": True, "level": "LVL_DEBUG"}]}),
        call("sample", "echo", SAMPLE_REQ, probe),
        call("bare", "echo", SAMPLE_REQ, probe),          # a stub without version
        call("log", "reset", "Filter", {"names": ["SampleManager"]}),
    ], stubs_map=stubs(bare=("sample", None)))
    assert debug["ok"] and reset["ok"], (debug, reset)
    (unnamed,) = to_ours([call("sample", "echo", SAMPLE_REQ, probe)], name="")

    def metadata(result):
        assert result["ok"], result
        return [(k, v) for k, v in json.loads(result["response"]["text"]) if k != "user-agent"]

    got = metadata(named)
    assert sorted(k for k, _ in got) == ["api_version", "client", "host", "ip", "user"]
    md = dict(got)
    assert (md["client"], md["user"], md["host"], md["api_version"]) == ("interop-client", USER, HOST, "3")
    assert ipaddress.ip_address(md["ip"]).version == 4
    # empty values are not sent: no api_version for a stub without version, no client
    # for a client named ""
    assert metadata(bare) == [(k, v) for k, v in got if k != "api_version"]
    assert metadata(unnamed) == [(k, v) for k, v in got if k != "client"]
    # The library's own reading of the identity (pending calls, debug dump, logs)
    log = (our_server.workspace / "logs" / "SampleManager" / "SampleManager.log").read_text()
    line = f'DEBUG <RPC> << /SampleService/echo (client "interop-client" {USER}@{HOST}/{md["ip"]})'
    assert log.count(line) == 2, log[-3000:]


def test_ours_shutdown_by_original_client(start_ours, original_target, sample_gen):
    srv = start_ours()
    (r,) = run_client(original_target, srv.port,
                      [call("srv", "shutdown", "ShutdownRequest", {"timeout": -1})],
                      gen_dir=sample_gen)
    assert r == {"ok": True, "response": {}, "hex": ""}
    assert srv.wait_exit() == 0, srv.stderr()[-3000:]
    assert srv.lines == [f"LIBRARY {srv.library_version}", f"READY {srv.port}", "STOPPED"]


# ---------------------------------------------------------------------------------------------
# 2. Our client (this process) against an original server

@pytest.fixture(scope="session")
def ours(our_gen):
    """Our binding, imported here as bindings/python/tests does (bindings/python on
    sys.path), with the sample code generated for it; a namespace of what the tests use."""
    added = [p for p in (str(BINDINGS_PYTHON), str(our_gen)) if p not in sys.path]
    for p in reversed(added):
        sys.path.insert(0, p)
    names = ("sample_pb2", "sample_pb2_grpc")
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    try:
        grpchelper = importlib.import_module("grpchelper")
        assert Path(grpchelper.__file__).resolve().parent.parent == BINDINGS_PYTHON.resolve()
        api = importlib.import_module("grpchelper.api")
        pb2 = importlib.import_module("sample_pb2")
        pb2_grpc = importlib.import_module("sample_pb2_grpc")
        assert pb2.DESCRIPTOR.dependencies[0].name == "grpchelper/api/common.proto"
        yield types.SimpleNamespace(
            grpchelper=grpchelper, api=api, RpcClient=grpchelper.RpcClient,
            RpcException=grpchelper.RpcException, ResultCode=api.ResultCode,
            Request=pb2.SampleRequest, Status=pb2.SampleStatus, Stub=pb2_grpc.SampleServiceStub)
    finally:
        for p in added:
            sys.path.remove(p)
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


def our_stubs(ours, **versions) -> dict:
    """A stubs map for our RpcClient: srv/config/log/sample at their current versions (the
    grpchelper.api stubs and the generated sample stub); keyword arguments add or override
    entries as original.stubs() does: name=(base, version) or name=version."""
    api = ours.api
    classes = {"srv": api.RpcServerServiceStub, "config": api.ConfigServiceStub,
               "log": api.LoggerServiceStub, "sample": ours.Stub}
    out = {n: (classes[n], original.CURRENT[n]) for n in classes}
    for name, v in versions.items():
        base, version = v if isinstance(v, tuple) else (name, v)
        out[name] = (classes[base], version)
    return out


@pytest.fixture
def our_clients(ours):
    """client(port, stubs_map=None, **RpcClient kwargs) → our RpcClient to 127.0.0.1:port
    (timeout 10 and name "our-client" unless given); all closed at teardown."""
    made = []

    def make(port, stubs_map=None, **kwargs):
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("name", "our-client")
        c = ours.RpcClient("127.0.0.1", port, stubs_map or our_stubs(ours), **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def to_original(our_clients, original_server):
    """our_clients bound to the module's original server."""
    return lambda **kwargs: our_clients(original_server.port, **kwargs)


def our_raised(excinfo, ours, port, path, code_name, msg, cls=None):
    """Our client raised `cls` (RpcException) with rc code_name and our message."""
    e = excinfo.value
    assert type(e) is (cls or ours.RpcException), e
    assert e.rc == ours.ResultCode.Value(code_name)
    assert str(e) == OUR_RAISED.format(path=path, port=port, code=code_name, msg=msg)


def test_our_client_srv_info(ours, to_original, original_server):
    c = to_original()
    info = c.srv.info(ours.api.Filter())
    as_tuples = [(i.name, i.version, i.current_api_version, i.supported_api_version) for i in info.items]
    assert as_tuples == [("srv", GH_VERSION, 1, 1), ("config", GH_VERSION, 2, 1), ("log", GH_VERSION, 1, 1),
                         ("sample", SAMPLE_VERSION, 3, 2)]
    assert not info.HasField("r")
    assert [i.name for i in c.srv.info(ours.api.Filter(names=["sample", "srv"])).items] == ["sample", "srv"]
    with pytest.raises(ours.RpcException) as e:
        c.srv.info(ours.api.Filter(names=["srv", "nope"]))
    our_raised(e, ours, original_server.port, "/RpcServerService/info", "ERROR_ITEM_UNKNOWN",
               "At least one of the required service names is unknown")


def test_our_client_config_get_set_reset(ours, to_original, original_server):
    from google.protobuf import json_format
    api, port = ours.api, original_server.port
    config_json = original_server.workspace / "config.json"

    def items(status):
        assert not status.HasField("r")
        return [json_format.MessageToDict(i, preserving_proto_field_name=True) for i in status.items]

    def update(name, value):
        return api.ConfigUpdate(items=[api.ConfigItemUpdate(name=name, value=value)])

    c = to_original()
    assert items(c.config.get(api.Filter())) == [SAMPLE_INT, SAMPLE_STR]
    assert items(c.config.get(api.Filter(names=["sample-str"]))) == [SAMPLE_STR]
    assert items(c.config.set(update("sample-int", "42"))) == [dict(SAMPLE_INT, value="42")]
    assert json.loads(config_json.read_text()) == {"sample-int": "42"}
    with pytest.raises(ours.RpcException) as e:
        c.config.set(update("sample-int", "abc"))
    our_raised(e, ours, port, "/ConfigService/set", "ERROR_PARAM_INVALID",
               "Invalid int value for config item sample-int: abc")
    with pytest.raises(ours.RpcException) as e:
        c.config.get(api.Filter(names=["rpc-max-workers"]))
    our_raised(e, ours, port, "/ConfigService/get", "ERROR_ITEM_UNKNOWN",
               "Unknown config item names in filter request: rpc-max-workers")
    with pytest.raises(ours.RpcException) as e:
        c.config.reset(api.Filter())
    our_raised(e, ours, port, "/ConfigService/reset", "ERROR_PARAM_MISSING", "Input request list is empty")
    assert items(c.config.reset(api.Filter(names=["sample-int"]))) == [SAMPLE_INT]
    assert items(c.config.get(api.Filter(names=["sample-int"]))) == [SAMPLE_INT]
    # the original's reset does not rewrite config.json; setting the default does
    assert json.loads(config_json.read_text()) == {"sample-int": "42"}
    assert items(c.config.set(update("sample-int", "12"))) == [SAMPLE_INT]
    assert json.loads(config_json.read_text()) == {}


def test_our_client_log_get_set_reset(ours, to_original, original_server):
    api, port = ours.api, original_server.port
    c = to_original()

    def cfg(name, enabled, level):
        return api.LoggerConfig(name=name, enabled=enabled, level=level)

    assert list(c.log.get(api.Filter(names=[""])).items) == [cfg("root", True, api.LoggerLevel.LVL_WARNING)]
    with pytest.raises(ours.RpcException) as e:
        c.log.get(api.Filter())
    our_raised(e, ours, port, "/LoggerService/get", "ERROR_PARAM_MISSING", "Empty request")
    r = c.log.set(api.LoggerUpdate(items=[cfg("our.logger", True, api.LoggerLevel.LVL_DEBUG),
                                          cfg("our.off", False, api.LoggerLevel.LVL_ERROR)]))
    assert list(r.items) == [cfg("our.logger", True, api.LoggerLevel.LVL_DEBUG),
                             cfg("our.off", False, api.LoggerLevel.LVL_ERROR)]
    assert json.loads((original_server.workspace / "loggers.json").read_text()) == \
        {"our.logger": "DEBUG", "our.off": False}
    r = c.log.reset(api.Filter(names=["our.logger", "our.off"]))
    assert list(r.items) == [cfg("our.logger", True, 0), cfg("our.off", True, 0)]
    assert json.loads((original_server.workspace / "loggers.json").read_text()) == {}


def test_our_client_sample_results_and_errors(ours, to_original, original_server):
    port, R, RC = original_server.port, ours.Request, ours.ResultCode
    c = to_original()
    echo = c.sample.echo(R(text="hi"))
    assert echo == ours.Status(text="HI") and echo.SerializeToString() == bytes.fromhex("12024849")
    with pytest.raises(ours.RpcException) as e:
        c.sample.fail(R(code=30, message="boom"))
    our_raised(e, ours, port, "/SampleService/fail", "ERROR_ITEM_UNKNOWN", "boom")
    # codes >= ERROR_CUSTOM are returned, not raised
    custom = c.sample.fail(R(code=101, message="custom"))
    assert (custom.r.code, custom.r.msg) == (101, "custom")
    assert custom.r.stack.endswith("in fail\n    raise RpcException(request.message, rc=request.code)\n")
    with pytest.raises(ours.RpcException) as e:
        c.sample.crash(R(message="kaput"))
    our_raised(e, ours, port, "/SampleService/crash", "ERROR", "kaput")
    with pytest.raises(ours.RpcException) as e:
        c.sample.check(R())
    our_raised(e, ours, port, "/SampleService/check", "ERROR_PARAM_MISSING", "Missing text")
    ok = c.sample.check(R(text="x"))
    assert ok == ours.api.ResultStatus() and ok.SerializeToString() == b""
    # UNIMPLEMENTED (grpcio's default servicer method) -> ERROR_RPC, not retried
    with pytest.raises(ours.RpcException) as e:
        c.sample.missing(R())
    assert e.value.rc == RC.ERROR_RPC
    assert str(e.value) == OUR_RPC_ERROR.format(path="/SampleService/missing", port=port,
                                                status="UNIMPLEMENTED", details="Method not implemented!")


def test_our_client_streaming(ours, to_original, original_server):
    port, R, S = original_server.port, ours.Request, ours.Status
    c = to_original()
    assert list(c.sample.count(R(count=3, text="x"))) == [S(text="x0"), S(text="x1", index=1), S(text="x2", index=2)]
    # the messages before the error, then the raise
    got = []
    with pytest.raises(ours.RpcException) as e:
        for m in c.sample.count(R(count=5, text="y", fail_after=2, code=31, message="bad")):
            got.append(m)
    assert got == [S(text="y0"), S(text="y1", index=1)]
    our_raised(e, ours, port, "/SampleService/count", "ERROR_ITEM_CONFLICT", "bad")
    # a stream closed early (cancelled) leaves the client usable
    stream = c.sample.count(R(count=1000))
    assert [next(stream), next(stream)] == [S(text="0"), S(text="1", index=1)]
    stream.close()
    assert c.sample.echo(R(text="after")).text == "AFTER"
    # exception=False: the error is the last message, only r
    c = to_original(exception=False)
    got = list(c.sample.count(R(count=5, text="y", fail_after=2, code=31, message="bad")))
    assert got[:2] == [S(text="y0"), S(text="y1", index=1)] and len(got) == 3
    assert (got[2].r.code, got[2].r.msg) == (31, "bad")
    assert fields(got[2].SerializeToString().hex()) == [1]


@pytest.mark.parametrize("service,method,request_type,current,supported", [
    ("srv", "info", "Filter", 1, 1),
    ("config", "get", "Filter", 2, 1),
    ("log", "get", "Filter", 1, 1),
    ("sample", "echo", "SampleRequest", 3, 2),
])
def test_our_client_version_errors_both_ways(ours, to_original, original_server, service, method,
                                             request_type, current, supported):
    port = original_server.port
    if request_type == "SampleRequest":
        request, path = ours.Request(), f"/SampleService/{method}"
    else:
        request = ours.api.Filter(names=[""] if service == "log" else [])
        path = {"srv": "/RpcServerService/info", "config": "/ConfigService/get",
                "log": "/LoggerService/get"}[service]
    m = our_stubs(ours, new=(service, current + 1), low=(service, supported), high=(service, current),
                  bare=(service, None), zero=(service, 0), old=(service, supported - 1))
    c = to_original(stubs_map=m)
    with pytest.raises(ours.RpcException) as e:
        getattr(c.new, method)(request)
    our_raised(e, ours, port, path, "ERROR_API_SERVER_TOO_OLD",
               SERVER_TOO_OLD.format(current=current, client=current + 1))
    for name in ("low", "high", "bare", "zero"):
        assert not getattr(getattr(c, name), method)(request).HasField("r"), name
    # Below supported: our client sends no api_version for version 0 (the original sends
    # "0", refused as too old), so only a supported version above 1 can be too old.
    if supported - 1 > 0:
        with pytest.raises(ours.RpcException) as e:
            getattr(c.old, method)(request)
        our_raised(e, ours, port, path, "ERROR_API_CLIENT_TOO_OLD",
                   CLIENT_TOO_OLD.format(current=current, client=supported - 1))
    else:
        assert not getattr(c.old, method)(request).HasField("r")
    # exception=False: the error responses are returned, only r, with the original's stack
    c = to_original(stubs_map=m, exception=False)
    for name, code, msg in [
            ("new", "ERROR_API_SERVER_TOO_OLD", SERVER_TOO_OLD.format(current=current, client=current + 1)),
            ("old", "ERROR_API_CLIENT_TOO_OLD", CLIENT_TOO_OLD.format(current=current, client=supported - 1))]:
        if name == "old" and supported == 1:
            continue
        r = getattr(getattr(c, name), method)(request)
        assert fields(r.SerializeToString().hex()) == [1]
        assert (r.r.code, r.r.msg) == (ours.ResultCode.Value(code), msg)
        assert "in delegate_call" in r.r.stack


def test_our_client_exception_false(ours, to_original):
    R, RC = ours.Request, ours.ResultCode
    c = to_original(exception=False)
    for request, code, msg, frame in [
            (R(code=30, message="boom"), RC.ERROR_ITEM_UNKNOWN, "boom",
             "in fail\n    raise RpcException(request.message, rc=request.code)\n"),
            (R(message="kaput"), RC.ERROR, "kaput", "in crash\n    raise ValueError(request.message)\n")]:
        method = c.sample.fail if code != RC.ERROR else c.sample.crash
        r = method(request)
        assert fields(r.SerializeToString().hex()) == [1]
        assert (r.r.code, r.r.msg) == (code, msg)
        assert r.r.stack.startswith('  File "') and r.r.stack.endswith(frame)
    r = c.sample.check(R())
    assert (r.r.code, r.r.msg) == (RC.ERROR_PARAM_MISSING, "Missing text") and r.r.stack
    r = c.srv.info(ours.api.Filter(names=["nope"]))
    assert (r.r.code, list(r.items)) == (RC.ERROR_ITEM_UNKNOWN, [])
    # a failed call still raises (ERROR_RPC)
    with pytest.raises(ours.RpcException) as e:
        c.sample.missing(R())
    assert e.value.rc == RC.ERROR_RPC


class CustomError(Exception):
    def __init__(self, message, rc=None):
        super().__init__(message)
        self.rc = rc


def test_our_client_custom_exception(ours, to_original, original_server):
    port, R, RC = original_server.port, ours.Request, ours.ResultCode
    c = to_original(custom_exception=CustomError, stubs_map=our_stubs(ours, new=("sample", 4)))
    with pytest.raises(CustomError) as e:
        c.sample.fail(R(code=31, message="conflict"))
    our_raised(e, ours, port, "/SampleService/fail", "ERROR_ITEM_CONFLICT", "conflict", cls=CustomError)
    got = []
    with pytest.raises(CustomError) as e:
        for m in c.sample.count(R(count=5, text="y", fail_after=2, code=31, message="bad")):
            got.append(m)
    assert len(got) == 2
    our_raised(e, ours, port, "/SampleService/count", "ERROR_ITEM_CONFLICT", "bad", cls=CustomError)
    with pytest.raises(CustomError) as e:
        c.new.echo(R())
    assert e.value.rc == RC.ERROR_API_SERVER_TOO_OLD
    # codes >= ERROR_CUSTOM are returned; failed calls stay RpcException ERROR_RPC
    assert c.sample.fail(R(code=101, message="custom")).r.code == 101
    with pytest.raises(ours.RpcException) as e:
        c.sample.missing(R())
    assert type(e.value) is ours.RpcException and e.value.rc == RC.ERROR_RPC


@pytest.fixture
def call_traces():
    """A logger for our client's debug traces ("<RPC> >> ..." before each call): records
    them and sets `started` at the first one."""
    logger = logging.getLogger("interop.our-client")
    records = []
    started = threading.Event()

    class Handler(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())
            if record.getMessage().startswith("<RPC> >>"):
                started.set()

    handler = Handler(logging.DEBUG)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield types.SimpleNamespace(logger=logger, records=records, started=started)
    logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def test_our_client_retries_until_the_original_server_is_up(ours, our_clients, start_original, call_traces):
    """Our client's call starts before the original server listens: UNAVAILABLE is retried
    (0.5 s, doubling) until the server answers, within the client's timeout."""
    for attempt in range(5):
        port = original.free_port()
        client = our_clients(port, timeout=original.START_TIMEOUT, logger=call_traces.logger)
        call_traces.started.clear()
        outcome = {}

        def run():
            t0 = time.monotonic()
            try:
                outcome["response"] = client.srv.info(ours.api.Filter(names=["sample"]))
            except BaseException as e:  # noqa: BLE001 - asserted below
                outcome["error"] = e
            outcome["elapsed"] = time.monotonic() - t0

        caller = threading.Thread(target=run, name="our-client-call")
        caller.start()
        try:
            assert call_traces.started.wait(original.START_TIMEOUT)
            # nobody listens there yet: the first try fails UNAVAILABLE
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            try:
                srv = start_original(port=port)
            except original.PortBusy:
                client.close()           # the retrying call ends (ERROR_RPC)
                continue
            caller.join(original.START_TIMEOUT)
            assert not caller.is_alive()
        finally:
            client.close()
            caller.join(original.STOP_TIMEOUT)
        break
    else:
        pytest.fail("no free port for the original server in 5 tries")
    assert "error" not in outcome, outcome
    assert [i.name for i in outcome["response"].items] == ["sample"]
    assert srv.running
    # the first try failed (nobody listened): the answer came from a retry, 0.5 s later or more
    assert 0.5 <= outcome["elapsed"] < original.START_TIMEOUT


def test_our_client_shuts_the_original_server_down(ours, our_clients, start_original):
    srv = start_original()
    c = our_clients(srv.port)
    r = c.srv.shutdown(ours.api.ShutdownRequest(timeout=-1))
    assert r == ours.api.ResultStatus() and r.SerializeToString() == b""
    assert srv.wait_exit() == 0, srv.stderr()[-3000:]
    assert srv.lines == [f"READY {srv.port}", "STOPPED"]


def test_our_client_metadata(ours, our_clients, metadata_recorder):
    """What our client sends, seen by a plain grpcio server: the original client's keys
    (FACTS.md), `host` the host name as a plain header; empty values not sent."""
    m = our_stubs(ours, log=None, zero=("srv", 0))
    c = our_clients(metadata_recorder.port, stubs_map=m, name="our-client")
    unnamed = our_clients(metadata_recorder.port, name="")
    for call_ in (lambda: c.srv.info(ours.api.Filter()), lambda: c.config.get(ours.api.Filter()),
                  lambda: c.log.get(ours.api.Filter()), lambda: c.sample.echo(ours.Request()),
                  lambda: c.zero.info(ours.api.Filter()), lambda: list(c.sample.count(ours.Request())),
                  lambda: unnamed.srv.info(ours.api.Filter())):
        with pytest.raises(ours.RpcException) as e:
            call_()
        assert e.value.rc == ours.ResultCode.ERROR_RPC and ": UNIMPLEMENTED: " in str(e.value)
    calls = metadata_recorder.calls
    assert [c_[0] for c_ in calls] == ["/RpcServerService/info", "/ConfigService/get", "/LoggerService/get",
                                       "/SampleService/echo", "/RpcServerService/info",
                                       "/SampleService/count", "/RpcServerService/info"]
    for (method, md), version, client in zip(calls, ["1", "2", None, "3", None, "3", "1"],
                                             ["our-client"] * 6 + [None]):
        own = [(k, v) for k, v in md if k != "user-agent"]
        expected = {"host": HOST, "user": USER, "client": client, "api_version": version}
        d = dict(own)
        assert len(d) == len(own), md                       # each key once
        assert set(d) == {k for k, v in expected.items() if v is not None} | {"ip"}, (method, md)
        assert all(d[k] == v for k, v in expected.items() if v is not None), (method, md)
        # ours: the address of the interface that reaches the server (here loopback)
        assert d["ip"] == "127.0.0.1"
        assert dict(md)["user-agent"].startswith("grpchelper")
