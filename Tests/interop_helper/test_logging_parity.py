"""Logger levels in a Python host, ours against the ORIGINAL grpc-helper 2.3.1: one program
(the same source, run once with grpc_helper / grpc_helper_api and once with grpchelper /
grpchelper.api, each in a child process of its own) layers loggers.json files, serves a
manager, drives the log service and Python's loggers, and reports what it sees: Python's
levels and `disabled` flags after the start, get / set / reset answers, the persisted
workspace file, which records reached the manager's rolling file, and whether its lines
rolled the file over. Both must report the same."""
import json
import subprocess
import sys

from . import original
from .test_cross import our_env, our_gen  # noqa: F401 (fixture)

CHILD = r'''
import importlib, json, logging, socket, sys, time, types
from pathlib import Path

helper = importlib.import_module(sys.argv[1])
api = importlib.import_module(sys.argv[2])
LoggerServiceStub = importlib.import_module(sys.argv[2] + ".logger_pb2_grpc").LoggerServiceStub
base = Path(sys.argv[3])
from sample_pb2 import SampleApiVersion, SampleRequest, SampleStatus
from sample_pb2_grpc import SampleServiceServicer, SampleServiceStub, add_SampleServiceServicer_to_server

folders = {k: base / k for k in ("sys", "usr", "wks")}
layers = {"sys": {"root": "INFO", "DemoManager": "WARNING", "lib.a": "ERROR", "lib.t": "DEBUG"},
          "usr": {"DemoManager": "DEBUG", "lib.b": False, "lib.c": "NOPE", "lib.t": True},
          "wks": {"lib.d": "CRITICAL"}}
for k, layer in layers.items():
    folders[k].mkdir(parents=True)
    (folders[k] / "loggers.json").write_text(json.dumps(layer))

module = types.ModuleType("parity_sample")
module.__title__, module.__version__ = "parity-sample", "1.0.0"


class DemoManager(SampleServiceServicer, helper.RpcManager):
    def __init__(self):
        helper.RpcManager.__init__(self)

    def echo(self, request: SampleRequest) -> SampleStatus:
        self.logger.debug("echo debug %s", request.text)
        self.logger.info("echo info %s", request.text)
        self.logger.warning("echo warning %s", request.text)
        return SampleStatus(text=request.text)


NAMES = ["", "DemoManager", "RpcServer", "lib.a", "lib.b", "lib.c", "lib.d", "lib.e", "lib.t", "lib.x"]


def python_levels():
    out = {}
    for n in NAMES:
        lg = logging.getLogger(n) if n else logging.getLogger()
        out[n or "root"] = [lg.level, lg.disabled]
    return out


def items(status):
    return [[i.name, i.enabled, api.LoggerLevel.Name(i.level)] for i in status.items]


def persisted():
    p = folders["wks"] / "loggers.json"
    return json.loads(p.read_text()) if p.exists() else None


with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
logging.getLogger("lib.t").setLevel(logging.ERROR)
out = {"root_before": logging.getLogger().level}
srv = helper.RpcServer(port, [helper.RpcServiceDescriptor(module, "sample", SampleApiVersion, DemoManager(),
                                                          add_SampleServiceServicer_to_server, SampleServiceStub)],
                       helper.Folders(folders["sys"], folders["usr"], folders["wks"]),
                       {"rpc-logs-interval-unit": "S", "rpc-logs-interval": "1", "rpc-shutdown-grace": "1",
                        "rpc-shutdown-timeout": "1"})
try:
    out["after_start"] = python_levels()
    client = helper.RpcClient("127.0.0.1", port,
                              {"log": (LoggerServiceStub, api.LoggerApiVersion.LOGGER_API_CURRENT),
                               "sample": (SampleServiceStub, SampleApiVersion.SAMPLE_API_CURRENT)}, timeout=5)
    log = client.log
    out["get"] = items(log.get(api.Filter(names=["", "root", "DemoManager", "lib.a", "lib.b", "lib.x"])))
    logging.getLogger("lib.x").setLevel(15)
    logging.getLogger("lib.a").disabled = True
    out["get_python_changes"] = items(log.get(api.Filter(names=["lib.x", "lib.a"])))
    client.sample.echo(SampleRequest(text="first"))
    time.sleep(1.1)                  # time passing: one rollover period (not a synchronisation)
    client.sample.echo(SampleRequest(text="second"))
    out["set"] = items(log.set(api.LoggerUpdate(items=[
        api.LoggerConfig(name="lib.a", enabled=True, level=api.LoggerLevel.LVL_DEBUG),
        api.LoggerConfig(name="lib.e", enabled=False, level=api.LoggerLevel.LVL_INFO),
        api.LoggerConfig(name="DemoManager", enabled=True, level=api.LoggerLevel.LVL_ERROR)])))
    out["after_set"] = python_levels()
    out["persisted_after_set"] = persisted()
    client.sample.echo(SampleRequest(text="third"))
    out["reset"] = items(log.reset(api.Filter(names=["lib.a", "lib.e", "", "lib.d", "lib.t"])))
    out["after_reset"] = python_levels()
    out["persisted_after_reset"] = persisted()
    try:
        log.get(api.Filter())
    except helper.RpcException as e:
        out["empty_get"] = api.ResultCode.Name(e.rc)
finally:
    srv.shutdown()
logs = folders["wks"] / "logs" / "DemoManager"
text = "".join(p.read_text() for p in sorted(logs.iterdir()))
out["records"] = sorted({f"{level} {word} {what}" for level in ("DEBUG", "INFO", "WARNING")
                         for word, what in [(level.lower(), t) for t in ("first", "second", "third")]
                         if f"{level} echo {word} {what}" in text})
out["rolled_over"] = any(p.name != "DemoManager.log" for p in logs.iterdir())
print(json.dumps(out))
'''


def run(env, helper, api, base):
    r = subprocess.run([sys.executable, "-c", CHILD, helper, api, str(base)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_logger_levels_as_the_original(original_target, sample_gen, our_gen, tmp_path):
    theirs = run(original.child_env(original_target, sample_gen), "grpc_helper", "grpc_helper_api",
                 tmp_path / "theirs")
    ours = run(our_env(our_gen), "grpchelper", "grpchelper.api", tmp_path / "ours")
    # What the original does, spelled out (so that a change on either side shows here).
    assert theirs["root_before"] == 30
    assert theirs["after_start"]["root"] == [20, False]
    assert theirs["after_start"]["DemoManager"] == [10, False]
    assert theirs["after_start"]["lib.b"] == [0, True]
    assert theirs["after_start"]["lib.t"] == [40, False]          # True (usr) replaced DEBUG (sys)
    assert theirs["get"][0] == ["root", True, "LVL_INFO"]
    assert theirs["get_python_changes"] == [["lib.x", True, "LVL_UNKNOWN"], ["lib.a", False, "LVL_ERROR"]]
    assert theirs["reset"][2] == ["root", True, "LVL_WARNING"]    # the level before the layers
    assert "DEBUG debug first" in theirs["records"] and "DEBUG debug third" not in theirs["records"]
    assert theirs["rolled_over"] is True
    for key in theirs:
        assert ours.get(key) == theirs[key], key
    assert ours == theirs
