"""grpc-helper's ConfigManager over gh_config_set: static and user items with their default
layers, the persisted user values and the ConfigService operations (`ConfigSet`).

Errors are grpc-helper's `RpcException` with the library's ResultCode and message.
"""

import collections.abc
import contextlib
import weakref
from ctypes import byref, c_char_p, c_void_p

from .._native import ffi
from .._native.convert import message_call, text
from .._native.handle import NativeHandle
from ..api import ConfigStatus, ConfigUpdate, Filter
from .config import Config, ConfigHolder
from .folders import Folders


def _expand(candidates, what):
    """Config instances and ConfigHolder classes → the list of items (an object listed
    twice counts once, as in grpc-helper's name map)."""
    out = []
    seen = set()
    for candidate in candidates or ():
        if isinstance(candidate, Config):
            items = [candidate]
        elif isinstance(candidate, type) and issubclass(candidate, ConfigHolder):
            items = candidate.all_config_items()
        else:
            raise TypeError("%s holds Config instances or ConfigHolder classes, not %r"
                            % (what, candidate))
        for item in items:
            if id(item) not in seen:
                seen.add(id(item))
                out.append(item)
    return out


def _cli_strings(cli_config):
    """grpc-helper's cli_config dict (name → value) as "NAME=VALUE" strings; an iterable
    of such strings is taken as it is."""
    if cli_config is None:
        return []
    if isinstance(cli_config, collections.abc.Mapping):
        return ["%s=%s" % (name, value) for name, value in cli_config.items()]
    if isinstance(cli_config, (str, bytes)):
        raise TypeError("cli_config is a dict name → value (or a list of \"NAME=VALUE\")")
    return [str(s) for s in cli_config]


def _array(ctype, values):
    return (ctype * len(values))(*values)


class ConfigSet:
    """The configuration of a program (grpc-helper's ConfigManager): static and user items,
    their defaults in layers, the user items' persisted values and the ConfigService
    operations.

    static_items, user_items: lists of Config instances and ConfigHolder classes.
    folders: a Folders (None: no folders). cli_config: dict name → value (the command
    line's -c options).

    Default layers, each overriding the previous: the hard-coded default; config.json in
    the system folder; config.json in the user folder; the environment ("my-item" →
    MY_ITEM); cli_config. Then the user items' values persisted in the workspace's
    config.json are restored (one that no longer validates falls back to its default, with
    a warning in `warnings`). The Config objects given are the set's items: they see every
    change made through the set, and the set sees theirs.

    Errors (RpcException): an item in both lists → ERROR_MODEL_INVALID; a malformed
    config.json → ERROR_MODEL_INVALID naming the file; an invalid default → the
    validator's error, naming the item and the layer.
    """

    def __init__(self, static_items=None, user_items=None, folders=None, cli_config=None):
        statics = _expand(static_items, "static_items")
        users = _expand(user_items, "user_items")
        if folders is not None and not isinstance(folders, Folders):
            raise TypeError("folders must be a grpchelper.Folders, not %r" % (folders,))
        cli = [text(s, "cli_config") for s in _cli_strings(cli_config)]
        self.folders = folders if folders is not None else Folders()
        ptr = c_void_p()
        with contextlib.ExitStack() as uses:
            static_ptrs = [uses.enter_context(c._handle.use()) for c in statics]
            user_ptrs = [uses.enter_context(c._handle.use()) for c in users]
            folders_ptr = uses.enter_context(self.folders._handle.use())
            ffi.gh_config_set_new(_array(c_void_p, static_ptrs), len(statics),
                                  _array(c_void_p, user_ptrs), len(users),
                                  folders_ptr, _array(c_char_p, cli), len(cli), byref(ptr))
        self._handle = NativeHandle("config_set", ptr, ffi.gh_config_set_free, what="ConfigSet")
        self._free = weakref.finalize(self, self._handle.close)
        self._init(statics, users)

    def _init(self, statics, users):
        self._static = {c.name: c for c in statics}
        self._user = {c.name: c for c in users}
        self._by_ptr = {c._handle.address: c for c in statics + users}
        with self._handle.use() as ptr:
            count = ffi.gh_config_set_warning_count(ptr)
            warnings = (ffi.gh_config_set_warning(ptr, i) for i in range(count))
            self._warnings = [w.decode("utf-8", "replace") for w in warnings if w is not None]

    @classmethod
    def _view(cls, handle, folders, statics, users):
        """A ConfigSet over a set the library owns elsewhere (a managed server's,
        gh_rpc_server_config): `handle` is a borrowed NativeHandle, a child of the server's;
        statics and users are the Config objects the set was built with (item() returns
        them)."""
        self = cls.__new__(cls)
        self.folders = folders
        self._handle = handle
        self._free = weakref.finalize(self, handle.close)
        self._init(statics, users)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Frees the native set (the Config objects stay usable). Idempotent."""
        self._free()

    @property
    def warnings(self):
        """Warnings raised while loading (e.g. a persisted value that no longer validates)."""
        return list(self._warnings)

    @property
    def static_items(self):
        """{name: Config} of the static items."""
        return dict(self._static)

    @property
    def user_items(self):
        """{name: Config} of the user items."""
        return dict(self._user)

    def item(self, name):
        """The static or user item of that name (the Config object given to the set), or
        None if the set has none."""
        with self._handle.use() as ptr:
            native = ffi.gh_config_set_item(ptr, text(name, "name"))
        if not native:
            return None
        known = self._by_ptr.get(native)
        return known if known is not None else Config._borrow(native, self)

    def _message(self, fn, request, request_type):
        with self._handle.use() as ptr:
            return message_call(fn, ptr, request, request_type, ConfigStatus)

    def get(self, request: Filter) -> ConfigStatus:
        """The user items named by the Filter (no name: all of them). Unknown or static
        names → ERROR_ITEM_UNKNOWN unless ignore_unknown; an empty name →
        ERROR_PARAM_MISSING."""
        return self._message(ffi.gh_config_set_get, request, Filter)

    def set(self, request: ConfigUpdate) -> ConfigStatus:  # noqa: A003 - grpc-helper's name
        """Validates every item of the update, applies none if one fails, then persists the
        non-default user values in the workspace's config.json."""
        return self._message(ffi.gh_config_set_set, request, ConfigUpdate)

    def reset(self, request: Filter) -> ConfigStatus:
        """The named user items back to their defaults, persisted. An empty Filter →
        ERROR_PARAM_MISSING."""
        return self._message(ffi.gh_config_set_reset, request, Filter)

    def update(self, name: str, value: str):
        """Sets one user item and persists (as set() with one item)."""
        with self._handle.use() as ptr:
            ffi.gh_config_set_update(ptr, text(name, "name"), text(value, "value"))


__all__ = ["ConfigSet"]
