"""RpcCliParser (grpc-helper's command line, with argparse): defaults, every RPC option,
repeated -c, a malformed -c (grpc-helper's ArgumentTypeError), usage errors (exit status 2
naming the value), -V, the host's own options,
and the result feeding a ConfigSet."""

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grpchelper import Config, ConfigSet, Folders, RpcCliParser
from grpchelper.api import ConfigItemUpdate, ConfigUpdate, ConfigValidator


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """HOME in tmp_path: "~" paths never touch the real home."""
    h = tmp_path / "home"
    monkeypatch.setenv("HOME", str(h))
    return h


def parser(**kwargs):
    return RpcCliParser("A test server", **kwargs).with_rpc_args()


def test_defaults(home):
    args = parser().parse([])
    assert args.port == 54321
    assert args.config == {}
    assert args.system == Path("/etc/grpc_helper")
    assert args.user == home / ".config" / "grpc_helper"
    assert args.workspace == Path("grpc_helper")
    assert isinstance(args.folders, Folders)
    assert args.folders.system == Path("/etc/grpc_helper")


def test_host_defaults(home, tmp_path):
    p = RpcCliParser("d").with_rpc_args(default_port=1234, default_sys="~/s",
                                        default_usr=str(tmp_path / "u"),
                                        default_wks=tmp_path / "w")
    args = p.parse([])
    assert (args.port, args.system, args.user, args.workspace) == (
        1234, home / "s", tmp_path / "u", tmp_path / "w")


def test_every_option(tmp_path, home):
    args = parser().parse(["--system", str(tmp_path / "s"), "--user", "~/u",
                           "-w", str(tmp_path / "w"), "-p", "4321",
                           "-c", "gh-a=1", "--config", "gh-b=x=y", "-c", "gh-c="])
    assert args.system == tmp_path / "s"
    assert args.user == home / "u"                      # "~" expanded (Python's: $HOME)
    assert args.workspace == tmp_path / "w"
    assert args.port == 4321
    assert args.config == {"gh-a": "1", "gh-b": "x=y", "gh-c": ""}
    assert args.folders.user == home / "u" and (home / "u").is_dir()
    assert args.folders.workspace == tmp_path / "w"
    args = parser().parse(["--workspace", "~/ws", "--port", "7"])
    assert (args.workspace, args.port) == (home / "ws", 7)


def test_repeated_config_last_wins_and_fresh_dicts():
    p = parser()
    first = p.parse(["-c", "gh-a=1", "-c", "gh-a=2", "-c", "gh-b=3"])
    assert first.config == {"gh-a": "2", "gh-b": "3"}
    first.config["gh-z"] = "mutated"
    second = p.parse([])
    assert second.config == {} and second.config is not first.config
    third = p.parse([])
    assert third.config is not second.config


@pytest.mark.parametrize("bad", ["novalue", "A=1", "1a=2", "=x", "a_b=1", "x y=1", ""])
def test_malformed_config_raises_argument_type_error(bad, capsys):
    """As grpc-helper's: ArgumentTypeError out of parse(), not argparse's exit."""
    with pytest.raises(argparse.ArgumentTypeError) as e:
        parser().parse(["-c", bad])
    assert str(e.value) == "Invalid syntax for config item definition: " + bad
    assert capsys.readouterr().err == ""


def test_config_value_is_everything_after_the_first_equals():
    args = parser().parse(["-c", "gh-a=b=c", "--config=gh-e="])
    assert args.config == {"gh-a": "b=c", "gh-e": ""}


def test_bad_port_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        parser().parse(["-p", "http"])
    assert e.value.code == 2
    assert "'http'" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        parser(version="1.2.3").parse(["-V"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == "1.2.3"
    with pytest.raises(SystemExit) as e:
        parser(version="1.2.3").parse(["--version"])
    assert e.value.code == 0
    with pytest.raises(SystemExit) as e:          # no version given: no -V option
        parser().parse(["-V"])
    assert e.value.code == 2


def test_host_options_and_argv(monkeypatch):
    p = parser()
    assert p.with_rpc_args is not None and p.parser.description == "A test server"
    p.parser.add_argument("--mode", choices=["a", "b"], default="a")
    args = p.parse(["--mode", "b", "-p", "1"])
    assert (args.mode, args.port) == ("b", 1)
    monkeypatch.setattr(sys, "argv", ["prog", "-p", "99", "-c", "gh-q=1"])
    args = p.parse()
    assert (args.port, args.config, args.mode) == (99, {"gh-q": "1"}, "a")
    assert p.parse(input_args=["-p", "5"]).port == 5     # grpc-helper's keyword


def test_without_rpc_args():
    p = RpcCliParser("plain")
    p.parser.add_argument("x")
    args = p.parse(["value"])
    assert args.x == "value" and not hasattr(args, "folders")


def test_result_feeds_a_config_set(tmp_path):
    args = parser().parse(["--system", str(tmp_path / "s"), "--user", str(tmp_path / "u"),
                           "-w", str(tmp_path / "w"), "-c", "gh-cli-item=42"])
    item = Config(name="gh-cli-item", default_value="1", validator=ConfigValidator.CONFIG_VALID_INT)
    other = Config(name="gh-other", default_value="x")
    with ConfigSet(user_items=[item, other], folders=args.folders, cli_config=args.config) as s:
        assert (item.default_value, item.int_val) == ("42", 42)
        s.set(ConfigUpdate(items=[ConfigItemUpdate(name="gh-other", value="y")]))
    assert json.loads((tmp_path / "w" / "config.json").read_text()) == {"gh-other": "y"}


def test_import_without_protobuf(tmp_path):
    """`import grpchelper` loads no helper module; Folders and RpcCliParser work without
    protobuf and grpcio, and the protobuf-based names fail only when used."""
    code = textwrap.dedent("""
        import sys
        sys.modules["google.protobuf"] = None      # import google.protobuf now fails
        sys.modules["grpc"] = None
        import grpchelper
        assert not [m for m in sys.modules if m.endswith((".config", ".config_set", ".logs"))
                    and m.startswith("grpchelper")], sorted(sys.modules)
        args = grpchelper.RpcCliParser("d").with_rpc_args().parse(["-w", sys.argv[1], "-c", "a=1"])
        assert args.config == {"a": "1"} and args.folders.workspace.is_dir()
        try:
            grpchelper.Config
        except ImportError:
            print("ok")
    """)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=here + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "w")], env=env, cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
