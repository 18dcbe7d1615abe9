"""grpc-helper's Folders over gh_folders: the system, user and workspace folders of a
helper-layer program."""

import os
import weakref
from ctypes import byref, c_char_p, c_void_p
from pathlib import Path

from .._native import ffi
from .._native.convert import path
from .._native.handle import NativeHandle


def _as_path(raw):
    return None if raw is None else Path(os.fsdecode(raw))


class Folders:
    """Folders management (grpc-helper's Folders).

    Attributes (may all be None; str or Path, a leading "~" is expanded):
        system: the system folder (multi-user shared config); never created.
        user: the user folder (multi-application user config); created on first access.
        workspace: the workspace folder (the application's persisted state and logs);
            created on first access.
    """

    def __init__(self, system=None, user=None, workspace=None):
        ptr = c_void_p()
        ffi.gh_folders_new(path(system), path(user), path(workspace), byref(ptr))
        self._handle = NativeHandle("folders", ptr, ffi.gh_folders_free, what="Folders")
        self._free = weakref.finalize(self, self._handle.close)
        self._given = (system, user, workspace)

    def __repr__(self):
        return "Folders(system=%r, user=%r, workspace=%r)" % self._given

    @property
    def system(self):
        """System folder (a Path, or None); never created."""
        with self._handle.use() as ptr:
            return _as_path(ffi.gh_folders_system(ptr))

    @property
    def user(self):
        """User folder (a Path, or None), created with its parents on first access."""
        out = c_char_p()
        with self._handle.use() as ptr:
            ffi.gh_folders_user(ptr, byref(out))
        return _as_path(out.value)

    @property
    def workspace(self):
        """Workspace folder (a Path, or None), created with its parents on first access."""
        out = c_char_p()
        with self._handle.use() as ptr:
            ffi.gh_folders_workspace(ptr, byref(out))
        return _as_path(out.value)


__all__ = ["Folders"]
