"""Python thread states kept on the library's threads between callbacks.

A ctypes callback on a thread Python did not start (the library's workers and event loops)
gets a new Python thread state for the call and loses it when the call returns: ctypes'
PyGILState_Ensure creates it, its PyGILState_Release deletes it, and with it the frame
stack (an mmap and a munmap per call, a TLB shoot-down on every core). A server answering
thousands of calls a second spent ~12 % of its CPU there.

So the first callback on one of the library's own threads (the library says which:
gh_thread_is_library) takes one more PyGILState_Ensure, never matched
while the thread runs: the thread state lives on between callbacks (each callback then only
takes and gives back the GIL). The thread state is also the value of a pthread key whose
destructor deletes it when the thread exits (see _thread_exits for the two orders in which
glibc may run it and Python's own key's clearing; on CPython 3.12+, see ENABLED). At
interpreter exit the key is deleted before anything else of the package's exit runs: a
library thread that exits later calls no Python (its thread state is left to the process's
end).
"""

import atexit
import ctypes
import sys
import threading

from . import ffi

_local = threading.local()
_lock = threading.Lock()
_libc = ctypes.CDLL(None, use_errno=True)
_DESTRUCTOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_key = ctypes.c_uint(0)
_key_live = False
_ensure = ctypes.pythonapi.PyGILState_Ensure
_ensure.restype = ctypes.c_int
_ensure.argtypes = []
_current = ctypes.pythonapi.PyThreadState_Get
_current.restype = ctypes.c_void_p
_current.argtypes = []
_release = ctypes.pythonapi.PyGILState_Release
_release.restype = None
_release.argtypes = [ctypes.c_int]
_PYGILSTATE_LOCKED = 0    # what PyGILState_Ensure returned for the kept reference (GIL held)
_clear = ctypes.pythonapi.PyThreadState_Clear
_clear.restype = None
_clear.argtypes = [ctypes.c_void_p]
_delete = ctypes.pythonapi.PyThreadState_Delete
_delete.restype = None
_delete.argtypes = [ctypes.c_void_p]
_libc.pthread_key_create.argtypes = [ctypes.POINTER(ctypes.c_uint), _DESTRUCTOR]
_libc.pthread_key_delete.argtypes = [ctypes.c_uint]
_libc.pthread_setspecific.argtypes = [ctypes.c_uint, ctypes.c_void_p]


@_DESTRUCTOR
def _thread_exits(kept):
    # On the exiting thread, in a callback of its own. glibc empties each key just before
    # calling its destructor, in key order: when Python's key came first, this callback
    # runs under a new thread state and the kept one is deleted here; when ours came
    # first, Python still finds the kept one (current now): its extra reference is given
    # back and the callback's return deletes it.
    if not kept:
        return
    if _current() == kept:
        _release(_PYGILSTATE_LOCKED)
    else:
        _clear(kept)
        _delete(kept)


def _create_key():
    global _key_live
    if _libc.pthread_key_create(ctypes.byref(_key), _thread_exits) == 0:
        _key_live = True


def _delete_key():
    global _key_live
    with _lock:
        if _key_live:
            _key_live = False
            _libc.pthread_key_delete(_key)


# CPython 3.12 and later empty their own key whatever it holds when a thread state is
# deleted (3.11: only when it holds that state), so the destructor's deletion would take the
# callback's own state away from ctypes (a fatal error at the callback's return): there,
# thread states are not kept (each callback makes its own, as without this module).
ENABLED = sys.version_info < (3, 12)


def keep():
    """Called at the start of every callback: on one of the library's own threads
    (gh_thread_is_library), the first call keeps the thread state (later calls find the mark
    this thread-local holds). Never on any other thread: Python deletes the state of a
    thread it runs when that thread ends (even one calling back while it ends), which
    would leave the key's destructor a dangling state."""
    if getattr(_local, "kept", False):
        return
    _local.kept = True
    if not ENABLED or not ffi.gh_thread_is_library():
        return
    with _lock:
        if not _key_live:
            return
        _ensure()
        _libc.pthread_setspecific(_key, ctypes.c_void_p(_current()))


if ENABLED:
    _create_key()
    atexit.register(_delete_key)
