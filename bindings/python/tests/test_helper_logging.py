"""A managed RpcServer in a Python host: Python's `logging` is the one source of truth for
logger levels (as in grpc-helper). The loggers.json layers are applied to Python loggers at
start, the log service reads and sets them, a manager's Python logger level decides what
reaches its rolling file (the library's per-call lines included), and those lines drive the
time-based rollover."""

import json
import logging
import logging.config
import re
import time

from grpchelper.api import Filter, LoggerConfig, LoggerLevel, LoggerUpdate

from test_rpc_server import clients, descriptor, dirs, pb, sample_client, servers  # noqa: F401


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_a_manager_at_debug_gets_debug_lines_in_its_file(pb, servers, clients, dirs):
    workspace, _ = dirs
    m = pb.classes.SampleManager()
    m.logger.setLevel(logging.DEBUG)
    srv = servers(descriptor(pb, m))
    c = sample_client(clients, pb, srv, exception=False)
    c.sample.hello(pb.Request(name="dbg"))
    m.logger.debug("a debug line of the manager's own")
    srv.shutdown()
    own = _lines(workspace / "logs" / "SampleManager" / "SampleManager.log")
    text = "\n".join(own)
    assert "INFO ---------- New SampleManager logger instance" in text
    # The library's per-call line, on the manager's logger (grpc-helper's "<RPC> <<" line).
    assert re.search(r"\[[^\]]+/SampleManager\] DEBUG <RPC> << /[\w.]+/hello \(client ", text), text
    assert "INFO hello called for dbg" in text
    assert "DEBUG a debug line of the manager's own" in text
    root = (workspace / "logs" / "root" / "root.log").read_text()
    assert "DEBUG <RPC> << " in root and "DEBUG a debug line of the manager's own" in root


def test_at_the_default_levels_only_warnings_and_errors_are_written(pb, servers, clients, dirs):
    """Root at WARNING (Python's default), the manager's logger without a level: its INFO and
    DEBUG records (and the header line, an INFO record) are not written, errors are."""
    workspace, _ = dirs
    assert logging.getLogger().level == logging.WARNING
    m = pb.classes.SampleManager()
    srv = servers(descriptor(pb, m))
    c = sample_client(clients, pb, srv, exception=False)
    c.sample.hello(pb.Request(name="quiet"))
    c.sample.hello(pb.Request(code=20, error="loud failure"))
    srv.shutdown()
    text = "\n".join(_lines(workspace / "logs" / "SampleManager" / "SampleManager.log"))
    assert "hello called" not in text and "<RPC>" not in text and "New SampleManager" not in text
    assert "ERROR Exception occurred: loud failure" in text


def test_the_log_service_reads_and_drives_python_loggers(pb, servers, dirs):
    workspace, _ = dirs
    m = pb.classes.SampleManager()
    srv = servers(descriptor(pb, m))
    log = srv.client.log

    def get(*names):
        return [(i.name, i.enabled, i.level) for i in log.get(Filter(names=list(names))).items]

    assert get("", "SampleManager") == [("root", True, LoggerLevel.LVL_WARNING),
                                        ("SampleManager", True, LoggerLevel.LVL_UNKNOWN)]
    logging.getLogger("SampleManager").setLevel(logging.ERROR)      # set in Python: seen
    logging.getLogger("gh-off").disabled = True
    assert get("SampleManager", "gh-off") == [("SampleManager", True, LoggerLevel.LVL_ERROR),
                                              ("gh-off", False, LoggerLevel.LVL_UNKNOWN)]

    log.set(LoggerUpdate(items=[LoggerConfig(name="SampleManager", enabled=True,
                                             level=LoggerLevel.LVL_DEBUG),
                                LoggerConfig(name="gh-quiet", enabled=False,
                                             level=LoggerLevel.LVL_INFO)]))
    assert m.logger.level == logging.DEBUG and m.logger.isEnabledFor(logging.DEBUG)
    assert logging.getLogger("gh-quiet").disabled
    assert json.loads((workspace / "loggers.json").read_text()) == {
        "SampleManager": "DEBUG", "gh-quiet": False}

    log.reset(Filter(names=["SampleManager", "gh-quiet"]))
    assert m.logger.level == logging.NOTSET and not logging.getLogger("gh-quiet").disabled
    assert json.loads((workspace / "loggers.json").read_text()) == {}


def test_loggers_json_layers_are_applied_at_start(pb, servers, dirs, tmp_path):
    """The user layer (tmp_path/usr) and the workspace layer, applied to Python loggers when
    the server starts; the server's own first records (before its constructor returned)
    reach the files of the loggers they are for."""
    workspace, _ = dirs
    (tmp_path / "usr").mkdir()
    (tmp_path / "usr" / "loggers.json").write_text(
        json.dumps({"root": "INFO", "SampleManager": "DEBUG", "gh-layer": "ERROR"}))
    workspace.mkdir()
    (workspace / "loggers.json").write_text(json.dumps({"gh-layer": False}))
    m = pb.classes.SampleManager()
    srv = servers(descriptor(pb, m))
    assert logging.getLogger().level == logging.INFO
    assert m.logger.level == logging.DEBUG
    layer = logging.getLogger("gh-layer")
    assert layer.disabled and layer.level == logging.NOTSET       # the workspace's false wins
    srv.shutdown()
    server_log = "\n".join(_lines(workspace / "logs" / "RpcServer" / "RpcServer.log"))
    assert re.search(r"INFO RPC server started on port %d" % srv.port, server_log), server_log
    own = "\n".join(_lines(workspace / "logs" / "SampleManager" / "SampleManager.log"))
    assert "INFO sample manager loaded" in own


def test_library_records_reach_the_programs_own_handlers(pb, servers, clients):
    """The library's records are Python records of the named logger: a handler the program
    put on the root logger sees them (with the library's source and thread)."""
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    keep = Keep()
    logging.getLogger().addHandler(keep)
    try:
        m = pb.classes.SampleManager()
        m.logger.setLevel(logging.DEBUG)
        srv = servers(descriptor(pb, m))
        sample_client(clients, pb, srv, exception=False).sample.hello(pb.Request(name="h"))
        srv.shutdown()
    finally:
        logging.getLogger().removeHandler(keep)
    calls = [r for r in seen if r.name == "SampleManager" and r.getMessage().startswith("<RPC> << /")]
    assert len(calls) == 1 and calls[0].levelno == logging.DEBUG
    assert calls[0].filename == "RpcServer.swift" and calls[0].lineno > 0
    assert calls[0].threadName.startswith("gh-worker")


def test_debug_lines_make_time_based_rollover_happen(pb, servers, clients, dirs):
    workspace, _ = dirs
    m = pb.classes.SampleManager()
    m.logger.setLevel(logging.DEBUG)
    srv = servers(descriptor(pb, m), cli_config={"rpc-logs-interval-unit": "S",
                                                 "rpc-logs-interval": "1"})
    c = sample_client(clients, pb, srv, exception=False)
    c.sample.hello(pb.Request(name="first"))
    time.sleep(1.1)                  # time passing: one rollover period (not a synchronisation)
    c.sample.hello(pb.Request(name="second"))
    srv.shutdown()
    folder = workspace / "logs" / "SampleManager"
    rolled = sorted(p for p in folder.iterdir() if p.name != "SampleManager.log")
    assert rolled, list(folder.iterdir())
    assert re.fullmatch(r"SampleManager\.log\.\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}", rolled[0].name)
    assert "hello called for first" in rolled[0].read_text()
    current = (folder / "SampleManager.log").read_text()
    assert "DEBUG <RPC> << " in current and "hello called for second" in current


def test_the_librarys_level_decisions_follow_every_change_of_python_logging(dirs):
    """The library caches Python's answers (a callback per decision would cost a thread state
    and the GIL each time) and drops them on each change `logging` makes: a level (also a
    parent's), logging.disable, a logger's `disabled` flag, dictConfig; what the library
    itself sets through the log service."""
    from grpchelper import Folders, RpcLogs
    workspace, _ = dirs
    with RpcLogs(folders=Folders(workspace=str(workspace))) as logs:
        parent, child = logging.getLogger("cache.p"), logging.getLogger("cache.p.c")
        parent.setLevel(logging.ERROR)
        assert not logs.enabled("cache.p.c", logging.WARNING)
        assert not logs.enabled("cache.p.c", logging.WARNING)         # asked again: cached
        parent.setLevel(logging.DEBUG)
        assert logs.enabled("cache.p.c", logging.INFO)
        logging.disable(logging.CRITICAL)
        try:
            assert not logs.enabled("cache.p.c", logging.ERROR)
        finally:
            logging.disable(logging.NOTSET)
        assert logs.enabled("cache.p.c", logging.ERROR)
        child.disabled = True
        assert not logs.enabled("cache.p.c", logging.CRITICAL)
        child.disabled = False
        assert logs.enabled("cache.p.c", logging.INFO)
        assert logs.enabled("cache.p.c", logging.INFO)
        logging.config.dictConfig({"version": 1, "incremental": True,
                                   "loggers": {"cache.p": {"level": "ERROR"}}})
        assert not logs.enabled("cache.p.c", logging.WARNING)
        logs.set(LoggerUpdate(items=[LoggerConfig(name="cache.p.c", level=LoggerLevel.LVL_DEBUG,
                                                  enabled=True)]))
        assert logs.enabled("cache.p.c", logging.DEBUG)
        assert child.level == logging.DEBUG
