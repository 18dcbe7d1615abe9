"""RpcCliParser, ours against the ORIGINAL grpc-helper 2.3.1: the same command lines give
the same namespace (port, config, folders) or fail the same way (the exception type and
text out of parse(), or argparse's exit status). Each side parses in a child process of
its own, with a fresh parser per command line (the original's -c default dict is shared
by every parse of one parser; ours is new each time: a listed difference)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import original

ROOT = Path(__file__).resolve().parents[2]

ARGVS = [
    [],
    ["-p", "1234"],
    ["--port=42", "-w", "/tmp/ws", "--system", "/tmp/sys", "--user", "/tmp/usr"],
    ["-c", "rpc-a=1", "-c", "rpc-a=2", "--config", "rpc-b=x=y", "--config=rpc-c="],
    ["-c", "novalue"],
    ["-c", "A=1"],
    ["-c", "1a=2"],
    ["-c", "=x"],
    ["-c", "a_b=1"],
    ["-c", "x y=1"],
    ["-c", ""],
    ["-c", "ok=1", "-c", "bad"],
    ["-c"],
    ["-p", "http"],
    ["-p"],
    ["--unknown"],
    ["extra"],
    ["-V"],
    ["--version"],
    ["-h"],
]

CHILD = r'''
import contextlib, io, json, sys
module = sys.argv[1]
RpcCliParser = __import__(module, fromlist=["RpcCliParser"]).RpcCliParser
out = []
for argv in json.loads(sys.argv[2]):
    p = RpcCliParser("parity test", version="9.8.7").with_rpc_args(
        default_sys="/tmp/d-sys", default_usr="/tmp/d-usr", default_wks="/tmp/d-wks")
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            a = p.parse(argv)
        out.append({"ok": {"port": a.port, "config": a.config, "system": str(a.system),
                           "user": str(a.user), "workspace": str(a.workspace),
                           "folders": [str(a.folders.system), str(a.folders.user),
                                       str(a.folders.workspace)]}})
    except SystemExit as e:
        r = {"exit": e.code}
        if argv and argv[0] in ("-V", "--version"):
            r["stdout"] = stdout.getvalue()
        out.append(r)
    except Exception as e:
        out.append({"raise": [type(e).__module__ + "." + type(e).__name__, str(e)]})
print(json.dumps(out))
'''


def run(env, module):
    r = subprocess.run([sys.executable, "-c", CHILD, module, json.dumps(ARGVS)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def test_same_namespaces_and_errors_as_the_original(original_target):
    theirs = run(original.child_env(original_target), "grpc_helper")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "bindings" / "python")
    ours = run(env, "grpchelper")
    assert len(theirs) == len(ours) == len(ARGVS)
    for argv, t, o in zip(ARGVS, theirs, ours):
        assert o == t, "command line %r: ours %r, the original's %r" % (argv, o, t)
    # What the list covers: successes, ArgumentTypeError texts, argparse exits 0 and 2.
    kinds = {next(iter(t)) for t in theirs}
    assert kinds == {"ok", "raise", "exit"}
    assert {"exit": 2} in theirs and {"exit": 0} in theirs
