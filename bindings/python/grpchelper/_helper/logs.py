"""Rolling logs (grpc-helper's logs manager) over gh_logs.

The library owns the files, the line format and the rollover; Python's `logging` owns the
levels. At the first logs or managed server of the process the package gives the library
its level source (gh_logs_use_level_source): every level the library needs is read from
`logging` (a logger's own level, `disabled`, the effective level), the LoggerService's
get / set / reset and the loggers.json layers read and set Python loggers, and the
library's own records (the server's, the per-call lines of a manager's logger) are handed
to `logging` as records of the named logger. Python loggers configured by
`RpcLogs.logger(name)` get a handler writing what reaches them to their file
(gh_logs_write_handled): a Python program has one source of truth for its loggers.
"""

import logging
import os
import threading
import weakref
from ctypes import byref, c_void_p
from pathlib import Path

from .._native import ffi
from .._native.callbacks import registry
from .._native.convert import message_call, path, text
from .._native.handle import NativeHandle
from ..api import Filter, LoggerStatus, LoggerUpdate
from .config_set import ConfigSet
from .folders import Folders

# The threshold of a disabled logger: above every level.
_NONE = 0x7FFFFFFF


def _encode(value):
    return None if value is None else str(value).encode("utf-8", "replace")


def _decode(value):
    return "" if value is None else value.decode("utf-8", "replace")


def _logger(name):
    """The Python logger of a library name ("" is the root)."""
    n = _decode(name)
    return logging.getLogger() if n in ("", "root") else logging.getLogger(n)


# --- the level source: the library asks `logging` -------------------------------------

@registry.entry_point(ffi.GH_LOG_LEVEL_GET_FN)
def _source_get(_user_data, name, level, enabled):
    logger = _logger(name)
    level[0] = int(logger.level)
    enabled[0] = 0 if logger.disabled else 1


@registry.entry_point(ffi.GH_LOG_THRESHOLD_FN, on_error=lambda e: _NONE)
def _source_threshold(_user_data, name):
    # Logger.isEnabledFor's rule: disabled, logging.disable(), the effective level.
    logger = _logger(name)
    if logger.disabled:
        return _NONE
    return min(_NONE, max(logger.getEffectiveLevel(), logger.manager.disable + 1))


@registry.entry_point(ffi.GH_LOG_LEVEL_SET_FN)
def _source_set(_user_data, name, level, enabled):
    logger = _logger(name)
    if level >= 0:
        logger.setLevel(level)
    if enabled >= 0:
        logger.disabled = not enabled


@registry.entry_point(ffi.GH_LOG_EMIT_FN, on_error=lambda e: 1)
def _source_emit(_user_data, name, level, thread, file, function, line, message):
    # A record of the library's (the server's lines, a manager's per-call lines) as one
    # of the named Python logger: its handlers and its parents' see it.
    logger = _logger(name)
    if logger.isEnabledFor(level):
        # No source: filename "" (the line then has no " - file:function:line").
        record = logger.makeRecord(logger.name, level, _decode(file), line, _decode(message),
                                   None, None, _decode(function) or None)
        if thread:
            record.threadName = _decode(thread)
        logger.handle(record)
    return 1


_source_lock = threading.Lock()
_source_installed = False


def _uninstall_level_source():
    # At exit, once the released servers are gone: no callback into Python after this
    # (the library waits for the running ones); the logs left drop their own records.
    global _source_installed
    with _source_lock:
        if _source_installed:
            _source_installed = False
            ffi.gh_logs_use_level_source(ffi.GH_LOG_LEVEL_GET_FN(), ffi.GH_LOG_THRESHOLD_FN(),
                                         ffi.GH_LOG_LEVEL_SET_FN(), ffi.GH_LOG_EMIT_FN(), None,
                                         ffi.GH_FREE_FN())     # NULL: uninstall
            ffi.gh_logs_cache_thresholds(0)
            _remove_change_hooks()


# --- telling the library when levels change (its cache of _source_threshold answers) ----
#
# Asking Python at every level decision costs a callback (a thread state and the GIL) per
# record and per managed call: a third of a busy server's CPU. The library keeps the answers
# (gh_logs_cache_thresholds) and drops them when `logging` changes what _source_threshold
# reads: a level (Logger.setLevel, and logging.disable, both go through the manager's
# _clear_cache, where Python drops its own isEnabledFor cache) or a logger's `disabled`
# flag (which Python reads live: a property on Logger announces each assignment).

_saved_hooks = None


def _announce_levels_changed():
    ffi.gh_logs_levels_changed()


def _install_change_hooks():
    global _saved_hooks
    manager = logging.Logger.manager
    own_clear = manager.__dict__.get("_clear_cache")
    clear = manager._clear_cache

    def _clear_cache():
        clear()
        _announce_levels_changed()

    previous_disabled = logging.Logger.__dict__.get("disabled")

    def _get_disabled(logger):
        return logger.__dict__.get("disabled", False)

    def _set_disabled(logger, value):
        logger.__dict__["disabled"] = value
        _announce_levels_changed()

    manager._clear_cache = _clear_cache
    logging.Logger.disabled = property(_get_disabled, _set_disabled)
    _saved_hooks = (manager, own_clear, previous_disabled)


def _remove_change_hooks():
    global _saved_hooks
    if _saved_hooks is None:
        return
    manager, own_clear, previous_disabled = _saved_hooks
    if own_clear is None:
        manager.__dict__.pop("_clear_cache", None)
    else:
        manager._clear_cache = own_clear
    if previous_disabled is None:
        del logging.Logger.disabled
    else:
        logging.Logger.disabled = previous_disabled
    _saved_hooks = None


def use_python_levels():
    """Makes Python's `logging` the library's level source (once per process; before the
    first logs or managed server), with the library caching its answers until `logging`
    announces a change."""
    global _source_installed
    if _source_installed:
        return
    with _source_lock:
        if not _source_installed:
            _install_change_hooks()
            ffi.gh_logs_use_level_source(_source_get, _source_threshold, _source_set,
                                         _source_emit, None, ffi.GH_FREE_FN())
            ffi.gh_logs_cache_thresholds(1)
            _source_installed = True
            registry.after_awaited_at_exit(_uninstall_level_source)


# Records kept by the handlers of a managed server's logs before the library made them.
_PENDING_MAX = 1000


class _Sink:
    """Where the handlers of one RpcLogs write: the logs' handle — or, for a managed server
    whose logs the library is still making (gh_rpc_server_new has not returned), the
    records that arrive meanwhile (up to _PENDING_MAX), written once `bind` gives the
    handle. Closed: records are dropped."""

    def __init__(self, handle=None):
        self.handle = handle
        self.pending = [] if handle is None else None
        self.lock = threading.Lock()

    def write(self, fields):
        handle = self.handle
        if handle is None:
            with self.lock:
                handle = self.handle
                if handle is None:
                    if self.pending is not None and len(self.pending) < _PENDING_MAX:
                        self.pending.append(fields)
                    return
        ptr = handle.acquire()
        if ptr is None:                 # closed: drop the record
            return
        try:
            ffi.gh_logs_write_handled(ptr, *fields)
        finally:
            handle.release()

    def bind(self, handle):
        """The logs are made: the kept records are written (before any later one)."""
        with self.lock:
            pending, self.pending = self.pending or [], None
            with handle.use() as ptr:
                for fields in pending:
                    ffi.gh_logs_write_handled(ptr, *fields)
            self.handle = handle

    def close(self, wait=None):
        with self.lock:
            self.pending = None
            handle = self.handle
        if handle is not None:
            handle.close(wait)


class _NativeHandler(logging.Handler):
    """Writes the records that reach the logger it is attached to (`target`) — its own and
    those propagated from its children or, for the root, from any logger — to the
    target's file (gh_logs_write_handled), naming the record's logger on the line; Python
    decided the level. Does nothing once the logs are closed."""

    def __init__(self, owner, sink, target):
        super().__init__(logging.NOTSET)
        self._owner = owner      # the RpcLogs stays alive while a logger holds this handler
        self._sink = sink
        self._target = _encode(target)

    def emit(self, record):
        try:
            message = self.format(record)   # the message, then the exception / stack text
            self._sink.write((self._target, _encode(record.name),
                              max(1, min(50, int(record.levelno))),
                              _encode(record.threadName), _encode(record.filename),
                              _encode(record.funcName), int(record.lineno or 0),
                              message.replace("\0", "\\0").encode("utf-8", "replace")))
        except Exception:  # noqa: BLE001 - logging's own error path (prints to stderr)
            self.handleError(record)


def _shutdown(sink, loggers, lock, wait=None):
    """close() and the finalizer: detach the handlers, free (after the writes in progress;
    wait=False: the last of them frees)."""
    with lock:
        entries = list(loggers.items())
        loggers.clear()
    for logger, handler in entries:
        logger.removeHandler(handler)
    sink.close(wait)


class RpcLogs:
    """The rolling logs of a program.

    `RpcLogs(folder="logs", unit="H", interval=1, backup=10, folders=None)`: logs in
    `folder` (a relative one is in the workspace of `folders`, else in the current
    directory), rolled over every `interval` `unit` (S, M, H, D, MIDNIGHT, W0..W6:
    TimedRotatingFileHandler's units), keeping `backup` old files (0: all). Levels are
    Python's (`logging`): the loggers.json layers of the folders' system, user and workspace
    folders are applied to the Python loggers when the logs are made (as grpc-helper's
    logs manager), and get / set / reset read and set them.
    `RpcLogs.from_config(config_set)` (or `RpcLogs(config_set)`) takes all that from the
    set's rpc-logs-* items and folders.

    Errors (RpcException): a bad unit or interval → ERROR_PARAM_INVALID; a malformed
    loggers.json → ERROR_MODEL_INVALID naming it; a folder that cannot be created → ERROR.
    """

    def __init__(self, folder="logs", unit="H", interval=1, backup=10, folders=None):
        use_python_levels()
        ptr = c_void_p()
        if isinstance(folder, ConfigSet):
            if (unit, interval, backup, folders) != ("H", 1, 10, None):
                raise TypeError("RpcLogs(config_set) takes everything from the set")
            with folder._handle.use() as set_ptr:
                ffi.gh_logs_new_from_config(set_ptr, byref(ptr))
        else:
            if folders is not None and not isinstance(folders, Folders):
                raise TypeError("folders must be a grpchelper.Folders, not %r" % (folders,))
            if folders is None:
                ffi.gh_logs_new(path(folder), text(unit, "unit"), int(interval), int(backup),
                                 None, byref(ptr))
            else:
                with folders._handle.use() as folders_ptr:
                    ffi.gh_logs_new(path(folder), text(unit, "unit"), int(interval),
                                     int(backup), folders_ptr, byref(ptr))
        self._handle = NativeHandle("logs", ptr, ffi.gh_logs_free, what="RpcLogs")
        self._sink = _Sink(self._handle)
        self._lock = threading.Lock()
        self._loggers = {}   # logging.Logger → its handler
        self._free = weakref.finalize(self, _shutdown, self._sink, self._loggers, self._lock)

    @classmethod
    def _pending_view(cls):
        """RpcLogs over logs the library owns elsewhere (a managed server's,
        gh_rpc_server_logs), made before the library has made them: loggers can be
        configured at once (what reaches them is kept), `_bind(handle)` gives the logs (a
        borrowed NativeHandle, a child of the server's). close() detaches the handlers; the
        logs themselves stay the owner's."""
        self = cls.__new__(cls)
        self._handle = None
        self._sink = _Sink()
        # Reentrant: the server's finaliser closes the view on the thread that collected
        # the server, which may be inside logger().
        self._lock = threading.RLock()
        self._loggers = {}
        self._free = weakref.finalize(self, _shutdown, self._sink, self._loggers, self._lock)
        return self

    def _bind(self, handle):
        self._handle = handle
        self._sink.bind(handle)

    def _close_nowait(self):
        """close() without waiting for the writes in progress (the last of them ends the
        view): a managed server's view, closed by one of its handlers or its finaliser."""
        detached = self._free.detach()
        if detached is not None:
            _shutdown(*detached[2], wait=False)

    @classmethod
    def from_config(cls, config_set):
        """Logs configured by the set's rpc-logs-folder, rpc-logs-interval-unit,
        rpc-logs-interval and rpc-logs-backup items and its folders."""
        if not isinstance(config_set, ConfigSet):
            raise TypeError("from_config takes a grpchelper.ConfigSet, not %r" % (config_set,))
        return cls(config_set)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Detaches the handlers from the loggers configured here, then closes the files. Records logged afterwards (or while
        it closes) are dropped. Idempotent."""
        self._free()

    @property
    def folder(self) -> Path:
        """The logs folder (absolute)."""
        with self._handle.use() as ptr:
            return Path(os.fsdecode(ffi.gh_logs_folder(ptr)))

    def logger(self, name: str = "") -> logging.Logger:
        """logging.getLogger(name) (the root logger for "" or "root") with a handler writing
        the records that reach it — its own and its children's — to <folder>/<name>/<name>.log;
        the root logger gets one too, writing every record that propagates to it to
        <folder>/root/root.log (as grpc-helper's server does for its managers). The loggers'
        levels, `disabled` and `propagate` stay as they are: Python decides what is written
        (a logger without a level takes its parents', the root's is WARNING unless
        configured). Calling it again returns the same logger without a second handler."""
        logger = logging.getLogger() if name in ("", "root") else logging.getLogger(name)
        with self._lock:
            if not self._free.alive:
                raise ValueError("RpcLogs is closed")
            for target in (logging.getLogger(), logger):
                if target not in self._loggers:
                    handler = _NativeHandler(self, self._sink, "" if target is logging.root else target.name)
                    self._loggers[target] = handler
                    target.addHandler(handler)
        return logger

    def enabled(self, name: str, level: int) -> bool:
        """Whether a record of level from logger name would be written (Python's
        logging.getLogger(name).isEnabledFor(level), as the library sees it)."""
        with self._handle.use() as ptr:
            return bool(ffi.gh_logs_enabled(ptr, text(name, "name"), int(level)))

    def _message(self, fn, request, request_type):
        with self._handle.use() as ptr:
            return message_call(fn, ptr, request, request_type, LoggerStatus)

    def get(self, request: Filter) -> LoggerStatus:
        """The named Python loggers' level and `not disabled` ("" is the root, reported as
        "root"; a logger without a level, or with one the API has no name for, reports
        LVL_UNKNOWN). An empty Filter → ERROR_PARAM_MISSING."""
        return self._message(ffi.gh_logs_get, request, Filter)

    def set(self, request: LoggerUpdate) -> LoggerStatus:  # noqa: A003 - grpc-helper's name
        """Sets the Python loggers' level (setLevel) and `disabled`, persisted first in the
        workspace's loggers.json (atomically)."""
        return self._message(ffi.gh_logs_set, request, LoggerUpdate)

    def reset(self, request: Filter) -> LoggerStatus:
        """Forgets the workspace setting of the named loggers (removed from the workspace's
        loggers.json), as grpc-helper: the Python loggers get no level of their own (NOTSET;
        the root: the level it had before the logs applied the loggers.json layers) and
        are enabled."""
        return self._message(ffi.gh_logs_reset, request, Filter)


__all__ = ["RpcLogs"]
