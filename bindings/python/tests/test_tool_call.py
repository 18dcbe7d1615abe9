"""The tool's `list` and `call` (grpchelper._tool.dynamic): grpcurl's everyday use through
server reflection, run in-process with `grpchelper._tool.main` (and once as
`python3 -m grpchelper`):

- against a grpchelper server with enable_reflection() serving the matrix service: list
  (plain, --json, a service's methods), the four call patterns (JSON in, JSON out; streamed
  requests from stdin lines, from a JSON array), the method's other spellings, -H metadata
  reaching the handler; NOT_FOUND for an unknown method or service, INVALID_ARGUMENT for
  bad JSON and an unknown field, a handler's abort (its code and details), an unreachable
  port (exit 3), usage errors (exit 2);
- against grpcio with grpcio-reflection's servicer (v1alpha only: the fallback);
- against an RpcServer: ConfigService/get's items, and a Result error (ERROR_ITEM_UNKNOWN).
"""
import io
import json
import os
import socket
import subprocess
import sys
from concurrent import futures

import grpc
import pytest
from grpc_reflection.v1alpha import reflection

from conftest import BINDINGS_PYTHON, BOUND
from grpchelper._tool import main
from grpchelper._tool.output import EXIT_ERROR, EXIT_UNREACHABLE, EXIT_USAGE

MATRIX_METHODS = ["Unary", "ServerStream", "ClientStream", "Bidi"]


class Servicer:
    """The matrix service's handlers as the tool's tests want them: Unary echoes (text
    "metadata": the invocation metadata; text "abort": FAILED_PRECONDITION), ServerStream
    sends `count` messages, ClientStream joins the texts and sums the counts, Bidi echoes
    each message."""

    def __init__(self, pb):
        self.Msg = pb.Msg

    def Unary(self, request, context):
        if request.text == "abort":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not now")
        if request.text == "metadata":
            return self.Msg(text=json.dumps(sorted(
                (k, v if isinstance(v, str) else v.hex())
                for k, v in context.invocation_metadata() if k.startswith("x-"))))
        return self.Msg(text=request.text, count=request.count + 1, payload=request.payload)

    def ServerStream(self, request, context):
        for i in range(request.count):
            yield self.Msg(text="%s%d" % (request.text, i), count=i)

    def ClientStream(self, requests, context):
        texts, total = [], 0
        for r in requests:
            texts.append(r.text)
            total += r.count
        return self.Msg(text=",".join(texts), count=total)

    def Bidi(self, requests, context):
        for r in requests:
            yield self.Msg(text=r.text.upper(), count=r.count)


def _start(pb, kind):
    executor = futures.ThreadPoolExecutor(max_workers=4)
    if kind == "grpchelper":
        import grpchelper
        server = grpchelper.server(executor)
        server.enable_reflection()
    else:
        server = grpc.server(executor)
        reflection.enable_server_reflection(("matrix.Matrix", reflection.SERVICE_NAME), server)
    pb.add_MatrixServicer_to_server(Servicer(pb), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, executor, "127.0.0.1:%d" % port


@pytest.fixture(scope="module")
def servers(pb):
    """{"grpchelper": target, "grpcio": target}: the matrix service with reflection."""
    started = [_start(pb, kind) for kind in ("grpchelper", "grpcio")]
    try:
        yield {"grpchelper": started[0][2], "grpcio": started[1][2]}
    finally:
        for server, executor, _ in started:
            assert server.stop(0).wait(BOUND)
            executor.shutdown(wait=True)


@pytest.fixture
def target(servers):
    return servers["grpchelper"]


@pytest.fixture
def tool(capsys, monkeypatch):
    """tool(*argv, stdin="") → (exit status, stdout, stderr) of grpchelper._tool.main."""
    def run(*argv, stdin=""):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return run


def quiet(err):
    """Whether stderr holds nothing but "waiting for" notes (a slow machine may print one)."""
    return all(line.startswith("waiting for ") for line in err.splitlines())


def error_line(err):
    """The tool's error line (the last of stderr; a "waiting for" note may precede it)."""
    return err.strip().splitlines()[-1]


# ---- help and usage ----------------------------------------------------------------------

@pytest.mark.parametrize("command", ["list", "call"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: grpchelper %s" % command)
    assert "HOST:PORT" in out and "--timeout" in out


@pytest.mark.parametrize("argv", [
    ["call", "127.0.0.1:1", "NoMethod"],
    ["call", "127.0.0.1:1", "/matrix.Matrix/Unary", "{}", "-H", "no-colon"],
    ["call", "127.0.0.1:1", "/matrix.Matrix/Unary", "{}", "-H", "x-bin: not base64!"],
    ["list", "127.0.0.1:1", "--timeout", "0"],
])
def test_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == EXIT_USAGE
    assert "error:" in capsys.readouterr().err


# ---- list --------------------------------------------------------------------------------

LISTED = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
          "matrix.Matrix"]


def test_list_services(tool, target):
    code, out, err = tool("list", target)
    assert code == 0 and quiet(err), err
    assert out.splitlines() == LISTED
    code, out, _ = tool("list", target, "--json")
    assert code == 0 and json.loads(out) == LISTED


def test_list_methods(tool, target):
    code, out, _ = tool("list", target, "matrix.Matrix")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["METHOD", "KIND", "REQUEST", "->", "RESPONSE"]
    assert [l.split(None, 1)[0] for l in lines[2:]] == ["/matrix.Matrix/" + m for m in MATRIX_METHODS]
    assert lines[2].split() == ["/matrix.Matrix/Unary", "unary", "matrix.Msg", "->", "matrix.Msg"]
    assert "server streaming" in lines[3] and "client streaming" in lines[4] \
        and "bidi streaming" in lines[5]
    code, out, _ = tool("list", target, "matrix.Matrix", "--json")
    assert code == 0
    methods = json.loads(out)
    assert methods[3] == {"method": "Bidi", "path": "/matrix.Matrix/Bidi", "input": "matrix.Msg",
                          "output": "matrix.Msg", "client_streaming": True,
                          "server_streaming": True}
    assert [(m["client_streaming"], m["server_streaming"]) for m in methods] == \
        [(False, False), (False, True), (True, False), (True, True)]


def test_list_unknown_service(tool, target):
    code, out, err = tool("list", target, "matrix.Nope")
    assert (code, out) == (EXIT_ERROR, "")
    assert error_line(err).startswith("NOT_FOUND: ")


# ---- call: the four patterns -------------------------------------------------------------

def test_call_unary(tool, target):
    code, out, err = tool("call", target, "/matrix.Matrix/Unary",
                          '{"text": "hi", "count": 2, "payload": "AAE="}')
    assert code == 0 and quiet(err), err
    assert json.loads(out) == {"text": "hi", "count": 3, "payload": "AAE="}
    assert out.startswith("{\n  ")                     # indented
    code, out, _ = tool("call", target, "/matrix.Matrix/Unary", '{"text": "hi"}', "--json-lines")
    assert code == 0 and out == '{"text": "hi", "count": 1}\n'


@pytest.mark.parametrize("spelling", ["matrix.Matrix/Unary", "matrix.Matrix.Unary"])
def test_call_other_spellings(tool, target, spelling):
    code, out, _ = tool("call", target, spelling, '{"text": "x"}')
    assert code == 0 and json.loads(out) == {"text": "x", "count": 1}


def test_call_request_from_stdin(tool, target):
    code, out, _ = tool("call", target, "/matrix.Matrix/Unary", stdin='{"text": "in"}\n')
    assert code == 0 and json.loads(out) == {"text": "in", "count": 1}
    code, out, _ = tool("call", target, "/matrix.Matrix/Unary", "-", stdin="")    # empty request
    assert code == 0 and json.loads(out) == {"count": 1}


def test_call_server_stream(tool, target):
    code, out, err = tool("call", target, "/matrix.Matrix/ServerStream", '{"text": "m", "count": 3}')
    assert code == 0 and quiet(err), err
    assert out.splitlines() == ['{"text": "m0"}', '{"text": "m1", "count": 1}',
                                '{"text": "m2", "count": 2}']


def test_call_client_stream(tool, target):
    lines = '{"text": "a", "count": 1}\n\n{"text": "b", "count": 2}\n{"text": "c"}\n'
    code, out, _ = tool("call", target, "/matrix.Matrix/ClientStream", stdin=lines)
    assert code == 0 and json.loads(out) == {"text": "a,b,c", "count": 3}
    code, out, _ = tool("call", target, "/matrix.Matrix/ClientStream",
                        '[{"text": "x", "count": 5}, {"text": "y"}]')
    assert code == 0 and json.loads(out) == {"text": "x,y", "count": 5}
    code, out, _ = tool("call", target, "/matrix.Matrix/ClientStream", stdin="")  # no request
    assert code == 0 and json.loads(out) == {}


def test_call_bidi(tool, target):
    code, out, _ = tool("call", target, "/matrix.Matrix/Bidi", "-",
                        stdin='[{"text": "a"},\n {"text": "b", "count": 7}]')
    assert code == 0
    assert out.splitlines() == ['{"text": "A"}', '{"text": "B", "count": 7}']
    code, out, _ = tool("call", target, "/matrix.Matrix/Bidi", stdin='{"text": "x"}\n{"text": "y"}')
    assert code == 0 and out.splitlines() == ['{"text": "X"}', '{"text": "Y"}']


def test_call_metadata(tool, target):
    code, out, _ = tool("call", target, "/matrix.Matrix/Unary", '{"text": "metadata"}',
                        "-H", "X-One: first", "-H", "x-two:second", "--header", "x-raw-bin: AAH/")
    assert code == 0
    assert json.loads(json.loads(out)["text"]) == [["x-one", "first"], ["x-raw-bin", "0001ff"],
                                                   ["x-two", "second"]]


# ---- call: errors ------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["/matrix.Matrix/Nope", "/matrix.Nope/Unary", "/nope.Svc/M"])
def test_call_unknown_method(tool, target, method):
    code, out, err = tool("call", target, method, "{}")
    assert (code, out) == (EXIT_ERROR, "")
    assert error_line(err).startswith("NOT_FOUND: ")


def test_call_unknown_method_names_the_methods(tool, target):
    _, _, err = tool("call", target, "/matrix.Matrix/Nope", "{}")
    assert error_line(err) == ("NOT_FOUND: service matrix.Matrix has no method Nope "
                               "(it has: Unary, ServerStream, ClientStream, Bidi)")


@pytest.mark.parametrize("method,request_json,expected", [
    ("/matrix.Matrix/Unary", '{"text": ', "invalid JSON: Expecting value: line 1"),
    ("/matrix.Matrix/Unary", '{"nope": 1}', 'has no field named "nope"'),
    ("/matrix.Matrix/Unary", '{"count": "many"}', "count"),
    ("/matrix.Matrix/Unary", '[{"text": "a"}]', "the request is not a JSON object"),
    ("/matrix.Matrix/Unary", '{"text": "a"} {"text": "b"}', "takes one request"),
    ("/matrix.Matrix/ClientStream", '{"text": "a"}\n{"nope": 1}', "request 2: "),
    ("/matrix.Matrix/Bidi", '{"text": "a"}\n{"text": ', "invalid JSON: Expecting value: line 2"),
])
def test_call_bad_request(tool, target, method, request_json, expected):
    code, out, err = tool("call", target, method, request_json)
    assert (code, out) == (EXIT_ERROR, "")
    line = error_line(err)
    assert line.startswith("INVALID_ARGUMENT: ") and expected in line, line


def test_call_handler_abort(tool, target):
    code, out, err = tool("call", target, "/matrix.Matrix/Unary", '{"text": "abort"}')
    assert (code, out) == (EXIT_ERROR, "")
    assert error_line(err) == "FAILED_PRECONDITION: not now"


def test_unreachable_port(tool):
    with socket.socket() as s:                         # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for argv in (["call", "127.0.0.1:%d" % port, "/matrix.Matrix/Unary", "{}"],
                 ["list", "127.0.0.1:%d" % port]):
        code, out, err = tool(*argv)
        assert (code, out) == (EXIT_UNREACHABLE, "")
        assert error_line(err).startswith("UNAVAILABLE: ")


# ---- other servers -----------------------------------------------------------------------

def test_grpcio_reflection_v1alpha(tool, servers):
    grpcio = servers["grpcio"]
    code, out, _ = tool("list", grpcio)
    assert code == 0 and out.splitlines() == ["grpc.reflection.v1alpha.ServerReflection",
                                              "matrix.Matrix"]
    code, out, _ = tool("call", grpcio, "/matrix.Matrix/Unary", '{"text": "old"}')
    assert code == 0 and json.loads(out) == {"text": "old", "count": 1}
    code, out, _ = tool("call", grpcio, "/matrix.Matrix/Bidi", '[{"text": "a"}, {"text": "b"}]')
    assert code == 0 and out.splitlines() == ['{"text": "A"}', '{"text": "B"}']


def test_rpc_server(tool, tmp_path):
    import grpchelper

    class ToolConfig(grpchelper.ConfigHolder):
        RETRIES = grpchelper.Config(name="tool-retries", default_value="3",
                                    validator="CONFIG_VALID_POS_INT")

    folders = grpchelper.Folders(user=tmp_path / "u", workspace=tmp_path / "w")
    with grpchelper.RpcServer(0, [], folders=folders, user_items=[ToolConfig],
                              cli_config={"rpc-shutdown-grace": "1"}) as srv:
        target = "127.0.0.1:%d" % srv.port
        code, out, _ = tool("list", target)
        assert code == 0 and "ConfigService" in out.splitlines()
        code, out, err = tool("call", target, "/ConfigService/get", "{}")
        assert code == 0 and quiet(err), err
        items = {i["name"]: i for i in json.loads(out)["items"]}
        assert items["tool-retries"]["value"] == "3"
        assert items["tool-retries"]["validator"] == "CONFIG_VALID_POS_INT"
        code, out, err = tool("call", target, "/ConfigService/set",
                              '{"items": [{"name": "no-such-item", "value": "1"}]}')
        assert code == EXIT_ERROR
        assert json.loads(out)["r"]["code"] == "ERROR_ITEM_UNKNOWN"   # printed all the same
        assert error_line(err).startswith("ERROR_ITEM_UNKNOWN: ")
        assert "no-such-item" in error_line(err)


def test_subprocess(target):
    env = dict(os.environ, PYTHONPATH=BINDINGS_PYTHON)
    r = subprocess.run([sys.executable, "-m", "grpchelper", "call", target, "matrix.Matrix/ServerStream"],
                       input='{"text": "p", "count": 2}', env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and quiet(r.stderr), r.stderr
    assert r.stdout.splitlines() == ['{"text": "p0"}', '{"text": "p1", "count": 1}']
    r = subprocess.run([sys.executable, "-m", "grpchelper", "call", target, "/matrix.Matrix/Unary",
                        '{"text": "abort"}'], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == EXIT_ERROR
    assert r.stderr.strip().splitlines()[-1] == "FAILED_PRECONDITION: not now"


def test_no_request_at_a_terminal_is_an_empty_one(target):
    """Without JSON and with a terminal as stdin, `call` sends an empty request (as grpcurl)
    instead of waiting for input nobody is typing."""
    import pty
    master, slave = pty.openpty()
    try:
        env = dict(os.environ, PYTHONPATH=BINDINGS_PYTHON)
        r = subprocess.run([sys.executable, "-m", "grpchelper", "call", target, "/matrix.Matrix/Unary"],
                           stdin=slave, env=env, capture_output=True, text=True, timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"count": 1}
