"""The grpchelper command-line tool's server commands (grpchelper._tool: serve, info,
config, log, events, proxy, shutdown), run in-process through main() against an
RpcServer, and as the installed-style program (`python3 -m grpchelper`) in subprocesses:
`serve` as a main server (with a proxied service, its rolling logs, shutdown by the tool
and by SIGTERM), `events listen` printing events sent meanwhile.
"""
import json
import os
import queue
import signal
import subprocess
import sys
import threading

import pytest

from conftest import BINDINGS_PYTHON, BOUND

from grpchelper import Config, Folders, RpcServer
from grpchelper._tool import main

REPO = os.path.dirname(os.path.dirname(BINDINGS_PYTHON))
EXAMPLES_PYTHON = os.path.join(REPO, "examples", "python")


@pytest.fixture
def server(tmp_path):
    srv = RpcServer(0, [], folders=Folders(user=tmp_path / "usr", workspace=tmp_path / "wks"),
                    user_items=[Config(name="my-item", description="an item of the host", default_value="first")],
                    cli_config={"rpc-shutdown-grace": "1"}, with_events=True)
    yield srv
    srv.shutdown()
    srv.close()


def run(capsys, *argv):
    """main(argv) → (exit status, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_info(server, capsys):
    code, out, err = run(capsys, "info", "-p", server.port)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["service", "version", "api", "proxy"]
    assert [l.split()[0] for l in lines[2:]] == ["srv", "config", "log", "events"]
    code, out, _ = run(capsys, "info", "-p", server.port, "--json", "config")
    assert code == 0
    assert [i["name"] for i in json.loads(out)["items"]] == ["config"]
    code, out, err = run(capsys, "info", "-p", server.port, "nope")
    assert code == 1 and out == ""
    assert err == "ERROR_ITEM_UNKNOWN: At least one of the required service names is unknown\n"


def test_config_get_set_reset(server, capsys):
    code, out, err = run(capsys, "config", "get", "-p", server.port)
    assert code == 0, err
    row = out.splitlines()[2].split()
    assert row[:2] == ["my-item", "first"]
    code, out, err = run(capsys, "config", "set", "-p", server.port, "my-item=second", "--json")
    assert code == 0, err
    assert json.loads(out)["items"][0]["value"] == "second"
    assert server.config.item("my-item").str_val == "second"
    code, out, err = run(capsys, "config", "reset", "-p", server.port, "my-item")
    assert code == 0 and out.splitlines()[2].split()[:2] == ["my-item", "first"]
    # errors: the server's result code, and the tool's own argument check
    code, out, err = run(capsys, "config", "set", "-p", server.port, "nope=1")
    assert code == 1 and err.startswith("ERROR_ITEM_UNKNOWN: ")
    code, out, err = run(capsys, "config", "set", "-p", server.port, "no-equal-sign")
    assert code == 1 and err.startswith("ERROR_PARAM_INVALID: ") and "NAME=VALUE" in err


def test_log_get_set_reset(server, capsys):
    code, out, err = run(capsys, "log", "set", "-p", server.port, "demo.logger=debug")
    assert code == 0, err
    assert out.splitlines()[2].split() == ["demo.logger", "debug", "yes"]
    code, out, _ = run(capsys, "log", "get", "-p", server.port, "demo.logger", "--json")
    assert json.loads(out)["items"] == [{"name": "demo.logger", "enabled": True, "level": "LVL_DEBUG"}]
    code, out, _ = run(capsys, "log", "set", "-p", server.port, "demo.logger=error", "--disable")
    assert out.splitlines()[2].split() == ["demo.logger", "error", "no"]
    code, out, _ = run(capsys, "log", "reset", "-p", server.port, "demo.logger")
    assert code == 0 and out.splitlines()[2].split()[2] == "yes"
    code, out, err = run(capsys, "log", "set", "-p", server.port, "demo.logger=loud")
    assert code == 1 and err.startswith("ERROR_PARAM_INVALID: ") and "debug, info" in err
    with pytest.raises(SystemExit) as e:
        main(["log", "get", "-p", str(server.port)])     # names required
    assert e.value.code == 2


def test_events_send_and_proxy_list(server, capsys):
    code, out, err = run(capsys, "events", "send", "-p", server.port, "demo.event", "a=1", "b=two")
    assert code == 0 and out.strip() == "sent demo.event a=1 b=two", err
    code, out, err = run(capsys, "events", "send", "-p", server.port, "bad name")
    assert code == 1 and err.startswith("ERROR_PARAM_INVALID: ")
    code, out, _ = run(capsys, "proxy", "list", "-p", server.port, "--json")
    assert code == 0 and json.loads(out) == []
    code, out, err = run(capsys, "proxy", "register", "-p", server.port, "nope", "--backend-port", "1")
    assert code == 1 and err == "ERROR_ITEM_UNKNOWN: At least one of the required service names is unknown\n"


def test_unreachable_server_exit_3(capsys):
    import socket
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = run(capsys, "info", "--host", "127.0.0.1", "-p", port, "--timeout", "0.8")
    assert code == 3
    assert "waiting for 127.0.0.1:%d" % port in err
    assert err.rstrip().endswith("UNAVAILABLE: cannot reach 127.0.0.1:%d (waited 0.8s)" % port)


def test_help_of_every_command(capsys):
    for argv in (["--help"], ["info", "--help"], ["config", "set", "--help"], ["log", "get", "--help"],
                 ["events", "listen", "--help"], ["proxy", "register", "--help"], ["shutdown", "--help"],
                 ["serve", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0, argv
        out, _ = capsys.readouterr()
        assert "usage: grpchelper" in out, argv
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2


# --------------------------------------------------------------------------- subprocesses

def tool_env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([BINDINGS_PYTHON, EXAMPLES_PYTHON]))


class Program:
    """`python3 -m grpchelper ARGS` with its output lines in queues."""

    def __init__(self, *argv):
        self.proc = subprocess.Popen([sys.executable, "-m", "grpchelper"] + [str(a) for a in argv],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=tool_env())
        self.out, self.err = queue.Queue(), queue.Queue()
        for stream, q in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, q), daemon=True).start()

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)

    def line(self, q=None, startswith=""):
        """The next line of stdout (or q) starting with `startswith` (bounded wait)."""
        q = q or self.out
        while True:
            line = q.get(timeout=BOUND * 3)
            if line is None:
                raise AssertionError("the program ended (exit %s) without a line %r"
                                     % (self.proc.wait(BOUND), startswith))
            if line.startswith(startswith):
                return line

    def wait(self):
        try:
            return self.proc.wait(BOUND * 3)
        finally:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def tool(*argv):
    return subprocess.run([sys.executable, "-m", "grpchelper"] + [str(a) for a in argv],
                          capture_output=True, text=True, env=tool_env(), timeout=BOUND * 6)


def test_serve_as_a_main_server_with_a_proxied_service(tmp_path):
    for d in ("sys", "usr"):
        (tmp_path / d).mkdir()
    serve = Program("serve", "-p", 0, "-w", tmp_path / "wks", "--system", tmp_path / "sys",
                    "--user", tmp_path / "usr", "-c", "rpc-shutdown-grace=1",
                    "--proxy", "my=sample.my_pb2_grpc")
    try:
        port = int(serve.line(startswith="serving on port ").split()[-1])
        r = tool("info", "-p", port, "--json")
        assert r.returncode == 0, r.stderr
        items = {i["name"]: i for i in json.loads(r.stdout)["items"]}
        assert sorted(items) == ["config", "events", "log", "my", "srv"]
        assert items["my"]["is_proxy"] and items["my"]["proxy_port"] == 0
        r = tool("proxy", "register", "-p", port, "my", "--backend-port", 4242, "--backend-host",
                 "127.0.0.1", "--version", "sample:2.0")
        assert r.returncode == 0 and r.stdout.strip() == "registered my at 127.0.0.1:4242", r.stderr
        r = tool("proxy", "list", "-p", port)
        assert r.stdout.splitlines()[2].split() == ["my", "127.0.0.1:4242", "sample:2.0"]
        r = tool("proxy", "forget", "-p", port, "my")
        assert r.returncode == 0 and r.stdout.strip() == "forgot my"
        # a listener sees the events sent meanwhile, then ends after --count
        listen = Program("events", "listen", "-p", port, "--count", 2, "--json", "demo.a", "demo.b")
        try:
            assert listen.line(listen.err, "listening to the events of").startswith("listening")
            for name in ("demo.other", "demo.a", "demo.b"):
                assert tool("events", "send", "-p", port, name, "k=v").returncode == 0
            got = [json.loads(listen.line()), json.loads(listen.line())]
            assert [e["name"] for e in got] == ["demo.a", "demo.b"]
            assert got[0]["properties"] == [{"name": "k", "value": "v"}]
            assert listen.wait() == 0
        finally:
            listen.kill()
        # a listener interrupted by Ctrl-C while no event comes ends at once (130); one
        # still listening when the server shuts down ends with it (0)
        quiet = Program("events", "listen", "-p", port)
        waiting = Program("events", "listen", "-p", port)
        try:
            quiet.line(quiet.err, "listening to the events of")
            waiting.line(waiting.err, "listening to the events of")
            quiet.proc.send_signal(signal.SIGINT)
            assert quiet.wait() == 130
            r = tool("shutdown", "-p", port)
            assert r.returncode == 0 and "is shutting down" in r.stdout, r.stderr
            assert waiting.line(waiting.err, "localhost:%d shut down" % port)
            assert waiting.wait() == 0
        finally:
            quiet.kill()
            waiting.kill()
        assert serve.wait() == 0
        # its rolling logs are in the workspace
        assert (tmp_path / "wks" / "logs" / "RpcServer" / "RpcServer.log").exists()
    finally:
        serve.kill()


def test_serve_stops_on_sigterm_and_reports_a_busy_port(tmp_path):
    for d in ("sys", "usr"):
        (tmp_path / d).mkdir()
    common = ["-w", tmp_path / "wks", "--system", tmp_path / "sys", "--user", tmp_path / "usr"]
    serve = Program("serve", "-p", 0, *common)
    try:
        port = int(serve.line(startswith="serving on port ").split()[-1])
        r = tool("serve", "-p", port, *common)
        assert r.returncode == 1 and r.stderr.startswith("ERROR_PORT_BUSY: "), r.stderr
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.wait() == 0
    finally:
        serve.kill()
    r = tool("serve", "--proxy", "bad", *common)
    assert r.returncode == 2 and "NAME=MODULE" in r.stderr
    r = tool("serve", "-p", 0, "--proxy", "x=no_such_module_pb2_grpc", *common)
    assert r.returncode == 1 and "cannot import no_such_module_pb2_grpc" in r.stderr


def test_the_installed_console_script(server, tmp_path):
    """pip installs the `grpchelper` console script with the package; it runs against a
    real server from the installed copy alone (library by GRPCHELPER_LIBRARY)."""
    from _util import build_wheel
    wheel = build_wheel(tmp_path)
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site),
                        str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    script = site / "bin" / "grpchelper"
    assert script.exists()
    import grpchelper
    env = dict(os.environ, PYTHONPATH=str(site),
               GRPCHELPER_LIBRARY=os.path.realpath(grpchelper._ffi.lib._name))
    r = subprocess.run([str(script), "info", "-p", str(server.port), "srv"], capture_output=True,
                       text=True, env=env, cwd=str(tmp_path), timeout=BOUND * 6)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[2].split()[0] == "srv"
    r = subprocess.run([str(script), "list", "127.0.0.1:%d" % server.port], capture_output=True,
                       text=True, env=env, cwd=str(tmp_path), timeout=BOUND * 6)
    assert r.returncode == 0, r.stderr
    assert "RpcServerService" in r.stdout.split() and "grpc.health.v1.Health" in r.stdout.split()
    # (PYTHONPATH holds the installed copy only, and the tree is not the working folder)
    r = subprocess.run([str(script), "--version"], capture_output=True, text=True, env=env,
                       cwd=str(tmp_path), timeout=BOUND * 6)
    assert r.returncode == 0 and r.stdout.strip() == "grpchelper %s" % grpchelper.__version__
