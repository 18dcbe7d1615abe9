"""Python thread states kept on the library's threads between callbacks.

A ctypes callback on a thread Python did not start (the library's workers and event loops)
gets a new Python thread state for the call and loses it when the call returns: ctypes'
PyGILState_Ensure creates it, its PyGILState_Release deletes it, and with it the frame
stack (an mmap and a munmap per call, a TLB shoot-down on every core). A server answering
thousands of calls a second spent ~12 % of its CPU there.

So the first callback on such a thread takes one more PyGILState_Ensure, never matched
while the thread runs: the thread state lives on between callbacks (each callback then only
takes and gives back the GIL). The thread state is also the value of a pthread key whose
destructor deletes it when the thread exits. (By then glibc has already emptied Python's own
key for the thread, so the destructor — a ctypes callback — runs under a thread state of its
own, and clears and deletes the kept one, which is no longer current: as Python allows.) At
interpreter exit the key is deleted before anything else of the package's exit runs: a
library thread that exits later calls no Python (its thread state is left to the process's
end).
"""

import atexit
import ctypes
import threading

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
    # On the exiting thread, under this callback's own new thread state: the kept one goes.
    if kept:
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


def keep():
    """Called at the start of every callback: on a thread Python did not start, the first
    call keeps the thread state (later calls find the mark this thread-local holds)."""
    if getattr(_local, "kept", False):
        return
    _local.kept = True
    if threading.get_ident() in threading._active:   # noqa: SLF001 - Python's own thread
        return
    with _lock:
        if not _key_live:
            return
        _ensure()
        _libc.pthread_setspecific(_key, ctypes.c_void_p(_current()))


_create_key()
atexit.register(_delete_key)
