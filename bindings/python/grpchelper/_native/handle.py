"""Native handles: the one class through which the package owns (or borrows) a pointer
the library handed over, and the count of live handles by kind.

A `NativeHandle` holds the pointer and the function that frees it. The pointer is lent
to calls (`use()`, `acquire()`/`release()`) and `close()` frees it once, never while a
call is using it, and is thread-safe. The Python object that owns the handle registers
`handle.close` (or its own wrapper) with `weakref.finalize`; the handle holds no
reference to its owner, so dropping the owner frees it.

Handles form a tree, as python-libusb1's objects do: a handle made with `parent=` is its
parent's child, and closing (or finalising) the parent first closes its children — a
channel's live calls before the channel, a server's calls before the server, the views of
a managed server's config set, logs and auto-client before the server. A parent that is
closed takes no new child: making one raises ValueError (and frees the new pointer).

Two ways to close:
- waiting (the default): `close()` stops lending, waits until the calls using the
  pointer have returned, then frees it — for handles used by short calls;
- deferred (`deferred=True`): `close()` stops lending and frees at once if no call uses
  the pointer, else the last `release()` frees it — for handles a call may block on until
  the parent's own free ends it (a client call blocked in gh_call_recv until its channel
  is freed), where waiting would never end.

A borrowed handle (`free=None`: the pointer belongs to the library or to another handle)
frees nothing and is not counted; with `lease_parent=True` each use also holds the
parent, so the parent is never freed under it.

Finalisers run wherever the garbage collector runs, which may be on a thread inside one
of these methods (any allocation can start a collection): the locks are reentrant, and
no dict is iterated under them (a finaliser may close a child meanwhile).
"""

import contextlib
import threading

# --- accounting ---------------------------------------------------------------------------
# Every native handle the package owns is counted here until freed, so tests can check that
# calls leave nothing behind.

_live_lock = threading.RLock()
_live = {}


def _counted(kind, delta):
    with _live_lock:
        _live[kind] = _live.get(kind, 0) + delta


def live_handles():
    """{kind: count} of native handles created by the package and not yet freed."""
    with _live_lock:
        return {k: v for k, v in _live.items() if v}


def _address(ptr):
    value = getattr(ptr, "value", ptr)       # a c_void_p or an int
    return int(value) if value else 0


class NativeHandle:
    """One native pointer: `kind` names it for live_handles() (None: not counted), `free`
    frees it (None: borrowed), `what` names it in errors ("<what> is closed").

    parent: a NativeHandle whose close() first closes this one.
    lease_parent: each use of this pointer also holds the parent (default: borrowed
        handles do, owned ones do not).
    deferred: close() does not wait for the calls using the pointer; the last of them
        frees it.
    before_free: called with the pointer just before it is freed (e.g. to read what a
        finished call holds); exceptions are its own business.
    """

    __slots__ = ("_kind", "_ptr", "_free", "_what", "_parent", "_lease", "_deferred",
                 "_before_free", "_lock", "_users", "_closed", "_freed", "_idle",
                 "_children", "__weakref__")

    def __init__(self, kind, ptr, free=None, *, what="handle", parent=None, lease_parent=None,
                 deferred=False, before_free=None):
        self._kind = kind if free is not None else None
        self._ptr = _address(ptr)
        self._free = free
        self._what = what
        self._parent = parent
        if lease_parent is None:
            lease_parent = free is None
        self._lease = parent if lease_parent else None     # also held by each use
        self._deferred = deferred
        self._before_free = before_free
        self._lock = threading.RLock()
        self._users = 0
        self._closed = False
        self._freed = False
        self._idle = None                    # Condition, made by a close() that waits
        self._children = {}
        if self._kind is not None:
            _counted(self._kind, 1)
        if parent is not None and not parent._adopt(self):
            self._closed = self._freed = True
            self._free_now()
            raise ValueError("%s is closed" % parent._what)

    def __repr__(self):
        return "<NativeHandle %s 0x%x%s>" % (self._what, self._ptr,
                                              " closed" if self._closed else "")

    @property
    def closed(self):
        """True once close() has started (the pointer is no longer lent)."""
        return self._closed

    @property
    def address(self):
        """The pointer as an int, to compare with pointers the library returns (not to
        call with: use() lends it)."""
        return self._ptr

    # -- lending
    def acquire(self):
        """The pointer, counted as in use until release(); None once closed."""
        with self._lock:
            if self._closed:
                return None
            self._users += 1
        if self._lease is not None and self._lease.acquire() is None:
            self._release_own()
            return None
        return self._ptr

    def release(self):
        """Ends a use begun by acquire(). The last use of a closed deferred handle frees it."""
        if self._lease is not None:
            self._lease.release()
        self._release_own()

    def _release_own(self):
        with self._lock:
            self._users -= 1
            if not self._closed or self._users:
                return
            if self._idle is not None:
                self._idle.notify_all()
            free = self._deferred and not self._freed
            self._freed = self._freed or free
        if free:
            self._free_now()

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

    # -- the tree
    def _adopt(self, child):
        with self._lock:
            if self._closed:
                return False
            self._children[id(child)] = child
            return True

    def _forget(self, child):
        # No lock: dict.pop is atomic, and close() iterates a dict it has taken away.
        self._children.pop(id(child), None)

    # -- closing
    def close(self, wait=None):
        """Closes the children, then frees the pointer once the calls using it have
        returned (`wait`: True waits for them, False leaves the free to the last of them;
        None: as the handle was made). True the first time, False after."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            children = self._children
            if children:
                self._children = {}
        if children:
            for child in reversed(list(children.values())):     # the youngest first
                child.close()
        if wait is None:
            wait = not self._deferred
        with self._lock:
            if self._users and wait:
                if self._idle is None:
                    self._idle = threading.Condition(self._lock)
                while self._users:
                    self._idle.wait()
            elif self._users:
                self._deferred = True        # the last release() frees it
            free = not self._users and not self._freed
            self._freed = self._freed or free
        if free:
            self._free_now()
        if self._parent is not None:
            self._parent._forget(self)
        return True

    def _free_now(self):
        # Once: the caller has set _freed under the lock.
        if self._before_free is not None:
            self._before_free(self._ptr)
        if self._free is not None:
            self._free(self._ptr)
            _counted(self._kind, -1)
