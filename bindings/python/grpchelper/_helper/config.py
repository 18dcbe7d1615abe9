"""grpc-helper's configuration API over the library's config items and config sets.

- `Config` (gh_config): one item, with grpc-helper's constructor (`Config(custom_validator=None,
  **ConfigItem fields)`) and accessors (`str_val`, `int_val`, `float_val`, `update`, `reset`,
  `validate`). Validation is the library's; a Python custom validator is called from it.
- `ConfigHolder`: a class whose Config attributes are a group of items.
- `RpcStaticConfig`: the built-in static items of an RPC server (gh_config_static_items).
- `ConfigSet` (gh_config_set): in config_set.py.

Errors are grpc-helper's `RpcException` with the library's ResultCode and message.
"""

import ctypes
import weakref
from ctypes import POINTER, byref, c_size_t, c_void_p

from .._native import convert, ffi
from .._native.callbacks import registry
from .._native.handle import NativeHandle
from .._native.convert import text
from ..api import ConfigItem, ConfigValidator
from .errors import RpcException

# The ConfigItem fields Config(**kwargs) takes ("value" is the config set's business).
_FIELDS = ("name", "description", "default_value", "can_be_empty", "validator")

# --- custom validators ----------------------------------------------------------------
# A Python validator is a registry entry of this kind, as long as the native item lives:
# the library's free_user_data releases it once the item is freed and released by every
# config set holding it (also when gh_config_new fails).
VALIDATOR_KIND = "config-validator"


def _write_message(buf, size, message):
    """message as a NUL-terminated UTF-8 string of at most size bytes into buf (cut on a
    character boundary)."""
    if not buf or not size:
        return
    data = message.encode("utf-8", "replace")
    if len(data) > size - 1:
        data = data[:size - 1].decode("utf-8", "ignore").encode("utf-8")
    ctypes.memmove(buf, data + b"\0", len(data) + 1)


def _result_code(rc):
    """An RpcException's rc as a failing gh_result_code (OK or junk → ERROR)."""
    try:
        rc = int(rc)
    except (TypeError, ValueError):
        return ffi.GH_RC_ERROR
    return rc if 0 < rc < 2 ** 31 else ffi.GH_RC_ERROR


@registry.entry_point(ffi.GH_CONFIG_VALIDATE_FN, on_error=lambda e: ffi.GH_RC_ERROR)
def _validate_thunk(key, name, value, message, size):
    # Runs on the thread that validates; no exception may cross into C.
    try:
        validator = registry.get(key)
        if validator is None:  # pragma: no cover - the item owns its entry
            _write_message(message, size, "custom validator is gone")
            return ffi.GH_RC_ERROR
        try:
            validator((name or b"").decode("utf-8", "replace"),
                      (value or b"").decode("utf-8", "replace"))
            return ffi.GH_RC_OK
        except RpcException as e:
            rc, text_ = _result_code(e.rc), str(e)
        except Exception as e:  # noqa: BLE001 - any other error: the value is invalid
            rc, text_ = ffi.GH_RC_ERROR_PARAM_INVALID, str(e) or type(e).__name__
        _write_message(message, size, text_)
        return rc
    except BaseException as e:  # KeyboardInterrupt & co.: still never into C
        try:
            _write_message(message, size, "custom validator failed: %r" % (e,))
        except BaseException:  # pragma: no cover
            pass
        return ffi.GH_RC_ERROR


_NO_VALIDATOR = ffi.GH_CONFIG_VALIDATE_FN()   # NULL
_NO_FREE = ffi.GH_FREE_FN()                   # NULL


def _validator_number(validator):
    if isinstance(validator, str):
        return ConfigValidator.Value(validator)   # ValueError for an unknown name
    return int(validator)


# --- Config -----------------------------------------------------------------------------

class Config:
    """API for configuration items (grpc-helper's Config).

    Constructor arguments are the ConfigItem fields (`name`, `description`,
    `default_value`, `can_be_empty`, `validator`: a ConfigValidator value), plus
    `custom_validator` for CONFIG_VALID_CUSTOM: a callable `(name, value)` that raises
    RpcException (its rc and message are the error) when the value is invalid; any other
    exception reads as ERROR_PARAM_INVALID with its text.

    Errors: a name that does not match [a-z][a-z0-9-]* → RpcException
    ERROR_PARAM_INVALID; CONFIG_VALID_CUSTOM without custom_validator →
    ERROR_PARAM_MISSING. The default value is validated when the item joins a ConfigSet.
    """

    def __init__(self, custom_validator=None, **kwargs):
        unknown = sorted(set(kwargs) - set(_FIELDS))
        if unknown:
            raise TypeError("Config() got unexpected keyword argument(s): %s "
                            "(ConfigItem fields: %s)" % (", ".join(unknown), ", ".join(_FIELDS)))
        validator = _validator_number(kwargs.get("validator", ConfigValidator.CONFIG_VALID_STRING))
        custom = validator == ffi.GH_CONFIG_VALID_CUSTOM and custom_validator is not None
        if custom and not callable(custom_validator):
            raise TypeError("custom_validator must be callable (name, value)")
        name = text(kwargs.get("name", ""), "name")
        description = text(kwargs.get("description", ""), "description")
        default_value = text(kwargs.get("default_value", ""), "default_value")
        key = None
        if custom:
            key = registry.add(VALIDATOR_KIND, custom_validator)
        ptr = c_void_p()
        # On failure the library has already released key (free_user_data).
        ffi.gh_config_new(name, description, default_value,
                           1 if kwargs.get("can_be_empty", False) else 0, validator,
                           _validate_thunk if custom else _NO_VALIDATOR, key,
                           registry.free_user_data if custom else _NO_FREE, byref(ptr))
        self._own(ptr)

    @classmethod
    def _adopt(cls, ptr):
        """A Config owning ptr, a new reference from the library."""
        self = cls.__new__(cls)
        self._own(ptr)
        return self

    def _own(self, ptr):
        self._handle = NativeHandle("config", ptr, ffi.gh_config_free, what="Config")
        self._free = weakref.finalize(self, self._handle.close)
        self._name = self._call(ffi.gh_config_name).decode("utf-8")
        self._description = None

    @classmethod
    def _borrow(cls, ptr, owner):
        """A Config for an item borrowed from a ConfigSet: a child of its handle, valid
        while the set is open ("ConfigSet is closed" after)."""
        self = cls.__new__(cls)
        self._handle = NativeHandle(None, ptr, what="ConfigSet", parent=owner._handle)
        self._free = weakref.finalize(self, self._handle.close)
        self._name = self._call(ffi.gh_config_name).decode("utf-8")
        self._description = None
        return self

    def _call(self, fn, *args):
        with self._handle.use() as ptr:
            return fn(ptr, *args)

    def __repr__(self):
        return "<Config %s=%r>" % (self._name, self.str_val)

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        if self._description is None:
            self._description = self.item.description
        return self._description

    @property
    def default_value(self) -> str:
        """The default value: hard-coded, or from the last layer of a ConfigSet that gave one."""
        return convert.take_string(self._call(ffi.gh_config_default_value))

    @property
    def str_val(self) -> str:
        """The current value."""
        return convert.take_string(self._call(ffi.gh_config_value))

    @property
    def int_val(self) -> int:
        """int(str_val), as grpc-helper (ValueError if it is not an integer)."""
        return int(self.str_val)

    @property
    def float_val(self) -> float:
        """float(str_val), as grpc-helper (ValueError if it is not a float)."""
        return float(self.str_val)

    @property
    def item(self) -> ConfigItem:
        """The item as the config service reports it (a snapshot: a new ConfigItem)."""
        data = c_void_p()
        size = c_size_t()
        self._call(ffi.gh_config_describe, byref(data), byref(size))
        return ConfigItem.FromString(convert.take_bytes(data.value, size.value))

    def reset(self):
        """Back to the default value."""
        self._call(ffi.gh_config_reset)

    def update(self, value: str):
        """Validates value, then makes it the current value (unchanged on error). This does
        not persist anything: use ConfigSet.set for a set's user items."""
        self._call(ffi.gh_config_update, text(value, "value"))

    def validate(self, name=None, value=None):
        """grpc-helper's validate(name, value): raises RpcException if value is not valid
        for this item (empty while not allowed → ERROR_PARAM_MISSING; not of the
        validator's kind → ERROR_PARAM_INVALID; a custom validator's own error). The
        one-argument form validate(value) works too. Messages name the item itself
        (name is accepted for grpc-helper's signature)."""
        if value is None:
            value = name
        if value is None:
            raise TypeError("validate() needs a value: validate(name, value) or validate(value)")
        self._call(ffi.gh_config_validate, text(value, "value"))


class ConfigHolder:
    """A base class from which configuration items holders may inherit: its Config class
    attributes are its items."""

    @classmethod
    def all_config_items(cls):
        return list(filter(lambda x: isinstance(x, Config), cls.__dict__.values()))


# --- built-in static items --------------------------------------------------------------

# Native item name → RpcStaticConfig attribute (grpc-helper's names).
_STATIC_ATTRIBUTES = {
    "rpc-max-workers": "MAX_WORKERS",
    "rpc-shutdown-grace": "SHUTDOWN_GRACE",
    "rpc-shutdown-timeout": "SHUTDOWN_TIMEOUT",
    "rpc-logs-folder": "LOGS_FOLDER",
    "rpc-logs-backup": "LOGS_BACKUP",
    "rpc-logs-interval-unit": "LOGS_ROLLOVER_INTERVAL_UNIT",
    "rpc-logs-interval": "LOGS_ROLLOVER_INTERVAL",
    "rpc-main-host": "MAIN_HOST",
    "rpc-main-port": "MAIN_PORT",
    "rpc-client-timeout": "CLIENT_TIMEOUT",
    "rpc-event-retain-timeout": "EVENT_RETAIN_TIMEOUT",
    "rpc-event-keepalive-timeout": "EVENT_KEEPALIVE_TIMEOUT",
    "rpc-event-queue-max": "EVENT_QUEUE_MAX",
    "rpc-admin-peers": "ADMIN_PEERS",
}


def static_config_items():
    """New Config items for the library's built-in static items, {name: Config} in the
    library's order (each call makes new items)."""
    array = POINTER(c_void_p)()
    count = c_size_t()
    ffi.gh_config_static_items(byref(array), byref(count))
    try:
        ptrs = [array[i] for i in range(count.value)]
    finally:
        ffi.gh_free(ctypes.cast(array, c_void_p))
    items = [Config._adopt(c_void_p(p)) for p in ptrs]
    return {item.name: item for item in items}


def _static_attributes():
    items = static_config_items()
    unmapped = sorted(set(items) - set(_STATIC_ATTRIBUTES))
    missing = sorted(set(_STATIC_ATTRIBUTES) - set(items))
    if unmapped or missing:
        raise RuntimeError("libgrpchelper's static config items do not match RpcStaticConfig: "
                           "without an attribute: %s; not in the library: %s"
                           % (unmapped or "none", missing or "none"))
    return {_STATIC_ATTRIBUTES[name]: item for name, item in items.items()}


_STATIC = _static_attributes()


class RpcStaticConfig(ConfigHolder):
    """Built-in static configuration items of an RPC server, under grpc-helper's names
    (the items themselves, with their validators and defaults, are the library's).

    Shared items, as grpc-helper's: the default layers of a ConfigSet holding them change
    their defaults."""

    MAX_WORKERS = _STATIC["MAX_WORKERS"]                                  # rpc-max-workers
    SHUTDOWN_GRACE = _STATIC["SHUTDOWN_GRACE"]                            # rpc-shutdown-grace
    SHUTDOWN_TIMEOUT = _STATIC["SHUTDOWN_TIMEOUT"]                        # rpc-shutdown-timeout
    LOGS_FOLDER = _STATIC["LOGS_FOLDER"]                                  # rpc-logs-folder
    LOGS_BACKUP = _STATIC["LOGS_BACKUP"]                                  # rpc-logs-backup
    LOGS_ROLLOVER_INTERVAL_UNIT = _STATIC["LOGS_ROLLOVER_INTERVAL_UNIT"]  # rpc-logs-interval-unit
    LOGS_ROLLOVER_INTERVAL = _STATIC["LOGS_ROLLOVER_INTERVAL"]            # rpc-logs-interval
    MAIN_HOST = _STATIC["MAIN_HOST"]                                      # rpc-main-host
    MAIN_PORT = _STATIC["MAIN_PORT"]                                      # rpc-main-port
    CLIENT_TIMEOUT = _STATIC["CLIENT_TIMEOUT"]                            # rpc-client-timeout
    EVENT_RETAIN_TIMEOUT = _STATIC["EVENT_RETAIN_TIMEOUT"]                # rpc-event-retain-timeout
    EVENT_KEEPALIVE_TIMEOUT = _STATIC["EVENT_KEEPALIVE_TIMEOUT"]          # rpc-event-keepalive-...
    EVENT_QUEUE_MAX = _STATIC["EVENT_QUEUE_MAX"]                          # rpc-event-queue-max (ours)
    ADMIN_PEERS = _STATIC["ADMIN_PEERS"]                                  # rpc-admin-peers (ours)


del _STATIC


__all__ = ["Config", "ConfigHolder", "RpcStaticConfig", "static_config_items"]
