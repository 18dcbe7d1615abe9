"""Rolling logs (grpc-helper's logs manager) over gh_logs.

The library owns the files, the line format, the rollover and the levels (layered from
loggers.json in the system, user and workspace folders; LoggerService operations). Python
loggers configured by `RpcLogs.logger(name)` forward every record to it through a
handler: the Python logger lets everything through, the library decides what is written.
"""

import logging
import os
import threading
import weakref
from ctypes import byref, c_void_p
from pathlib import Path

from .._native import ffi
from .._native.convert import message_call, path, text
from .._native.handle import NativeHandle
from ..api import Filter, LoggerStatus, LoggerUpdate
from .config_set import ConfigSet
from .folders import Folders

# The Python level of a configured logger: every record reaches the library's handler.
_ALL = 1


def _encode(value):
    return None if value is None else str(value).encode("utf-8", "replace")


class _NativeHandler(logging.Handler):
    """Forwards records to gh_logs_write_record; does nothing once the logs are closed.

    Records go to the file of the logger the handler is attached to (`target`), also
    those that reach it by propagation from a child or another library's logger; the
    record's own logger decides the level and is named on the line (as grpc-helper's
    file handlers: a child's records in its parent's file, others in the root file)."""

    def __init__(self, owner, handle, target):
        super().__init__(logging.NOTSET)
        self._owner = owner      # the RpcLogs stays alive while a logger holds this handler
        self._handle = handle
        self._target = _encode(target)

    def filter(self, record):
        # Asked before formatting: a record the library would drop costs one C call.
        ptr = self._handle.acquire()
        if ptr is None:
            return False
        try:
            return bool(ffi.gh_logs_enabled(ptr, _encode(record.name), max(1, min(50, int(record.levelno)))))
        finally:
            self._handle.release()

    def emit(self, record):
        try:
            message = self.format(record)   # the message, then the exception / stack text
            ptr = self._handle.acquire()
            if ptr is None:                 # closed: drop the record
                return
            try:
                ffi.gh_logs_write_record(ptr, self._target, _encode(record.name),
                                          max(1, min(50, int(record.levelno))),
                                          _encode(record.threadName), _encode(record.filename),
                                          _encode(record.funcName), int(record.lineno or 0),
                                          message.replace("\0", "\\0").encode("utf-8", "replace"))
            finally:
                self._handle.release()
        except Exception:  # noqa: BLE001 - logging's own error path (prints to stderr)
            self.handleError(record)


def _shutdown(handle, loggers, lock, wait=None):
    """close() and the finalizer: detach the handlers, restore the loggers, free (after
    the writes in progress; wait=False: the last of them frees)."""
    with lock:
        entries = list(loggers.items())
        loggers.clear()
    for logger, (handler, level, propagate) in entries:
        logger.removeHandler(handler)
        if logger.level == _ALL:
            logger.setLevel(level)
        if logger.propagate is False:
            logger.propagate = propagate
    handle.close(wait)


class RpcLogs:
    """The rolling logs of a program.

    `RpcLogs(folder="logs", unit="H", interval=1, backup=10, folders=None)`: logs in
    `folder` (a relative one is in the workspace of `folders`, else in the current
    directory), rolled over every `interval` `unit` (S, M, H, D, MIDNIGHT, W0..W6:
    TimedRotatingFileHandler's units), keeping `backup` old files (0: all). Levels come from
    loggers.json in the folders' system, user and workspace folders.
    `RpcLogs.from_config(config_set)` (or `RpcLogs(config_set)`) takes all that from the
    set's rpc-logs-* items and folders.

    Errors (RpcException): a bad unit or interval → ERROR_PARAM_INVALID; a malformed
    loggers.json → ERROR_MODEL_INVALID naming it; a folder that cannot be created → ERROR.
    """

    def __init__(self, folder="logs", unit="H", interval=1, backup=10, folders=None):
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
        self._lock = threading.Lock()
        self._loggers = {}   # logging.Logger → (handler, its level before, propagate before)
        self._free = weakref.finalize(self, _shutdown, self._handle, self._loggers, self._lock)

    @classmethod
    def _view(cls, handle):
        """RpcLogs over logs the library owns elsewhere (a managed server's,
        gh_rpc_server_logs): `handle` is a borrowed NativeHandle, a child of the server's.
        close() detaches the handlers; the logs themselves stay the owner's."""
        self = cls.__new__(cls)
        self._handle = handle
        # Reentrant: the server's finaliser closes the view on the thread that collected
        # the server, which may be inside logger().
        self._lock = threading.RLock()
        self._loggers = {}
        self._free = weakref.finalize(self, _shutdown, self._handle, self._loggers, self._lock)
        return self

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
        """Detaches the handlers from the loggers configured here (their level and
        propagation restored), then closes the files. Records logged afterwards (or while
        it closes) are dropped. Idempotent."""
        self._free()

    @property
    def folder(self) -> Path:
        """The logs folder (absolute)."""
        with self._handle.use() as ptr:
            return Path(os.fsdecode(ffi.gh_logs_folder(ptr)))

    def logger(self, name: str = "") -> logging.Logger:
        """logging.getLogger(name) (the root logger for ""), forwarding its records to these
        logs: <folder>/<name>/<name>.log, and <folder>/root/root.log for every record. Its
        Python level is set to let every record through (the library decides by its own
        levels) and it no longer propagates to Python's parent handlers. Calling it again
        returns the same logger without a second handler."""
        logger = logging.getLogger(name) if name else logging.getLogger()
        with self._lock:
            if self._handle.closed:
                raise ValueError("RpcLogs is closed")
            if logger not in self._loggers:
                handler = _NativeHandler(self, self._handle, logger.name)
                self._loggers[logger] = (handler, logger.level, logger.propagate)
                logger.addHandler(handler)
                logger.setLevel(_ALL)
                logger.propagate = False
        return logger

    def enabled(self, name: str, level: int) -> bool:
        """Whether a record of level from logger name would be written."""
        with self._handle.use() as ptr:
            return bool(ffi.gh_logs_enabled(ptr, text(name, "name"), int(level)))

    def _message(self, fn, request, request_type):
        with self._handle.use() as ptr:
            return message_call(fn, ptr, request, request_type, LoggerStatus)

    def get(self, request: Filter) -> LoggerStatus:
        """The named loggers' configuration ("" is the root, reported as "root"; a logger
        without a level reports LVL_UNKNOWN). An empty Filter → ERROR_PARAM_MISSING."""
        return self._message(ffi.gh_logs_get, request, Filter)

    def set(self, request: LoggerUpdate) -> LoggerStatus:  # noqa: A003 - grpc-helper's name
        """Sets level and enablement, persisted in the workspace's loggers.json."""
        return self._message(ffi.gh_logs_set, request, LoggerUpdate)

    def reset(self, request: Filter) -> LoggerStatus:
        """Forgets the workspace setting of the named loggers: back to what the system and
        user loggers.json give (else no level of its own, enabled; the root at INFO),
        removed from the workspace's loggers.json."""
        return self._message(ffi.gh_logs_reset, request, Filter)


__all__ = ["RpcLogs"]
