"""Finding and loading libgrpchelper.so.1 (see the package README for the order)."""

import ctypes
import ctypes.util
import os
import subprocess
import threading
from ctypes import c_int, c_void_p

from .constants import MIN_LIBRARY_VERSION

def _pkg_config_libdir():
    try:
        out = subprocess.run(["pkg-config", "--variable=libdir", "grpchelper"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    libdir = out.stdout.strip()
    if out.returncode != 0 or not libdir:
        return None
    return os.path.join(libdir, "libgrpchelper.so.1")


def _in_tree():
    # bindings/python/grpchelper/_native/library.py -> <repo>/build/lib/libgrpchelper.so.1
    repo = os.path.abspath(__file__)
    for _ in range(5):
        repo = os.path.dirname(repo)
    return os.path.join(repo, "build", "lib", "libgrpchelper.so.1")


def _candidates():
    """(description, thunk returning a path/name or None), in lookup order."""
    return [
        ("environment variable GRPCHELPER_LIBRARY",
         lambda: os.environ.get("GRPCHELPER_LIBRARY") or None),
        ("pkg-config grpchelper (libdir)", _pkg_config_libdir),
        ("the system linker path (libgrpchelper.so.1)", lambda: "libgrpchelper.so.1"),
        ("the system linker path (find_library)", lambda: ctypes.util.find_library("grpchelper")),
        ("the in-tree build", _in_tree),
    ]


_load_lock = threading.Lock()
_lib = None


def load_library():
    """Loads libgrpchelper once; ImportError listing every try when none works."""
    global _lib
    with _load_lock:
        if _lib is not None:
            return _lib
        tried = []
        for what, thunk in _candidates():
            name = thunk()
            if not name:
                tried.append("%s: not set / not found" % what)
                continue
            try:
                lib = ctypes.CDLL(name)
            except OSError as e:
                tried.append("%s: %s: %s" % (what, name, e))
                continue
            try:
                fn = lib.gh_version
            except AttributeError:
                tried.append("%s: %s: not libgrpchelper (no gh_version)" % (what, name))
                continue
            fn.restype = c_void_p
            fn.argtypes = [c_int]
            if not fn(MIN_LIBRARY_VERSION):
                tried.append("%s: %s: version older than %06x" % (what, name, MIN_LIBRARY_VERSION))
                continue
            _lib = lib
            return lib
        raise ImportError("cannot load libgrpchelper; tried, in order:\n  " + "\n  ".join(tried))
