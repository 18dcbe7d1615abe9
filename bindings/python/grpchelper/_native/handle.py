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
`close(wait=False)` closes a handle and its children the deferred way, whatever they were
made with: for a close that must wait for nothing (a finaliser, a handler of the server
being closed), with a free function that does not block either. `close(False,
children=False)` leaves the children open, each to close itself: for a free function that
keeps what they point to valid until they are done (gh_server_release: the calls its
running handlers hold).

A borrowed handle (`free=None`: the pointer belongs to the library or to another handle)
frees nothing and is not counted; with `lease_parent=True` each use also holds the
parent, so the parent is never freed under it.

Finalisers run wherever the garbage collector runs, which may be on a thread inside one
of these methods (any allocation can start a collection): the locks are reentrant, and
no dict is iterated under them (a finaliser may close a child meanwhile).
"""

import _thread
import contextlib
import threading

# threading.RLock is a Python function returning this C lock: called directly, one frame
# less per handle.
_RLock = getattr(_thread, "RLock", threading.RLock)

# --- accounting ---------------------------------------------------------------------------
# Every native handle the package owns is counted here until freed, so tests can check that
# calls leave nothing behind.

# One list per kind, one item per live handle: list.append and list.pop are atomic, so
# counting takes no lock (it runs twice per call of every call handle).
_live = {}


def _tally(kind):
    tally = _live.get(kind)
    if tally is None:
        tally = _live.setdefault(kind, [])
    return tally


def live_handles():
    """{kind: count} of native handles created by the package and not yet freed."""
    return {k: len(v) for k, v in list(_live.items()) if v}


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
                 deferred=False, before_free=None, _held=False):
        self._kind = kind if free is not None else None
        self._ptr = ptr if type(ptr) is int else _address(ptr)
        self._free = free
        self._what = what
        self._parent = parent
        if lease_parent is None:
            lease_parent = free is None
        self._lease = parent if lease_parent else None     # also held by each use
        self._deferred = deferred
        self._before_free = before_free
        self._lock = _RLock()
        self._users = 1 if _held else 0     # new_child: held by its maker
        self._closed = False
        self._freed = False
        self._idle = None                    # Condition, made by a close() that waits
        self._children = {}
        if self._kind is not None:
            _tally(self._kind).append(None)
        if _held:
            return                           # new_child adopts it, under the parent's lock
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
        lease = self._lease
        if lease is not None and lease.acquire() is None:
            return None
        with self._lock:
            if not self._closed:
                self._users += 1
                return self._ptr
        if lease is not None:
            lease.release()
        return None

    def release(self, close=False, wait=None):
        """Ends a use begun by acquire() (or new_child). The last use of a closed deferred
        handle frees it. close=True also closes the handle, as close(wait) would, in the
        same step when it was the last use and the handle has no children (a pointer
        made, used once and freed by one thread: a blocking unary call)."""
        lease = self._lease
        if lease is not None:
            lease.release()
        with self._lock:
            self._users -= 1
            if self._closed:
                if self._users:
                    return
                if self._idle is not None:
                    self._idle.notify_all()
                free = self._deferred and not self._freed
                self._freed = self._freed or free
                forget = False
            elif not close:
                return
            elif self._users or self._children:
                free = None                  # the general path, below
            else:
                self._closed = self._freed = True
                free = forget = True
        if free is None:
            self.close(wait)
            return
        if free:
            self._free_now()
        if forget and self._parent is not None:
            self._parent._children.pop(id(self), None)     # _forget

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
    def new_child(self, make, args, kind, free=None, **options):
        """A child whose pointer is make(pointer, *args), returned held by the caller (one
        use, ended by child.release()); None if this handle is closed (make is not
        called). make runs while the caller holds a use of this handle — close() cannot
        free the pointer under it — but not its lock: makers on other threads do not
        queue behind a native call (ctypes lets other threads run meanwhile). The child
        is adopted under the lock afterwards; if this handle was closed in between, the
        new pointer is freed and the result is None. `options`: NativeHandle's keyword
        arguments."""
        ptr = self.acquire()
        if ptr is None:
            return None
        try:
            child = NativeHandle(kind, make(ptr, *args), free, parent=self, _held=True,
                                 **options)
        except BaseException:
            self.release()
            raise
        with self._lock:
            adopted = not self._closed
            if adopted:
                self._children[id(child)] = child
        if adopted and child._lease is self:
            return child                 # the use taken above is the child's lease
        self.release()
        if adopted:
            return child
        child._closed = child._freed = True
        child._free_now()
        return None

    def borrowed_child(self, ptr, *, what="handle", deferred=False):
        """A borrowed child for a pointer that stays valid while its maker holds it (a
        server's call during its handler): made outside this handle's lock, adopted under
        it in one short step (callers on many threads do not queue behind one another),
        returned held by the caller (one use, ended by child.release()). None if this
        handle is closed."""
        child = NativeHandle(None, ptr, None, what=what, parent=self, lease_parent=False,
                             deferred=deferred, _held=True)
        with self._lock:
            if not self._closed:
                self._children[id(child)] = child
                return child
        child._closed = child._freed = True
        return None

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
    def close(self, wait=None, children=True):
        """Closes the children, then frees the pointer once the calls using it have
        returned (`wait`: True waits for them, False leaves the free to the last of them,
        and closes the children so too — nothing waits, from any thread; None: as the
        handle was made). `children=False` leaves the children open: each closes itself
        (and takes no new sibling: this handle is closed). True the first time, False
        after."""
        child_wait = False if wait is False else None
        if wait is None:
            wait = not self._deferred
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            children = self._children if children else None
            if children:
                self._children = {}
            else:
                free = self._settle(wait)
        if children:
            for child in reversed(list(children.values())):     # the youngest first
                child.close(child_wait)
            with self._lock:
                free = self._settle(wait)
        if free:
            self._free_now()
        if self._parent is not None:
            self._parent._forget(self)
        return True

    def _settle(self, wait):
        # Under the lock, the handle closed: waits for the uses (wait) or leaves the free
        # to the last of them; True if the caller frees now.
        if self._users and wait:
            if self._idle is None:
                self._idle = threading.Condition(self._lock)
            while self._users:
                self._idle.wait()
        elif self._users:
            self._deferred = True            # the last release() frees it
        free = not self._users and not self._freed
        self._freed = self._freed or free
        return free

    def _free_now(self):
        # Once: the caller has set _freed under the lock.
        if self._before_free is not None:
            self._before_free(self._ptr)
        if self._free is not None:
            self._free(self._ptr)
            _live[self._kind].pop()
