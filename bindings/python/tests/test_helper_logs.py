"""RpcLogs: Python loggers writing to the library's rolling logs: files and line format,
Python's `logging` as the one source of levels (loggers.json layers applied to Python
loggers, LoggerService get/set/reset reading and setting them, persistence), rollover and
backup pruning, errors, exceptions, and closing (also while other threads log)."""

import json
import logging
import os
import re
import threading
import time

import pytest

from grpchelper import ConfigSet, Folders, RpcException, RpcLogs
from grpchelper.api import Filter, LoggerConfig, LoggerLevel, LoggerStatus, LoggerUpdate, ResultCode
from grpchelper.config import static_config_items

STAMP = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}"
SOURCE = r" - test_helper_logs\.py:%s:\d+"


@pytest.fixture
def dirs(tmp_path):
    """(system, user, workspace, Folders) under tmp_path."""
    system, user, workspace = tmp_path / "sys", tmp_path / "usr", tmp_path / "wks"
    return system, user, workspace, Folders(system, user, workspace)


@pytest.fixture
def make_logs(dirs):
    """make_logs(**RpcLogs kwargs): RpcLogs in the fixture's folders (folder "logs" in the
    workspace unless given); every one closed at teardown."""
    made = []

    def make(**kwargs):
        kwargs.setdefault("folders", dirs[3])
        logs = RpcLogs(**kwargs)
        made.append(logs)
        return logs

    yield make
    for logs in made:
        logs.close()


def lines(path):
    return path.read_text().splitlines()


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))


def update(*configs):
    return LoggerUpdate(items=[LoggerConfig(name=n, enabled=e, level=l) for n, e, l in configs])


# --- files and lines ---------------------------------------------------------------------

def test_write_line_format(dirs, make_logs):
    _, _, workspace, _ = dirs
    logging.getLogger().setLevel(logging.INFO)      # before the files are opened: headers
    logs = make_logs()
    assert logs.folder == workspace / "logs"
    lg = logs.logger("gh-w")
    assert lg is logging.getLogger("gh-w")
    assert lg.level == logging.NOTSET and lg.propagate is True     # Python's, untouched
    assert logging.getLogger().handlers[-1] is not lg.handlers[0]  # root.log's own handler
    lg.info("hello %s", "world")
    logs.close()

    own = lines(workspace / "logs" / "gh-w" / "gh-w.log")
    root = lines(workspace / "logs" / "root" / "root.log")
    header = r"^%s \[[^/\]]+/%s\] INFO -+ New %s logger instance for process %d -+$"
    assert re.match(header % (STAMP, "gh-w", "gh-w", os.getpid()), own[0]), own[0]
    assert re.match(header % (STAMP, "root", "root", os.getpid()), root[0]), root[0]
    line = r"^%s \[MainThread/gh-w\] INFO hello world%s$" % (
        STAMP, SOURCE % "test_write_line_format")
    assert len(own) == 2 and re.match(line, own[1]), own
    # root.log: its own header, gh-w's header, the record (by propagation, once; the root's
    # handler writes it, at its own time)
    assert len(root) == 3 and [l[24:] for l in root[1:]] == [l[24:] for l in own], root


def test_header_lines_only_when_info_is_enabled(dirs, make_logs):
    """As grpc-helper's (a logger.info call): at the root's default WARNING, files are made
    empty."""
    workspace = dirs[2]
    assert logging.getLogger().level == logging.WARNING
    logs = make_logs()
    lg = logs.logger("gh-quiet")
    lg.info("dropped")
    lg.warning("kept")
    logs.close()
    own = lines(workspace / "logs" / "gh-quiet" / "gh-quiet.log")
    root = lines(workspace / "logs" / "root" / "root.log")
    assert len(own) == 1 and " WARNING kept - " in own[0], own
    assert [l[24:] for l in root] == [l[24:] for l in own]


def test_thread_name_and_levels_in_lines(dirs, make_logs):
    _, _, workspace, _ = dirs
    logs = make_logs()
    lg = logs.logger("gh-t")
    lg.setLevel(logging.INFO)
    t = threading.Thread(target=lambda: lg.warning("from a thread"), name="worker-7")
    t.start()
    t.join()
    lg.error("e")
    lg.critical("c")
    lg.log(25, "notice")
    logs.close()
    text = (workspace / "logs" / "gh-t" / "gh-t.log").read_text()
    assert re.search(r"\[worker-7/gh-t\] WARNING from a thread - ", text)
    assert " ERROR e - " in text and " CRITICAL c - " in text and " NOTICE notice - " in text


def test_logger_twice_has_one_handler_and_root(dirs, make_logs):
    _, _, workspace, _ = dirs
    logs = make_logs()
    lg = logs.logger("gh-twice")
    handlers = list(lg.handlers)
    assert logs.logger("gh-twice") is lg and lg.handlers == handlers and len(handlers) == 1
    root = logs.logger("")
    assert root is logging.getLogger() and logs.logger("root") is root
    assert len([h for h in root.handlers if type(h).__name__ == "_NativeHandler"]) == 1
    logging.getLogger("gh-child-of-root").warning("propagated to root")
    lg.warning("once")
    logs.close()
    root_lines = lines(workspace / "logs" / "root" / "root.log")
    assert sum(" WARNING once - " in line for line in root_lines) == 1  # not twice
    assert any(re.match(r"^%s \[MainThread/gh-child-of-root\] WARNING propagated to root - "
                        % STAMP, line) for line in root_lines)


def test_exception_traceback(dirs, make_logs):
    _, _, workspace, _ = dirs
    logs = make_logs()
    lg = logs.logger("gh-exc")
    try:
        raise ValueError("kaboom")
    except ValueError:
        lg.exception("it failed")
    logs.close()
    text = (workspace / "logs" / "gh-exc" / "gh-exc.log").read_text()
    assert " ERROR it failed\nTraceback (most recent call last):\n" in text
    assert 'raise ValueError("kaboom")' in text and "ValueError: kaboom" in text


def test_relative_and_absolute_folders(tmp_path, dirs, make_logs, monkeypatch):
    _, _, workspace, _ = dirs
    assert make_logs(folder="sub/dir").folder == workspace / "sub" / "dir"
    assert make_logs(folder=tmp_path / "abs").folder == tmp_path / "abs"
    monkeypatch.chdir(tmp_path)
    assert make_logs(folder="here", folders=None).folder == tmp_path / "here"


def test_from_config(dirs):
    _, _, workspace, folders = dirs
    statics = list(static_config_items().values())
    with ConfigSet(static_items=statics, folders=folders,
                   cli_config={"rpc-logs-folder": "my-logs",
                               "rpc-logs-interval-unit": "midnight"}) as s:
        with RpcLogs.from_config(s) as logs:
            assert logs.folder == workspace / "my-logs"
            logs.logger("gh-cfg").warning("configured")
        with RpcLogs(s) as logs:
            assert logs.folder == workspace / "my-logs"
    assert "configured" in (workspace / "my-logs" / "gh-cfg" / "gh-cfg.log").read_text()
    with pytest.raises(TypeError):
        RpcLogs.from_config(folders)


@pytest.mark.parametrize("kwargs", [{"unit": "X"}, {"unit": "W7"}, {"interval": 0}])
def test_bad_rollover(make_logs, kwargs):
    with pytest.raises(RpcException) as e:
        make_logs(**kwargs)
    assert e.value.rc == ResultCode.ERROR_PARAM_INVALID


# --- levels --------------------------------------------------------------------------------

def test_levels_from_layers_are_applied_to_python_loggers(dirs, make_logs, caplog):
    """As grpc-helper's logs manager: the layers make one map (a later layer's value for a
    name replaces an earlier one's), applied with setLevel / `disabled`."""
    system, user, workspace, _ = dirs
    write_json(system / "loggers.json", {"gh-a": "DEBUG", "gh-b": "DEBUG", "gh-c": "ERROR",
                                         "gh-e": "INFO"})
    write_json(user / "loggers.json", {"gh-b": "ERROR", "gh-c": "DEBUG", "gh-e": True})
    write_json(workspace / "loggers.json", {"gh-c": False, "gh-f": "NOPE"})
    logging.getLogger("gh-e").setLevel(logging.CRITICAL)
    logs = make_logs()
    assert logging.getLogger("gh-a").level == logging.DEBUG
    assert logging.getLogger("gh-b").level == logging.ERROR
    assert logging.getLogger("gh-c").disabled and logging.getLogger("gh-c").level == logging.NOTSET
    assert logging.getLogger("gh-e").level == logging.CRITICAL     # True: enabled, level kept
    assert logging.getLogger("gh-f").level == logging.NOTSET       # unknown level: skipped
    assert logs.enabled("gh-a", logging.DEBUG)
    assert logs.enabled("gh-a.child", logging.DEBUG)               # Python's inheritance
    assert not logs.enabled("gh-b", logging.WARNING) and logs.enabled("gh-b", logging.ERROR)
    assert not logs.enabled("gh-c", logging.CRITICAL)              # disabled (workspace)
    assert logs.enabled("gh-d", logging.WARNING) and not logs.enabled("gh-d", logging.INFO)
    status = logs.get(Filter(names=["gh-a", "gh-b", "gh-c", "gh-d"]))
    assert [(i.name, i.enabled, i.level) for i in status.items] == [
        ("gh-a", True, LoggerLevel.LVL_DEBUG), ("gh-b", True, LoggerLevel.LVL_ERROR),
        ("gh-c", False, LoggerLevel.LVL_UNKNOWN), ("gh-d", True, LoggerLevel.LVL_UNKNOWN)]

    for name in ("gh-a", "gh-b", "gh-c"):
        lg = logs.logger(name)
        lg.debug("debug from %s", name)
        lg.error("error from %s", name)
    logs.close()
    folder = workspace / "logs"
    assert "debug from gh-a" in (folder / "gh-a" / "gh-a.log").read_text()
    b = (folder / "gh-b" / "gh-b.log").read_text()
    assert "debug from gh-b" not in b and "error from gh-b" in b
    assert not (folder / "gh-c").exists()                          # disabled: nothing
    # The library's warning is a record of Python's root logger (before this RpcLogs had a
    # handler on it: the records of a managed server's logs reach its root.log).
    assert [(r.name, r.levelno) for r in caplog.records
            if "Ignoring unknown level NOPE for logger gh-f" in r.getMessage()] == [
        ("root", logging.WARNING)]


def test_get_reads_python_loggers(make_logs):
    """get is logging.getLogger(name)'s level (LVL_UNKNOWN for NOTSET or a level the API has
    no name for) and `not disabled`, whoever set them."""
    logs = make_logs()
    root = logs.get(Filter(names=[""]))
    assert [(i.name, i.enabled, i.level) for i in root.items] == [
        ("root", True, LoggerLevel.LVL_WARNING)]                    # Python's default
    assert logs.get(Filter(names=["root"])) == root
    logging.getLogger("gh-g1").setLevel(logging.ERROR)
    logging.getLogger("gh-g2").setLevel(15)
    logging.getLogger("gh-g3").disabled = True
    status = logs.get(Filter(names=["gh-g1", "gh-g2", "gh-g3", "gh-g4"]))
    assert [(i.name, i.enabled, i.level) for i in status.items] == [
        ("gh-g1", True, LoggerLevel.LVL_ERROR), ("gh-g2", True, LoggerLevel.LVL_UNKNOWN),
        ("gh-g3", False, LoggerLevel.LVL_UNKNOWN), ("gh-g4", True, LoggerLevel.LVL_UNKNOWN)]
    logging.getLogger().setLevel(logging.DEBUG)
    assert logs.get(Filter(names=[""])).items[0].level == LoggerLevel.LVL_DEBUG
    logging.disable(logging.CRITICAL)
    try:
        assert not logs.enabled("gh-g1", logging.CRITICAL)          # logging.disable() too
    finally:
        logging.disable(logging.NOTSET)
    assert logs.enabled("gh-g1", logging.CRITICAL)


def test_set_drives_python_loggers(dirs, make_logs):
    workspace = dirs[2]
    logs = make_logs()
    lg = logs.logger("gh-dbg")
    lg.debug("first debug")                                         # the root's WARNING
    status = logs.set(update(("gh-dbg", True, LoggerLevel.LVL_DEBUG),
                             ("gh-mute", False, LoggerLevel.LVL_ERROR)))
    assert isinstance(status, LoggerStatus)
    assert [(i.name, i.enabled, i.level) for i in status.items] == [
        ("gh-dbg", True, LoggerLevel.LVL_DEBUG), ("gh-mute", False, LoggerLevel.LVL_ERROR)]
    assert lg.level == logging.DEBUG and lg.isEnabledFor(logging.DEBUG)
    assert logging.getLogger("gh-mute").disabled and logging.getLogger("gh-mute").level == logging.ERROR
    lg.debug("second debug")
    logs.set(update(("", True, LoggerLevel.LVL_ERROR)))
    assert logging.getLogger().level == logging.ERROR
    logs.close()
    text = (workspace / "logs" / "gh-dbg" / "gh-dbg.log").read_text()
    assert "first debug" not in text and "second debug" in text


def test_set_persists_and_reset_forgets(dirs, make_logs):
    _, user, workspace, folders = dirs
    write_json(user / "loggers.json", {"gh-u": "WARNING", "root": "INFO"})
    logs = make_logs()
    assert logging.getLogger().level == logging.INFO                # the user layer's
    logs.set(update(("gh-s", True, LoggerLevel.LVL_DEBUG), ("gh-off", False, LoggerLevel.LVL_INFO)))
    persisted = workspace / "loggers.json"
    assert json.loads(persisted.read_text()) == {"gh-s": "DEBUG", "gh-off": False}
    assert not logs.enabled("gh-off", logging.CRITICAL)

    logging.getLogger("gh-s").setLevel(logging.NOTSET)
    logging.getLogger("gh-off").disabled = False
    again = make_logs()                                            # applied again from loggers.json
    assert logging.getLogger("gh-s").level == logging.DEBUG and logging.getLogger("gh-off").disabled
    again.close()

    status = logs.reset(Filter(names=["gh-s", "gh-off"]))
    assert [(i.name, i.enabled, i.level) for i in status.items] == [
        ("gh-s", True, LoggerLevel.LVL_UNKNOWN), ("gh-off", True, LoggerLevel.LVL_UNKNOWN)]
    assert json.loads(persisted.read_text()) == {}
    assert logging.getLogger("gh-s").level == logging.NOTSET and not logging.getLogger("gh-off").disabled

    # As grpc-helper: reset is "no level of its own", not the system / user layers' level;
    # the root goes back to its level from before the layers (WARNING here).
    status = logs.reset(Filter(names=["gh-u", ""]))
    assert [(i.name, i.level) for i in status.items] == [
        ("gh-u", LoggerLevel.LVL_UNKNOWN), ("root", LoggerLevel.LVL_WARNING)]
    assert logging.getLogger().level == logging.WARNING


@pytest.mark.parametrize("op,request_", [("get", Filter()), ("reset", Filter()),
                                         ("set", LoggerUpdate())])
def test_empty_requests(make_logs, op, request_):
    logs = make_logs()
    with pytest.raises(RpcException) as e:
        getattr(logs, op)(request_)
    assert e.value.rc == ResultCode.ERROR_PARAM_MISSING


@pytest.mark.parametrize("where", ["system", "user", "workspace"])
@pytest.mark.parametrize("content", ["{nope", "[\"DEBUG\"]", "{\"gh-a\": 3}"])
def test_malformed_loggers_json(dirs, make_logs, where, content):
    system, user, workspace, _ = dirs
    path = {"system": system, "user": user, "workspace": workspace}[where] / "loggers.json"
    write_json(path, content)
    with pytest.raises(RpcException) as e:
        make_logs()
    assert e.value.rc == ResultCode.ERROR_MODEL_INVALID
    assert str(path) in str(e.value)


# --- rollover --------------------------------------------------------------------------------

def test_rollover_and_backup_pruning(dirs, make_logs):
    _, _, workspace, _ = dirs
    logs = make_logs(unit="S", interval=1, backup=1)
    lg = logs.logger("gh-roll")
    lg.setLevel(logging.INFO)
    for i in range(3):
        if i:
            time.sleep(1.05)            # time passing: one rollover period (not a synchronisation)
        lg.info("record %d", i)
    logs.close()
    folder = workspace / "logs" / "gh-roll"
    rolled = sorted(p.name for p in folder.iterdir() if p.name != "gh-roll.log")
    assert len(rolled) == 1, rolled                                  # backup=1: older ones pruned
    assert re.fullmatch(r"gh-roll\.log\.\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}", rolled[0])
    assert "record 1" in (folder / rolled[0]).read_text()
    current = (folder / "gh-roll.log").read_text()
    assert "record 2" in current and "record 0" not in current
    root_rolled = [p for p in (workspace / "logs" / "root").iterdir() if p.name != "root.log"]
    assert len(root_rolled) == 1, root_rolled


# --- closing -----------------------------------------------------------------------------

def test_close_detaches_and_later_records_are_dropped(dirs, make_logs):
    _, _, workspace, _ = dirs
    lg = logging.getLogger("gh-closed")
    lg.setLevel(logging.WARNING)
    logs = make_logs()
    assert logs.logger("gh-closed") is lg
    lg.warning("before")
    logs.close()
    logs.close()
    assert lg.handlers == [] and lg.level == logging.WARNING and lg.propagate is True
    lg.error("after close")                                        # no crash, nowhere to go
    with pytest.raises(ValueError):
        logs.logger("gh-closed")
    with pytest.raises(ValueError):
        logs.get(Filter(names=["gh-closed"]))
    text = (workspace / "logs" / "gh-closed" / "gh-closed.log").read_text()
    assert "before" in text and "after close" not in text


def test_handler_kept_by_a_logger_is_a_no_op_after_close(make_logs, capsys):
    logs = make_logs()
    lg = logs.logger("gh-kept")
    handler = lg.handlers[0]
    logs.close()
    record = lg.makeRecord("gh-kept", logging.ERROR, __file__, 1, "late", (), None)
    handler.handle(record)                                         # e.g. a copy held elsewhere
    assert "Logging error" not in capsys.readouterr().err


def test_close_while_threads_log(make_logs, capsys):
    logs = make_logs()
    lg = logs.logger("gh-race")
    stop = threading.Event()
    started = [threading.Event() for _ in range(8)]

    def spam(ready):
        n = 0
        while not stop.is_set():
            lg.info("record %d", n)
            n += 1
            ready.set()

    threads = [threading.Thread(target=spam, args=(ev,)) for ev in started]
    for t in threads:
        t.start()
    for ev in started:
        assert ev.wait(10)
    logs.close()                       # while the threads are writing
    stop.set()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert "Logging error" not in capsys.readouterr().err


# --- one log system for every language ----------------------------------------------------

def test_python_and_c_records_share_files_and_levels(dirs, make_logs):
    """A Python logger and a C host's gh_logs_write on the same logs: the same files, the
    same line format, the same levels (Python's, set through the LoggerService operation);
    the C records pass through the Python logger (its handlers write them)."""
    from grpchelper import _ffi
    workspace = dirs[2]
    logs = make_logs()
    py = logs.logger("shared")
    py.setLevel(logging.INFO)
    with logs._handle.use() as ptr:
        def c_write(level, message):
            _ffi.gh_logs_write(ptr, b"shared", level, message.encode())

        py.info("from python")
        c_write(20, "from c")
        py.debug("python debug hidden")
        c_write(10, "c debug hidden")
        logs.set(update(("shared", True, LoggerLevel.LVL_DEBUG)))
        py.debug("python debug shown")
        c_write(10, "c debug shown")
        logs.set(update(("shared", False, LoggerLevel.LVL_DEBUG)))
        py.critical("python dropped")
        c_write(50, "c dropped")
    got = lines(workspace / "logs" / "shared" / "shared.log")
    bodies = [l.split("] ", 1)[1] for l in got[1:]]      # after the header
    assert bodies == ["INFO from python - test_helper_logs.py:test_python_and_c_records_share_files_and_levels:%d"
                      % int(re.search(r":(\d+)$", got[1]).group(1)),
                      "INFO from c",
                      bodies[2], "DEBUG c debug shown"], got
    assert bodies[2].startswith("DEBUG python debug shown - test_helper_logs.py:")
    line = re.compile(r"^%s \[[^/\]]+/shared\] " % STAMP)
    assert all(line.match(l) for l in got), got
    root = (workspace / "logs" / "root" / "root.log").read_text()
    assert "from python" in root and "from c" in root and "dropped" not in root


def test_propagated_records_go_to_the_handlers_file(dirs, make_logs):
    """As grpc-helper's file handlers: a child logger's records land in its configured
    parent's file, another library's records (through the root) in the root file only;
    the record's own logger is named on the line and its level decides."""
    workspace = dirs[2]
    logging.getLogger().setLevel(logging.INFO)
    logs = make_logs()
    logs.logger("")
    logs.logger("gh-mgr")
    logging.getLogger("gh-mgr.sub").warning("child record")
    logging.getLogger("gh-thirdparty.pool").warning("library record")
    logging.getLogger("gh-thirdparty.pool").info("library info")      # root at INFO: written
    logging.getLogger("gh-thirdparty.pool").debug("library debug")    # dropped before formatting
    logs.set(update(("gh-mgr.sub", True, LoggerLevel.LVL_ERROR)))
    logging.getLogger("gh-mgr.sub").warning("child warning now hidden")
    folder = workspace / "logs"
    assert sorted(p.name for p in folder.iterdir()) == ["gh-mgr", "root"]
    mgr = lines(folder / "gh-mgr" / "gh-mgr.log")
    assert len(mgr) == 2 and re.search(r"\[MainThread/gh-mgr\.sub\] WARNING child record - ", mgr[1]), mgr
    root = (folder / "root" / "root.log").read_text()
    assert "/gh-thirdparty.pool] WARNING library record" in root
    assert "/gh-thirdparty.pool] INFO library info" in root
    assert "library debug" not in root and "now hidden" not in root
