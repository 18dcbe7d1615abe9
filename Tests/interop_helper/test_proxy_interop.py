"""Proxied services against the ORIGINAL grpc-helper 2.3.1, both ways (issue 13): a main
server declares the sample service proxied (is_proxy=True), the server that really serves it
registers with srv.proxy_register, and clients only call the main server.

1. OUR proxy (child, `_our_server.py` with "proxied") in front of an ORIGINAL backend
   (child, `_original_server.py`): the calls through ours answer what the backend answers
   directly, byte for byte; srv.info shows the registration; the backend sees the caller
   marked "(proxied)".
2. The ORIGINAL proxy (`_original_server.py` with "proxied") in front of OUR backend: the
   same comparison the other way.
2b. A registered backend unreachable when the call comes, up a moment later: grpc-helper's
   proxy retries it until rpc-client-timeout (the original's behaviour, asserted for both;
   ours answers ERROR_RPC at once: a known difference, this test fails for ours).
3. The backend's view of the caller (our backend's metadata probe) through our proxy and
   through the original's: the same metadata.
4. An ORIGINAL RpcProxiedManager (`_original_server.py` with "proxied_manager") registering
   with OUR main server on load and forgetting at shutdown (and, as the reference, with the
   original's main server: same observations); OUR RpcProxiedManagers doing the same with the
   original's main server and ours: the Python binding's, and the C ABI's
   (gh_rpc_service_set_proxied: c_proxied_backend.c, compiled by the test, see _c_backend.py).
5. Registrations on a proxy made with events, seen by the original's EventsListener (child):
   RPC_PROXY_REGISTER / RPC_PROXY_FORGET, srv.info and proxy_register's errors; the same
   script against our proxy and the original's gives the same report.

All the clients of these tests are the original's (`run_client`, children): what ours must
answer is what the original's client gets from the original. No sleeps: READY lines, exits,
events waited for with timeouts; every child is stopped and waited for, every temporary
folder removed (conftest's workdir).
"""
import json
import re
import socket
import struct
import subprocess
import sys
import threading

import pytest

from . import original
from .original import call, run_client, stubs
from .test_cross import HOST, METADATA_PROBE, USER, OurServers, our_gen  # noqa: F401 (fixture)
from .test_original_sanity import SAMPLE_REQ, fields
from ._c_backend import c_backend_exe, start_c_backend, without_stacks  # noqa: F401 (fixtures)

SAMPLE_VERSION = f"{original.SAMPLE_TITLE}:{original.SAMPLE_VERSION}"
REGISTERED = "x:1.0"              # the version a backend registers
# Proxies wait this long (rpc-client-timeout, seconds) for a registration before answering
# ERROR_PROXY_UNREGISTERED (grpc-helper's text)
CLIENT_TIMEOUT = "1"
UNREGISTERED = "Proxy didn't registered in time for method call"

# The texts of the API version errors: the original's (FACTS.md), ours names the supported
# version in CLIENT_TOO_OLD (FACTS.md, "Ours vs the original")
SERVER_TOO_OLD = "Server current API version (3) is too old for client API version (4)"
ORIGINAL_CLIENT_TOO_OLD = "Client API version (1) is too old for server supported API version (3)"
OUR_CLIENT_TOO_OLD = "Client API version (1) is too old for server supported API version (2)"

# The sample calls compared through a proxy and directly on the backend: results, error
# results (an RpcException's code, a code >= ERROR_CUSTOM, a plain exception -> ERROR),
# streams (plain, failing after 2 messages, cut by the client after 2), a ResultStatus
SAMPLE_CALLS = [
    call("sample", "echo", SAMPLE_REQ, {"text": "hi"}),
    call("sample", "echo", SAMPLE_REQ, {"text": "h\u00e9llo \u2713 " + "z" * 3000}),
    call("sample", "fail", SAMPLE_REQ, {"code": 30, "message": "boom"}),
    call("sample", "fail", SAMPLE_REQ, {"code": 101, "message": "custom"}),
    call("sample", "crash", SAMPLE_REQ, {"message": "kaput"}),
    call("sample", "count", SAMPLE_REQ, {"count": 3, "text": "x"}),
    call("sample", "count", SAMPLE_REQ, {"count": 5, "text": "y", "fail_after": 2, "code": 31,
                                         "message": "bad"}),
    call("sample", "count", SAMPLE_REQ, {"count": 1000}, limit=2),
    call("sample", "check", SAMPLE_REQ, {}),
    call("sample", "check", SAMPLE_REQ, {"text": "x"}),
    call("sample", "count", SAMPLE_REQ, {"count": 0}),
]
# Calls to check the proxy's own API version check (the proxy answers: the backend is not
# called)
VERSION_STUBS = stubs(sample_new=("sample", 4), sample_old=("sample", 1))
VERSION_CALLS = [
    call("sample_new", "echo", SAMPLE_REQ, {"text": "v"}),
    call("sample_old", "echo", SAMPLE_REQ, {"text": "v"}),
    call("sample_new", "count", SAMPLE_REQ, {"count": 2}),
]


@pytest.fixture
def start_ours(our_gen, workdir):  # noqa: F811 (our_gen is a fixture)
    """Our servers (children); all stopped at the end of the test, exiting 0."""
    servers = OurServers(our_gen, workdir)
    yield servers
    statuses = servers.stop_all()
    assert statuses == [0] * len(statuses), [s.stderr()[-3000:] for s in servers.started]


def our_proxy(start_ours, with_events: bool = False):
    """Our main server whose sample service is proxied."""
    return start_ours(options={"proxied": True}, with_events=with_events,
                      cli_config={"rpc-client-timeout": CLIENT_TIMEOUT})


def original_proxy(start_original, with_events: bool = False):
    """The original's main server whose sample service is proxied."""
    return start_original(options={"proxied": True}, with_events=with_events,
                          cli_config={"rpc-client-timeout": CLIENT_TIMEOUT})


def run(target, gen, port, calls, **kwargs):
    """run_client (the original client, in a child) with the sample code."""
    return run_client(target, port, calls, gen_dir=gen, **kwargs)


def register(target, gen, proxy_port, backend_port, version=REGISTERED, host="127.0.0.1"):
    (r,) = run(target, gen, proxy_port, [call("srv", "proxy_register", "ProxyRegisterRequest",
                                              {"names": ["sample"], "version": version,
                                               "host": host, "port": backend_port})])
    assert r == {"ok": True, "response": {}, "hex": ""}, r


def forget(target, gen, proxy_port):
    (r,) = run(target, gen, proxy_port, [call("srv", "proxy_forget", "Filter", {"names": ["sample"]})])
    assert r == {"ok": True, "response": {}, "hex": ""}, r


def sample_info(target, gen, port) -> dict:
    """srv.info's item of the sample service (json_format dict: defaults omitted)."""
    (r,) = run(target, gen, port, [call("srv", "info", "Filter", {"names": ["sample"]})])
    assert r["ok"], r
    (item,) = r["response"]["items"]
    return item


def info_unregistered(version=SAMPLE_VERSION) -> dict:
    return {"name": "sample", "version": version, "current_api_version": 3,
            "supported_api_version": 2, "is_proxy": True}


def info_registered(port, version=REGISTERED, host="127.0.0.1") -> dict:
    out = dict(info_unregistered(version), proxy_port=port)
    if host:                                    # (json_format omits an empty string)
        out["proxy_host"] = host
    return out


def error_result(result, code, msg):
    """An error response: only field 1, with `code`, `msg` and a stack; returns r."""
    assert result["ok"] is True, result
    assert set(result["response"]) == {"r"}, result
    assert fields(result["hex"]) == [1]
    r = result["response"]["r"]
    assert (r["code"], r["msg"]) == (code, msg)
    assert r["stack"]
    return r


def check_versions(results, client_too_old):
    """The proxy's own version check: too new (unary, streaming) and too old."""
    new, old, new_stream = results
    error_result(new, "ERROR_API_SERVER_TOO_OLD", SERVER_TOO_OLD)
    error_result(old, "ERROR_API_CLIENT_TOO_OLD", client_too_old)
    assert new_stream["ok"] and len(new_stream["responses"]) == 1, new_stream
    r = new_stream["responses"][0]["r"]
    assert (r["code"], r["msg"]) == ("ERROR_API_SERVER_TOO_OLD", SERVER_TOO_OLD)


def main_host_then_forget(t, g, proxy, backend):
    """Registered again without a host (reached at rpc-main-host, "localhost" by default)
    and another version; then forgotten: srv.info keeps the version, proxy.json is emptied,
    calls wait rpc-client-timeout then answer ERROR_PROXY_UNREGISTERED."""
    register(t, g, proxy.port, backend.port, version="x:2.0", host="")
    assert sample_info(t, g, proxy.port) == info_registered(backend.port, "x:2.0", "")
    assert run(t, g, proxy.port, SAMPLE_CALLS[:1]) == run(t, g, backend.port, SAMPLE_CALLS[:1])
    forget(t, g, proxy.port)
    assert sample_info(t, g, proxy.port) == info_unregistered("x:2.0")
    assert json.loads((proxy.workspace / "proxy.json").read_text()) == {}
    (p,) = run(t, g, proxy.port, SAMPLE_CALLS[:1], exception=False)
    error_result(p, "ERROR_PROXY_UNREGISTERED", UNREGISTERED)


# ---------------------------------------------------------------------------------------------
# 1. Our proxy in front of an original backend

def test_our_proxy_in_front_of_an_original_backend(original_target, sample_gen, start_original,
                                                   start_ours):
    t, g = original_target, sample_gen
    backend = start_original()
    proxy = our_proxy(start_ours)
    # The backend's manager logs the calls it serves (with the caller's identity) at DEBUG
    (debug,) = run(t, g, backend.port, [call(
        "log", "set", "LoggerUpdate",
        {"items": [{"name": "SampleManager", "enabled": True, "level": "LVL_DEBUG"}]})])
    assert debug["ok"], debug

    assert sample_info(t, g, proxy.port) == info_unregistered()
    register(t, g, proxy.port, backend.port)
    assert sample_info(t, g, proxy.port) == info_registered(backend.port)
    assert json.loads((proxy.workspace / "proxy.json").read_text()) == {
        "sample": {"host": "127.0.0.1", "port": backend.port, "version": REGISTERED}}

    proxied = run(t, g, proxy.port, SAMPLE_CALLS, exception=False)
    direct = run(t, g, backend.port, SAMPLE_CALLS, exception=False)
    for c, p, d in zip(SAMPLE_CALLS, proxied, direct):
        assert p == d, c                            # the same bytes (stacks: the backend's)
    assert direct[0]["response"] == {"text": "HI"}
    assert direct[4]["response"]["r"]["code"] == "ERROR"
    assert [sorted(m) for m in direct[6]["responses"]] == [["text"], ["index", "text"], ["r"]]
    # Raising client: the same exceptions either way
    assert run(t, g, proxy.port, SAMPLE_CALLS) == run(t, g, backend.port, SAMPLE_CALLS)

    # A method the backend does not implement: grpc-helper's proxy answers an ERROR_RPC
    # result naming the method and the backend (the direct call raises ERROR_RPC)
    missing = [call("sample", "missing", SAMPLE_REQ, {})]
    (p,) = run(t, g, proxy.port, missing, exception=False)
    r = p["response"]["r"]
    assert r["code"] == "ERROR_RPC", p
    assert r["msg"] == (f"RPC error (on /SampleService/missing @ 127.0.0.1:{backend.port}): "
                        "UNIMPLEMENTED: Method not implemented!")
    (d,) = run(t, g, backend.port, missing, exception=False)
    assert d["exception"]["rc_name"] == "ERROR_RPC" and "UNIMPLEMENTED" in d["exception"]["message"]

    # API versions: checked by the proxy against the declared ones (our texts)
    check_versions(run(t, g, proxy.port, VERSION_CALLS, stubs_map=VERSION_STUBS, exception=False),
                   OUR_CLIENT_TOO_OLD)

    # The backend saw every forwarded call from "interop-client(proxied)", with the caller's
    # user, host, ip and api_version; the direct ones from "interop-client"
    log = (backend.workspace / "logs" / "SampleManager" / "SampleManager.log").read_text()
    pattern = r"DEBUG \[RPC\] \[interop-client{}\]{}@{}\(([^)]*)\) api:3 >>> "
    seen_proxied = re.findall(pattern.format(r"\(proxied\)", re.escape(USER), re.escape(HOST)), log)
    seen_direct = re.findall(pattern.format("", re.escape(USER), re.escape(HOST)), log)
    # (twice the list; "missing" is grpcio's UNIMPLEMENTED default, not logged)
    forwarded = 2 * len(SAMPLE_CALLS)
    assert len(seen_proxied) == forwarded, log[-4000:]
    assert len(seen_direct) == forwarded, log[-4000:]
    assert set(seen_proxied) == set(seen_direct) and len(set(seen_direct)) == 1

    main_host_then_forget(t, g, proxy, backend)


# ---------------------------------------------------------------------------------------------
# 2. The original proxy in front of our backend

def test_the_original_proxy_in_front_of_our_backend(original_target, sample_gen, start_original,
                                                    start_ours):
    t, g = original_target, sample_gen
    backend = start_ours()
    proxy = original_proxy(start_original)

    assert sample_info(t, g, proxy.port) == info_unregistered()
    register(t, g, proxy.port, backend.port)
    assert sample_info(t, g, proxy.port) == info_registered(backend.port)

    # The original forwards unary and server-streaming calls (all the sample's methods)
    proxied = run(t, g, proxy.port, SAMPLE_CALLS, exception=False)
    direct = run(t, g, backend.port, SAMPLE_CALLS, exception=False)
    for c, p, d in zip(SAMPLE_CALLS, proxied, direct):
        assert p == d, c
    assert direct[0]["response"] == {"text": "HI"}
    assert direct[4]["response"]["r"]["code"] == "ERROR"
    assert run(t, g, proxy.port, SAMPLE_CALLS) == run(t, g, backend.port, SAMPLE_CALLS)

    # Not implemented by the backend: an ERROR_RPC result naming the call and the backend
    (p,) = run(t, g, proxy.port, [call("sample", "missing", SAMPLE_REQ, {})], exception=False)
    r = p["response"]["r"]
    assert r["code"] == "ERROR_RPC", p
    assert re.match(r"RPC error \(on \[RPC\] \[interop-client\(proxied\)\]\S+@\S+\(\S+\) api:3 >>> "
                    rf"SampleServiceStub\(127\.0\.0\.1:{backend.port}\)\.missing \(SampleRequest\{{\}}\)\): "
                    r"<_InactiveRpcError of RPC that terminated with:\n\tstatus = StatusCode\.UNIMPLEMENTED\n",
                    r["msg"]), r["msg"]

    check_versions(run(t, g, proxy.port, VERSION_CALLS, stubs_map=VERSION_STUBS, exception=False),
                   ORIGINAL_CLIENT_TOO_OLD)

    main_host_then_forget(t, g, proxy, backend)


# ---------------------------------------------------------------------------------------------
# 2b. A registered backend that is not reachable (yet)

@pytest.mark.parametrize("proxy_kind", ["original", "ours"])
def test_a_proxied_call_retries_an_unreachable_backend(proxy_kind, original_target, sample_gen,
                                                       start_original, start_ours):
    """grpc-helper's proxy forwards with an RpcClient(timeout=rpc-client-timeout)
    (methods.py): a backend answering UNAVAILABLE (connection refused, reset) is tried again
    (after 0.5 s, doubling) until rpc-client-timeout has passed since the first try, so a
    registered backend that is restarting (its registration is persisted in proxy.json)
    answers the calls made meanwhile. Here the backend's address first resets the proxy's
    connection (a plain socket accepts it, which tells the call is in flight, and resets
    it), then the backend starts on that port: the call through the proxy answers the
    backend's response."""
    t, g = original_target, sample_gen
    timeout = {"rpc-client-timeout": "30"}
    proxy = (start_original(options={"proxied": True}, cli_config=timeout) if proxy_kind == "original"
             else start_ours(options={"proxied": True}, cli_config=timeout))
    gate = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    result = {}
    caller = None
    try:
        gate.bind(("127.0.0.1", 0))
        gate.listen(1)
        gate.settimeout(30)
        port = gate.getsockname()[1]
        register(t, g, proxy.port, port)
        caller = threading.Thread(target=lambda: result.update(
            r=run(t, g, proxy.port, SAMPLE_CALLS[:1], exception=False)))
        caller.start()
        conn, _ = gate.accept()                 # the proxy's first try
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()                            # reset: UNAVAILABLE
        gate.close()
        start_original(port=port)
    finally:
        gate.close()
        if caller is not None:
            caller.join(90)
    assert not caller.is_alive()
    (r,) = result["r"]
    assert r == {"ok": True, "response": {"text": "HI"}, "hex": "12024849"}, \
        r.get("response", {}).get("r", {}).get("msg", r)


# ---------------------------------------------------------------------------------------------
# 3. What the backend sees of the caller, through either proxy

def test_the_backend_sees_the_same_caller_through_either_proxy(original_target, sample_gen,
                                                               start_original, start_ours):
    """Our backend's metadata probe (echo "?metadata", _our_server.py) called through our
    proxy and through the original's: the same keys and values (the user-agent aside: the
    forwarding client's), each once: `client` marked "(proxied)", the caller's user, host,
    ip, and its api_version (the service's current one when it sent none). Not the same
    order: grpc-core puts `host` first (FACTS.md), our forwarding keeps the caller's order;
    metadata order means nothing to grpc-helper (RpcMetadata.from_context makes a dict)."""
    t, g = original_target, sample_gen
    backend = start_ours()
    ours, theirs = our_proxy(start_ours), original_proxy(start_original)
    for proxy in (ours, theirs):
        register(t, g, proxy.port, backend.port)
    probe = {"text": METADATA_PROBE}
    calls = [call("sample", "echo", SAMPLE_REQ, probe),
             call("bare", "echo", SAMPLE_REQ, probe),            # no api_version sent
             call("old", "echo", SAMPLE_REQ, probe)]             # api_version 2 (supported)
    stubs_map = stubs(bare=("sample", None), old=("sample", 2))

    def seen(port, **kwargs):
        out = []
        for r in run(t, g, port, calls, stubs_map=stubs_map, **kwargs):
            assert r["ok"], r
            md = [(k, v) for k, v in json.loads(r["response"]["text"]) if k != "user-agent"]
            assert len(dict(md)) == len(md), md                 # each key once
            out.append(dict(md))
        return out

    direct = seen(backend.port)
    through_theirs = seen(theirs.port)
    through_ours = seen(ours.port)
    assert through_ours == through_theirs
    named, bare, old = through_theirs
    assert named == dict(direct[0], client="interop-client(proxied)")
    assert sorted(named) == ["api_version", "client", "host", "ip", "user"]
    assert bare == named                                   # the current version, 3
    assert old == dict(named, api_version="2")
    # A client without a name: "(proxied)" alone
    unnamed = seen(ours.port, name="")
    assert unnamed == seen(theirs.port, name="")
    assert unnamed[0] == dict(named, client="(proxied)")


# ---------------------------------------------------------------------------------------------
# 4. The original's RpcProxiedManager registering with our main server

@pytest.mark.parametrize("main", ["ours", "original"])
def test_an_original_proxied_manager_registers_with_the_main_server(
        main, original_target, sample_gen, start_original, start_ours):
    """An original server whose sample manager is an RpcProxiedManager (_proxied_services
    ["sample"], _proxied_version "x:1.0", rpc-main-host 127.0.0.1, rpc-main-port the main
    server's): registered by the end of its load (before READY), reached through the main
    server, forgotten when it shuts down. The main server is ours, or the original's as the
    reference: the same observations."""
    t, g = original_target, sample_gen
    proxy = our_proxy(start_ours) if main == "ours" else original_proxy(start_original)
    backend = start_original(
        options={"proxied_manager": {"services": ["sample"], "version": REGISTERED}},
        cli_config={"rpc-main-host": "127.0.0.1", "rpc-main-port": str(proxy.port)})

    assert sample_info(t, g, proxy.port) == info_registered(backend.port)
    assert json.loads((proxy.workspace / "proxy.json").read_text()) == {
        "sample": {"host": "127.0.0.1", "port": backend.port, "version": REGISTERED}}
    calls = SAMPLE_CALLS[:1] + SAMPLE_CALLS[5:7]            # echo, count, count failing
    assert run(t, g, proxy.port, calls, exception=False) == run(t, g, backend.port, calls,
                                                                exception=False)

    # Its shutdown (after the server stopped serving) calls proxy_forget
    assert backend.stop() == 0, backend.stderr()[-3000:]
    assert backend.lines[-1] == "STOPPED"
    assert sample_info(t, g, proxy.port) == info_unregistered(REGISTERED)
    assert json.loads((proxy.workspace / "proxy.json").read_text()) == {}
    (p,) = run(t, g, proxy.port, SAMPLE_CALLS[:1], exception=False)
    error_result(p, "ERROR_PROXY_UNREGISTERED", UNREGISTERED)


@pytest.mark.parametrize("main", ["original", "ours"])
def test_our_proxied_manager_registers_with_the_main_server(
        main, original_target, sample_gen, start_original, start_ours):
    """OUR RpcProxiedManager (the Python binding's) as the backend, with the ORIGINAL's main
    server and with ours: registered by the end of its load, reached through the main
    server (the same answers as direct calls), forgotten when it shuts down."""
    t, g = original_target, sample_gen
    proxy = our_proxy(start_ours) if main == "ours" else original_proxy(start_original)
    backend = start_ours(options={"proxied_manager": {"services": ["sample"], "version": REGISTERED}},
                         cli_config={"rpc-main-host": "127.0.0.1", "rpc-main-port": str(proxy.port)})
    assert sample_info(t, g, proxy.port) == info_registered(backend.port)
    calls = SAMPLE_CALLS[:1] + SAMPLE_CALLS[5:7]
    assert run(t, g, proxy.port, calls, exception=False) == run(t, g, backend.port, calls,
                                                                exception=False)
    assert backend.stop() == 0
    assert sample_info(t, g, proxy.port) == info_unregistered(REGISTERED)


@pytest.mark.parametrize("main", ["original", "ours"])
def test_our_c_proxied_manager_registers_with_the_main_server(
        main, original_target, sample_gen, start_original, start_ours, start_c_backend):
    """OUR C RpcProxiedManager (gh_rpc_service_set_proxied) as the backend, with the
    ORIGINAL's main server and with ours: registered before its load hook runs (the hook
    sees its port in the main server's srv.info, through gh_rpc_server_proxy_client), the
    same answers through the main server as directly (those of the Python sample manager),
    forgotten when it shuts down."""
    t, g = original_target, sample_gen
    proxy = our_proxy(start_ours) if main == "ours" else original_proxy(start_original)
    backend = start_c_backend({"rpc-main-host": "127.0.0.1", "rpc-main-port": str(proxy.port),
                               "rpc-shutdown-grace": "2", "rpc-client-timeout": "5"})
    assert backend.loaded == (backend.port, backend.port)
    assert sample_info(t, g, proxy.port) == info_registered(backend.port)
    # echo, fail (a ResultCode, a custom code), count (plain, failing after 2, cut by the client)
    calls = [SAMPLE_CALLS[i] for i in (0, 1, 2, 3, 5, 6, 7)]
    proxied = run(t, g, proxy.port, calls, exception=False)
    direct = run(t, g, backend.port, calls, exception=False)
    for c, p, d in zip(calls, proxied, direct):
        assert p == d, c
    assert direct[0] == {"ok": True, "response": {"text": "HI"}, "hex": "12024849"}
    assert direct[4]["responses"] == [{"text": "x0"}, {"index": 1, "text": "x1"}, {"index": 2, "text": "x2"}]
    # Raising client: the same exceptions either way
    raised_direct = run(t, g, backend.port, calls)
    assert run(t, g, proxy.port, calls) == raised_direct
    # The Python sample manager's answers (an original backend's), error stacks aside
    python = start_original().port
    for mine, theirs in [(direct, run(t, g, python, calls, exception=False)),
                         (raised_direct, run(t, g, python, calls))]:
        assert [without_stacks(r) for r in mine] == [without_stacks(r) for r in theirs]

    assert backend.stop() == 0, backend.stderr()[-3000:]
    assert backend.lines[-1] == "STOPPED"
    assert sample_info(t, g, proxy.port) == info_unregistered(REGISTERED)
    (p,) = run(t, g, proxy.port, SAMPLE_CALLS[:1], exception=False)
    error_result(p, "ERROR_PROXY_UNREGISTERED", UNREGISTERED)


# ---------------------------------------------------------------------------------------------
# 5. Registrations seen by the original's EventsListener

EVENTS_CHILD = r'''
import json, sys, threading
from google.protobuf import json_format
from grpc_helper import RpcClient, RpcException
from grpc_helper.events import EventsListener
from grpc_helper_api import (EventApiVersion, Filter, ProxyRegisterRequest, ResultCode,
                             ServerApiVersion)
from grpc_helper_api.events_pb2_grpc import EventServiceStub
from grpc_helper_api.server_pb2_grpc import RpcServerServiceStub
from sample_pb2 import SampleApiVersion, SampleRequest
from sample_pb2_grpc import SampleServiceStub

port = int(sys.argv[1])
stubs = {"srv": (RpcServerServiceStub, ServerApiVersion.SERVER_API_CURRENT),
         "events": (EventServiceStub, EventApiVersion.EVENT_API_CURRENT),
         "sample": (SampleServiceStub, SampleApiVersion.SAMPLE_API_CURRENT)}
client = RpcClient("127.0.0.1", port, stubs, timeout=5, name="proxy-events")
quiet = RpcClient("127.0.0.1", port, stubs, timeout=5, name="proxy-events", exception=False)


class Collector(EventsListener):
    def __init__(self):
        self.got = []
        self.cond = threading.Condition()
        super().__init__(client, [])

    def on_event(self, event):
        with self.cond:
            self.got.append([event.name, [[p.name, p.value] for p in event.properties]])
            self.cond.notify_all()

    def wait(self, n):
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.got) >= n, 30), self.got
            return self.got[n - 1]


def info():
    (item,) = client.srv.info(Filter(names=["sample"])).items
    return [json_format.MessageToDict(item, preserving_proto_field_name=True),
            item.SerializeToString().hex()]


out = {"steps": []}
listener = Collector()
assert listener.ready.wait(10)
out["info"] = info()
r = quiet.sample.echo(SampleRequest(text="hi")).r
out["unregistered"] = [ResultCode.Name(r.code), r.msg]
errors = []
for what, request in [("register", ProxyRegisterRequest()),
                      ("register", ProxyRegisterRequest(names=[""], version="1", port=1)),
                      ("register", ProxyRegisterRequest(names=["sample", "nope"], version="1", port=1)),
                      ("register", ProxyRegisterRequest(names=["srv"], version="1", port=1)),
                      ("register", ProxyRegisterRequest(names=["sample"], port=1)),
                      ("register", ProxyRegisterRequest(names=["sample"], version="1")),
                      ("forget", Filter()),
                      ("forget", Filter(names=["nope"])),
                      ("forget", Filter(names=["srv"]))]:
    try:
        getattr(client.srv, "proxy_" + what)(request)
        errors.append([what, None])
    except RpcException as e:
        errors.append([what, ResultCode.Name(e.rc), str(e)])
out["errors"] = errors
for n, (what, request) in enumerate([
        ("register", ProxyRegisterRequest(names=["sample"], version="x:1.0", host="backend-host", port=4242)),
        ("register", ProxyRegisterRequest(names=["sample"], version="x:2.0", port=4343)),
        ("forget", Filter(names=["sample"])),
        ("forget", Filter(names=["sample", "sample"]))]):
    getattr(client.srv, "proxy_" + what)(request)
    out["steps"].append([listener.wait(n + 1), info()])
listener.interrupt()
out["events"] = listener.got
print(json.dumps(out))
'''


def events_report(target, gen, port) -> dict:
    r = subprocess.run([sys.executable, "-c", EVENTS_CHILD, str(port)],
                       env=original.child_env(target, gen), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_registration_events_seen_by_the_originals_listener(original_target, sample_gen,
                                                            start_original, start_ours):
    t, g = original_target, sample_gen
    theirs = events_report(t, g, original_proxy(start_original, with_events=True).port)
    ours = events_report(t, g, our_proxy(start_ours, with_events=True).port)

    # The original's behaviour
    assert theirs["info"][0] == info_unregistered()
    assert theirs["unregistered"] == ["ERROR_PROXY_UNREGISTERED", UNREGISTERED]
    missing_name = "RPC returned error: Missing input name in request"
    missing_param = "RPC returned error: Missing input parameter in request (one of version or port)"
    unknown = "RPC returned error: At least one of the required service names is unknown"
    not_proxy = "RPC returned error: At least one of the required services is not a proxy"
    assert theirs["errors"] == [
        ["register", "ERROR_PARAM_MISSING", missing_name],
        ["register", "ERROR_PARAM_MISSING", missing_name],
        ["register", "ERROR_ITEM_UNKNOWN", unknown],
        ["register", "ERROR_PARAM_INVALID", not_proxy],
        ["register", "ERROR_PARAM_MISSING", missing_param],
        ["register", "ERROR_PARAM_MISSING", missing_param],
        ["forget", "ERROR_PARAM_MISSING", missing_name],
        ["forget", "ERROR_ITEM_UNKNOWN", unknown],
        ["forget", "ERROR_PARAM_INVALID", not_proxy],
    ]
    register_1 = ["RPC_PROXY_REGISTER", [["names", "sample"], ["version", "x:1.0"], ["port", "4242"],
                                         ["host", "backend-host"]]]
    register_2 = ["RPC_PROXY_REGISTER", [["names", "sample"], ["version", "x:2.0"], ["port", "4343"],
                                         ["host", ""]]]
    assert [event for event, _ in theirs["steps"]] == [
        register_1, register_2, ["RPC_PROXY_FORGET", [["names", "sample"]]],
        ["RPC_PROXY_FORGET", [["names", "sample,sample"]]]]
    assert [info for _, (info, _) in theirs["steps"]] == [
        info_registered(4242, "x:1.0", "backend-host"), info_registered(4343, "x:2.0", ""),
        info_unregistered("x:2.0"), info_unregistered("x:2.0")]
    assert theirs["events"] == [event for event, _ in theirs["steps"]]   # nothing else

    # Ours: the same report, key by key (srv.info's items byte for byte)
    for key in theirs:
        assert ours.get(key) == theirs[key], key
    assert ours == theirs
