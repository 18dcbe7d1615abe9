"""Small pieces shared by the helper-layer wrappers (folders, config, logs): a native
handle that is freed once and never while a call is using it, string conversions, and
the calls that take and return encoded messages."""

import contextlib
import os
import threading
from ctypes import byref, c_size_t, c_void_p

from . import _ffi


class NativeHandle:
    """Owns one native handle: `use()` lends it to a call, `close()` frees it once, after
    the calls in progress have returned; a handle closed is never lent again.

    It holds no reference to its Python owner, so `weakref.finalize(owner, handle.close)`
    frees it when the owner is collected."""

    def __init__(self, kind, free_fn, ptr, what):
        self._kind = kind
        self._free_fn = free_fn
        self._ptr = ptr
        self._what = what
        self._cond = threading.Condition(threading.Lock())
        self._users = 0
        self._closed = False
        _ffi.handle_created(kind)

    @property
    def closed(self):
        return self._closed

    def acquire(self):
        """The pointer, counted as in use until release(); None once closed."""
        with self._cond:
            if self._closed:
                return None
            self._users += 1
            return self._ptr

    def release(self):
        with self._cond:
            self._users -= 1
            if self._closed and not self._users:
                self._cond.notify_all()

    @contextlib.contextmanager
    def use(self):
        """The pointer for the duration of a with block; ValueError once closed."""
        ptr = self.acquire()
        if ptr is None:
            raise ValueError("%s is closed" % self._what)
        try:
            yield ptr
        finally:
            self.release()

    def close(self):
        """Frees the handle once the calls using it have returned. True the first time."""
        with self._cond:
            if self._closed:
                return False
            self._closed = True
            while self._users:
                self._cond.wait()
        self._free_fn(self._ptr)
        _ffi.handle_freed(self._kind)
        return True


class BorrowedHandle:
    """A native handle borrowed from the object of another handle (`owner`, a
    NativeHandle): e.g. the config set of a managed server, valid until the server is
    freed. Lent (as NativeHandle.use) while the owner is open and this view is not closed;
    each use holds the owner, so the owner is never freed while a borrowed pointer is in
    use. Closing the view only stops lending: the owner frees everything."""

    def __init__(self, owner, ptr, what):
        self._owner = owner
        self._ptr = ptr
        self._what = what
        self._closed = False

    @property
    def closed(self):
        return self._closed or self._owner.closed

    def acquire(self):
        if self._closed or not self._ptr:
            return None
        if self._owner.acquire() is None:
            return None
        return self._ptr

    def release(self):
        self._owner.release()

    @contextlib.contextmanager
    def use(self):
        ptr = self.acquire()
        if ptr is None:
            raise ValueError("%s is closed" % self._what)
        try:
            yield ptr
        finally:
            self.release()

    def close(self):
        """Stops lending the pointer. True the first time."""
        first = not self._closed
        self._closed = True
        return first


def text(value, what):
    """A str argument as UTF-8 bytes (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("%s must be a str, not %s" % (what, type(value).__name__))
    return value.encode("utf-8")


def path(value):
    """A str or os.PathLike as file-system bytes (None stays None)."""
    if value is None:
        return None
    return os.fsencode(os.fspath(value))


def message_call(fn, ptr, request, request_type, response_type):
    """fn(ptr, request bytes, len, &response, &len) on an encoded message; the response
    (released with gh_free) decoded as response_type."""
    if not isinstance(request, request_type):
        raise TypeError("expected a %s message, not %s"
                        % (request_type.__name__, type(request).__name__))
    data = request.SerializeToString()
    out = c_void_p()
    size = c_size_t()
    fn(ptr, data, len(data), byref(out), byref(size))
    return response_type.FromString(_ffi.take_bytes(out.value, size.value))
