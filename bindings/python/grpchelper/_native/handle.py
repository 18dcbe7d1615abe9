"""Native handles: the Python side of a pointer the library handed over, freed once and
never while a call is using it; the count of live handles by kind."""

import contextlib
import threading



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
        handle_created(kind)

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
        handle_freed(self._kind)
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


# --- accounting ---------------------------------------------------------------------------
# Every native handle the package creates is counted here until freed, so tests can
# check that calls leave nothing behind.

_live_lock = threading.Lock()
_live = {}


def handle_created(kind):
    with _live_lock:
        _live[kind] = _live.get(kind, 0) + 1


def handle_freed(kind):
    with _live_lock:
        _live[kind] -= 1


def live_handles():
    """{kind: count} of native handles created by the package and not yet freed."""
    with _live_lock:
        return {k: v for k, v in _live.items() if v}


def free_handle(kind, free_fn, ptr):
    """Finalizer body: frees a native handle once (ptr is a c_void_p, never self)."""
    free_fn(ptr)
    handle_freed(kind)
