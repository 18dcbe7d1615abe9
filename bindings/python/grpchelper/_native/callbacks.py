"""The one registry of Python objects the library calls back with.

The library never holds a Python object: a function that takes a callback takes a
`void *user_data` with it, which the package sets to an integer key of this registry, and
the C function pointer is one of the package's ctypes thunks (one per callback type, made
once by `entry_point` and kept alive here). A thunk finds its object with `get(key)`.

An entry lives until the library says it no longer uses it — its free_user_data callback,
`registry.free_user_data`, releases the key — or until the package releases it itself
(`release(key)`: e.g. a future once its on_done has run; a C function that fails releases
what it was given through free_user_data already).

Every method is thread-safe: thunks run on the library's threads. The lock is reentrant:
a finaliser run by the garbage collector inside a method may free a native object whose
free_user_data comes back here on the same thread.
"""

import atexit
import ctypes
import itertools
import threading

from . import ffi, threadstate


keep_thread_state = threadstate.keep


class CallbackRegistry:
    """Keys (user_data integers, from 1) → (kind, object)."""

    def __init__(self):
        self._lock = threading.RLock()
        self._released = threading.Condition(self._lock)   # notified by release()
        self._entries = {}
        self._keys = itertools.count(1)
        self._thunks = []
        self._awaited_at_exit = []      # key tuples the library releases on its own threads
        self._exit_hooks = []           # run at exit once those are released
        self.free_user_data = self.entry_point(ffi.GH_FREE_FN)(self._free_user_data)

    def add(self, kind, obj):
        """Registers obj; returns its key, the user_data to give the library. `kind` names
        what it is (for leak checks: count(kind))."""
        with self._lock:
            key = next(self._keys)
            self._entries[key] = (kind, obj)
        return key

    def get(self, key):
        """The object of key, or None if it was released (or never registered)."""
        # No lock: one dict lookup is atomic (add and release change the dict in one
        # operation each), and this runs once per served call and per message.
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def release(self, key):
        """Forgets key; returns its object (None if it was already released)."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._released.notify_all()
        return None if entry is None else entry[1]

    def wait_released(self, keys, timeout=None):
        """Blocks until none of `keys` is registered any more (the library has released
        them all); False if `timeout` seconds passed first."""
        keys = tuple(keys)
        with self._lock:
            return self._released.wait_for(
                lambda: not any(k in self._entries for k in keys), timeout)

    def await_at_exit(self, keys):
        """The library releases `keys` on a thread of its own (a server given up without
        waiting, freed once its handlers have returned): the interpreter's exit waits until
        it has, rather than finalizing under those handlers."""
        keys = tuple(keys)
        if not keys:
            return
        with self._lock:
            # Tuples already released go now (a long-lived process gives up many servers).
            self._awaited_at_exit = [ks for ks in self._awaited_at_exit
                                     if any(k in self._entries for k in ks)]
            self._awaited_at_exit.append(keys)

    def wait_awaited(self):
        """Blocks until every key given to await_at_exit is released (run at exit)."""
        with self._lock:
            pending = list(self._awaited_at_exit)
        for keys in pending:
            self.wait_released(keys)

    def after_awaited_at_exit(self, fn):
        """Runs fn() at the interpreter's exit, after wait_awaited (the released servers
        are gone): e.g. taking back from the library what calls into Python."""
        with self._lock:
            self._exit_hooks.append(fn)

    def _at_exit(self):
        self.wait_awaited()
        with self._lock:
            hooks = list(self._exit_hooks)
        for fn in hooks:
            fn()

    def _free_user_data(self, key):
        # The library's free_user_data: a NULL user_data arrives as None.
        if key is not None:
            self.release(key)

    def snapshot(self, *kinds):
        """{key: object} of the entries of these kinds (all kinds when none is given)."""
        with self._lock:
            entries = self._entries.copy()
        return {k: obj for k, (kind, obj) in entries.items() if not kinds or kind in kinds}

    def count(self, *kinds):
        """How many entries of these kinds (all kinds when none is given) are alive."""
        return len(self.snapshot(*kinds))

    def entry_point(self, functype, on_error=None):
        """Decorator: a ctypes callback of `functype` (a CFUNCTYPE) calling the function,
        kept alive as long as the registry. No exception crosses into C: one that escapes
        the function is given to `on_error(exception)`, whose result is returned. Without
        on_error the result is None (void, or a NULL pointer); a type that returns an int
        needs on_error (ctypes cannot return None as an int)."""
        if on_error is None and functype._restype_ not in (None, ctypes.c_void_p):
            raise TypeError("entry_point(%s) needs on_error" % functype.__name__)

        def decorate(fn):
            def thunk(*args):
                try:
                    keep_thread_state()
                    return fn(*args)
                except BaseException as e:  # noqa: BLE001 - nothing may reach C
                    if on_error is None:
                        return None
                    return on_error(e)
            c_function = functype(thunk)
            c_function.__name__ = getattr(fn, "__name__", "thunk")
            with self._lock:
                self._thunks.append(c_function)
            return c_function
        return decorate


# The package's registry: every user_data it gives the library is a key of this one.
registry = CallbackRegistry()
# Registered at import, before any weakref.finalize of the package: the interpreter's exit
# runs the finalisers (which give servers up) first, then this.
atexit.register(registry._at_exit)
