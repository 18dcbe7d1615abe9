"""grpc-helper's RpcServer and RpcServiceDescriptor over gh_rpc_server.

The library runs the server: the config set, the rolling logs, the built-in services
(srv, config, log), API version checks, error results, pending calls, the managers'
lifecycle and shutdown. This module describes each service to it (gh_rpc_service_*):
the methods are found by calling the grpcio-tools generated `add_XServicer_to_server`
on a server that records what it registers, and each method the manager implements
(grpc-helper's rule: a public method with one parameter and a return annotation) is
served by one ctypes thunk that decodes the request, calls the manager and sends the
response(s). An exception becomes the method's error response through gh_rpc_error.
"""

import ctypes
import inspect
import itertools
import logging
import sys
import threading
import time
import traceback
import weakref
from ctypes import byref, c_char_p, c_size_t, c_void_p
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from . import _ffi


from ._native import BorrowedHandle, NativeHandle, message_call, text  # noqa: E402
from .api import (ConfigApiVersion, ConfigServiceStub, Filter, LoggerApiVersion,  # noqa: E402
                  LoggerServiceStub, MultiServiceInfo, Result, ResultCode, ResultStatus,
                  RpcServerServiceStub, ServerApiVersion)
from .client import RpcClient, describe_stub  # noqa: E402
from .config import (Config, ConfigSet, RpcStaticConfig, _cli_strings, _expand,  # noqa: E402
                     _result_code)
from .errors import RpcException  # noqa: E402
from .folders import Folders  # noqa: E402
from .logs import RpcLogs  # noqa: E402
from .manager import RpcManager, ensure_manager_attributes  # noqa: E402

_LOGGER = logging.getLogger("grpchelper")

_INTERNAL = 13
_UNIMPLEMENTED = 12


# --- RpcServiceDescriptor ------------------------------------------------------------

@dataclass
class RpcServiceDescriptor:
    """A service to be served by an RpcServer (grpc-helper's RpcServiceDescriptor).

    Attributes:
        module: the Python module providing the service (its `__title__` and
            `__version__` make the "title:version" string of srv.info).
        name: the service's name (srv.info, and its attribute on auto-clients).
        api_version: the API version enum (generated EnumTypeWrapper): 0 is ignored, the
            lowest value is the supported version, the highest the current one.
        manager: the object calls are delegated to: a subclass of the generated servicer
            (and usually of RpcManager).
        register_method: the generated `add_XServicer_to_server` function.
        client_stub: the generated `XStub` class.
        is_proxy: a proxied service (not supported yet by this version).
    """

    module: ModuleType
    name: str
    api_version: object
    manager: object
    register_method: Callable
    client_stub: type
    is_proxy: bool = False


def api_versions(enum):
    """(supported, current): the lowest and highest non-zero values of a version enum
    (a generated EnumTypeWrapper, or any iterable / enum class of ints)."""
    values = enum.values() if callable(getattr(enum, "values", None)) else list(enum)
    versions = sorted({int(v) for v in values} - {0})
    if not versions:
        raise RpcException("API version enum %r has no non-zero value" % (enum,),
                           ResultCode.ERROR_PARAM_INVALID)
    return versions[0], versions[-1]


def module_version(module):
    """grpc-helper's "title:version" of a module (its name / "" when it lacks them)."""
    title = getattr(module, "__title__", None) or getattr(module, "__name__", "")
    return "%s:%s" % (title, getattr(module, "__version__", ""))


# --- method discovery -----------------------------------------------------------------

class _AnyServicer:
    """The servicer handed to a generated add_XServicer_to_server: every attribute is a
    placeholder (the handlers it builds are only read, never called)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _placeholder


def _placeholder(*args, **kwargs):  # pragma: no cover - never called
    raise RuntimeError("placeholder behaviour")


class _RecordingServer:
    """A stand-in for grpc.Server that records what generated code registers:
    add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    and, in newer grpcio-tools code, add_registered_method_handlers(service, handlers)."""

    def __init__(self):
        self.services = {}    # service name → {method: RpcMethodHandler}, in order

    def _add(self, service, method, handler):
        self.services.setdefault(service, {}).setdefault(method, handler)

    def add_generic_rpc_handlers(self, generic_rpc_handlers):
        for h in generic_rpc_handlers:
            handlers = getattr(h, "_method_handlers", None)
            if not isinstance(handlers, dict):
                raise TypeError("cannot list the methods of generic handler %r (expected "
                                "grpc.method_handlers_generic_handler's)" % (h,))
            for path, handler in handlers.items():
                parts = path.split("/")
                if len(parts) != 3 or parts[0]:
                    raise ValueError("method path %r is not /Service/method" % (path,))
                self._add(parts[1], parts[2], handler)

    def add_registered_method_handlers(self, service_name, method_handlers):
        for method, handler in method_handlers.items():
            self._add(service_name, method, handler)

    def __getattr__(self, name):
        raise AttributeError("a service registration method called server.%s: only "
                             "add_generic_rpc_handlers / add_registered_method_handlers are "
                             "expected" % name)


def discover_service(register_method):
    """(service name, {method: RpcMethodHandler}) registered by a generated
    add_XServicer_to_server function."""
    server = _RecordingServer()
    register_method(_AnyServicer(), server)
    if len(server.services) != 1:
        raise RpcException("%s registered %d services (expected one)"
                           % (getattr(register_method, "__name__", register_method),
                              len(server.services)), ResultCode.ERROR_PARAM_INVALID)
    return next(iter(server.services.items()))


def manager_method(manager, name):
    """The manager's implementation of method `name` by grpc-helper's rule (a public
    callable with exactly one parameter and a declared return type), else None."""
    if name.startswith("_"):
        return None
    method = getattr(manager, name, None)
    if method is None or not callable(method):
        return None
    try:
        sig = inspect.signature(method)
    except (TypeError, ValueError):
        return None
    if sig.return_annotation is inspect.Signature.empty or len(sig.parameters) != 1:
        return None
    if sig.return_annotation is Result:
        raise RpcException("Can't declare %s rpc with Result as a return type; please use "
                           "Return Status instead" % name, ResultCode.ERROR_PARAM_INVALID)
    return method


def _cardinality(handler):
    if handler.request_streaming:
        return _ffi.GH_BIDI_STREAMING if handler.response_streaming else _ffi.GH_CLIENT_STREAMING
    return _ffi.GH_SERVER_STREAMING if handler.response_streaming else _ffi.GH_UNARY


# --- the C entry points --------------------------------------------------------------
# user_data keys → method dispatchers and manager hooks; an entry is removed by the
# library's free_user_data once the service and every server serving it are freed.

_registry = {}
_keys = itertools.count(1)
_tls = threading.local()

_NO_HANDLER = _ffi.GH_RPC_HANDLER_FN()
_NO_LOAD = _ffi.GH_RPC_LOAD_FN()
_NO_SHUTDOWN = _ffi.GH_RPC_SHUTDOWN_FN()
_NO_FREE = _ffi.GH_FREE_FN()


def _register(entry):
    key = next(_keys)
    _registry[key] = entry
    return key


@_ffi.GH_FREE_FN
def _free_key(key):
    try:
        _registry.pop(key, None)
    except BaseException:  # pragma: no cover - never let anything reach C
        pass


def _c_text(value):
    return str(value).replace("\0", "\\0").encode("utf-8", "replace")


def _report(e):
    """Records e with gh_rpc_error (message, grpc-helper's stack text); its ResultCode."""
    try:
        message = str(e)
    except Exception:  # noqa: BLE001
        message = "%s (unprintable)" % type(e).__name__
    stack = "".join(traceback.format_tb(e.__traceback__))
    _ffi.gh_rpc_error(_c_text(message), _c_text(stack))
    if isinstance(e, RpcException):
        return _result_code(e.rc)
    return _ffi.GH_RC_ERROR


def _report_safely(e):
    try:
        return _report(e)
    except BaseException:  # pragma: no cover - never let anything reach C
        return _ffi.GH_RC_ERROR


@_ffi.GH_RPC_HANDLER_FN
def _handler_thunk(call, key):
    # A worker thread of the library; no exception may cross into C.
    try:
        method = _registry.get(key)
        if method is None:  # pragma: no cover - the service owns its entries
            return _report(RpcException("method is gone", ResultCode.ERROR_STATE_UNEXPECTED))
        return method.serve(call)
    except BaseException as e:
        return _report_safely(e)


@_ffi.GH_RPC_LOAD_FN
def _load_thunk(server, client, key):
    try:
        hooks = _registry.get(key)
        if hooks is None:  # pragma: no cover
            return _ffi.GH_RC_OK
        return hooks.load(server, client)
    except BaseException as e:
        return _report_safely(e)


@_ffi.GH_RPC_SHUTDOWN_FN
def _shutdown_thunk(key):
    try:
        hooks = _registry.get(key)
        if hooks is not None:
            hooks.shutdown()
    except BaseException:  # pragma: no cover - never let anything reach C
        pass


_libc = ctypes.CDLL(None)
_libc.strdup.restype = c_void_p
_libc.strdup.argtypes = [c_char_p]


def python_stacks():
    """Every Python thread's stack, as grpc-helper's dump (faulthandler) shows them."""
    names = {t.ident: t.name for t in threading.enumerate()}
    out = ["Python threads:"]
    for ident, frame in sys._current_frames().items():
        out.append('  Thread 0x%016x "%s" (most recent call last):' % (ident, names.get(ident, "?")))
        out.extend("    " + line for entry in traceback.format_stack(frame)
                   for line in entry.rstrip("\n").split("\n"))
    return "\n".join(out) + "\n"


@_ffi.GH_RPC_DUMP_FN
def _dump_thunk(user_data):
    try:
        return _libc.strdup(_c_text(python_stacks()))
    except BaseException:  # pragma: no cover - never let anything reach C
        return None


class _CallEnded(Exception):
    """The call ended while the manager was reading requests (cancelled, deadline,
    shutdown) or was answered with a status here."""


class _Requests:
    """The request stream of a client-streaming call, as grpcio hands it to servicers."""

    def __init__(self, method, call):
        self._method = method
        self._call = call
        self._data = c_void_p()
        self._size = c_size_t()
        self._lock = threading.Lock()

    def __iter__(self):
        return self

    def _close(self):
        """At the handler's return: the native call is gone, reads end the iteration."""
        with self._lock:
            self._call = None

    def __next__(self):
        with self._lock:
            call = self._call
            if call is None:
                raise _CallEnded("the call is over")
            return self._read(call)

    def _read(self, call):
        rc = _ffi.gh_server_call_read(call, byref(self._data), byref(self._size))
        if rc == 1:
            return self._method.deserialize(call, self._data, self._size)
        if rc == 0:
            raise StopIteration
        raise _CallEnded("the call ended while reading its requests")


class _Method:
    """Serves the calls of one method that a manager implements."""

    __slots__ = ("native", "fn", "handler", "path")

    def __init__(self, native, fn, handler, path):
        self.native = native
        self.fn = fn
        self.handler = handler
        self.path = path

    def deserialize(self, call, data, size):
        raw = ctypes.string_at(data.value, size.value) if size.value else b""
        deserializer = self.handler.request_deserializer
        if deserializer is None:
            return raw
        try:
            return deserializer(raw)
        except Exception:
            _LOGGER.exception("Exception deserializing request! (%s)", self.path)
            _ffi.gh_server_call_finish(call, _INTERNAL, b"Exception deserializing request!", None, 0)
            raise _CallEnded("request does not deserialize")

    def send(self, call, response):
        """Sends one response; False once the call can take no more."""
        serializer = self.handler.response_serializer
        try:
            data = serializer(response) if serializer is not None else response
            if not isinstance(data, bytes):
                raise TypeError("serialized response is %s, not bytes" % type(data).__name__)
        except Exception:
            _LOGGER.exception("Failed to serialize response! (%s)", self.path)
            _ffi.gh_server_call_finish(call, _INTERNAL, b"Failed to serialize response!", None, 0)
            raise _CallEnded("response does not serialize")
        rc = _ffi.gh_server_call_send(call, data, len(data), 0)
        if rc < 0:
            if rc in (_ffi.GH_ERR_CLOSED, _ffi.GH_ERR_INVALID_STATE):
                return False
            _ffi.raise_for(rc)
        return True

    def serve(self, call):
        before = getattr(_tls, "serving", None)
        _tls.serving = self.native
        try:
            return self._serve(call)
        finally:
            _tls.serving = before

    def _serve(self, call):
        handler = self.handler
        requests = None
        try:
            if handler.request_streaming:
                argument = requests = _Requests(self, call)
            else:
                data = c_void_p()
                size = c_size_t()
                rc = _ffi.gh_server_call_read(call, byref(data), byref(size))
                if rc < 0:
                    return _ffi.GH_RC_OK      # ended before its request
                if rc == 0:
                    _ffi.gh_server_call_finish(call, _UNIMPLEMENTED, (
                        '"%s" requires exactly one request message.' % self.path).encode(), None, 0)
                    return _ffi.GH_RC_OK
                argument = self.deserialize(call, data, size)
            result = self.fn(argument)
            if handler.response_streaming:
                iterator = iter(result)
                try:
                    for response in iterator:
                        if not self.send(call, response):
                            break
                finally:
                    close = getattr(iterator, "close", None)
                    if close is not None:
                        close()
            else:
                self.send(call, result)
            return _ffi.GH_RC_OK
        except _CallEnded:
            return _ffi.GH_RC_OK
        except Exception as e:  # the manager's error: the method's error response
            return _report(e)
        finally:
            if requests is not None:
                requests._close()     # the native call is valid until we return


class _Hooks:
    """A manager's load and shutdown hooks (RpcManager._load / _shutdown)."""

    __slots__ = ("native", "manager", "name")

    def __init__(self, native, manager, name):
        self.native = native
        self.manager = manager
        self.name = name

    def load(self, server, client):
        native = self.native
        native.attach(server)
        m = self.manager
        m.folders = native.folders
        m.port = native.port
        m.client = RpcClient._borrow(client, native.handle, native.stubs_map,
                                     "localhost:%d" % native.port, logger=m.logger)
        try:
            m._load()
        except BaseException as e:
            native.record_load_error(e)
            raise
        return _ffi.GH_RC_OK

    def shutdown(self):
        m = self.manager
        try:
            m._shutdown()
        except Exception:  # noqa: BLE001 - logged, the shutdown goes on
            logger = getattr(m, "logger", None)
            if not isinstance(logger, logging.Logger):
                logger = _LOGGER
            logger.exception("Error occurred during %s manager shutdown", self.name)


# --- the Python side of one native server ---------------------------------------------

def _release_native(native):
    """Finalizer of an RpcServer: detaches the loggers, then frees the native server
    (shutting it down first if it runs) — on a thread of its own when collected on a
    live interpreter (the collecting thread may be one of its handlers), at once at
    exit."""
    def free():
        native.close()
    if threading.main_thread().is_alive():
        threading.Thread(target=free, name="grpchelper-rpc-server-free").start()
    else:
        free()


class _Native:
    """What the handlers, the hooks and the RpcServer share (never the RpcServer itself,
    so that dropping it frees the native server)."""

    def __init__(self, folders, statics, users, stubs_map, loggers):
        self.folders = folders
        self.statics = statics
        self.users = users
        self.stubs_map = stubs_map
        self.loggers = loggers          # logger names to attach to the server's logs
        self.lock = threading.Lock()
        self.handle = None              # NativeHandle of the gh_rpc_server once known
        self.owned = False              # gh_rpc_server_new returned it: ours to free
        self.port = None
        self.logs = None                # RpcLogs view of gh_rpc_server_logs
        self.config = None              # ConfigSet view of gh_rpc_server_config
        self.logger = None
        self.load_error = None

    def _free(self, ptr):
        if self.owned:
            _ffi.gh_rpc_server_free(ptr)

    def attach(self, ptr):
        """Called with the native server by the first load hook, or once
        gh_rpc_server_new returned it: the view of its logs, with the root, "RpcServer"
        and managers' loggers on them (so that `_load` already logs to its file)."""
        with self.lock:
            if self.handle is not None:
                return
            logs = _ffi.gh_rpc_server_logs(ptr)
            if not logs:
                raise RpcException("the server has no logs (gh_rpc_server_logs gave NULL)",
                                   ResultCode.ERROR_STATE_UNEXPECTED)
            handle = NativeHandle("rpc_server", self._free, c_void_p(ptr), "RpcServer")
            self.port = _ffi.gh_rpc_server_port(ptr)
            self.logs = RpcLogs._view(BorrowedHandle(handle, logs, "RpcServer logs"))
            self.handle = handle
        self.logs.logger("")                        # the root logger: root.log
        self.logger = self.logs.logger("RpcServer")
        for name in self.loggers:
            self.logs.logger(name)

    def view_config(self):
        """The ConfigSet view (once gh_rpc_server_new has returned the server)."""
        with self.handle.use() as ptr:
            config = _ffi.gh_rpc_server_config(ptr)
        if not config:
            raise RpcException("the server has no config set", ResultCode.ERROR_STATE_UNEXPECTED)
        self.config = ConfigSet._view(BorrowedHandle(self.handle, config, "RpcServer config"),
                                      self.folders, self.statics, self.users)

    def record_load_error(self, e):
        with self.lock:
            if self.load_error is None:
                self.load_error = e

    def detach_logs(self):
        if self.logs is not None:
            self.logs.close()

    def close(self):
        """Detaches the loggers, then frees the native server once (if it is ours)."""
        self.detach_logs()
        if self.config is not None:
            self.config.close()
        if self.handle is not None:
            self.handle.close()


_BUILTIN_STUBS = {
    "srv": (RpcServerServiceStub, ServerApiVersion),
    "config": (ConfigServiceStub, ConfigApiVersion),
    "log": (LoggerServiceStub, LoggerApiVersion),
}


def _array(ctype, values):
    return (ctype * len(values))(*values)


def _without_static_config(candidates):
    """static_items without RpcStaticConfig (and its items): the library adds its own
    built-in static items to every server."""
    out = []
    for c in candidates or ():
        if c is RpcStaticConfig:
            continue
        if isinstance(c, Config) and any(c is i for i in RpcStaticConfig.all_config_items()):
            continue
        out.append(c)
    return out


# --- RpcServer -----------------------------------------------------------------------

class RpcServer:
    """A managed gRPC server (grpc-helper's RpcServer), serving the built-in services
    srv, config and log, and the services of `descriptors`.

    Constructor arguments:
        port: the TCP port to listen on (0: a free one, see `port`).
        descriptors: a list of RpcServiceDescriptor.
        folders: a Folders (None: no folders).
        cli_config: dict name → value of config item defaults (the command line's -c).
        static_items, user_items: lists of Config objects and ConfigHolder classes.
        with_events: serve the events service (not supported yet: RpcException
            ERROR_PARAM_UNSUPPORTED).
        with_debug_signal: SIGUSR2 writes RpcServerDump-YYYYMMDDhhmmss.txt (threads
            and pending calls) in the logs folder.

    Once built, it serves on the library's worker pool (rpc-max-workers threads) and
    every manager's `_load()` has run with its `client` (auto-client), `logger`,
    `folders` and `port` set. Errors: RpcException (a busy port → ERROR_PORT_BUSY; the
    config set's errors); a manager's `_load()` exception is raised as it is, after the
    server has shut down.
    """

    def __init__(self, port: int, descriptors: list, folders: Folders = None,
                 cli_config: dict = None, static_items: list = None, user_items: list = None,
                 with_events: bool = False, with_debug_signal: bool = True):
        descriptors = list(descriptors or ())
        for d in descriptors:
            if not isinstance(d, RpcServiceDescriptor):
                raise TypeError("descriptors holds RpcServiceDescriptor objects, not %r" % (d,))
            if d.manager is None and not d.is_proxy:
                raise RpcException("descriptor %r has no manager" % d.name,
                                   ResultCode.ERROR_PARAM_MISSING)
        if folders is None:
            folders = Folders()
        elif not isinstance(folders, Folders):
            raise TypeError("folders must be a grpchelper.Folders, not %r" % (folders,))
        statics = _expand(_without_static_config(static_items), "static_items")
        users = _expand(user_items, "user_items")
        cli = [text(s, "cli_config") for s in _cli_strings(cli_config)]

        # The auto-client's stubs: the built-in services, then the descriptors' (a
        # descriptor may replace a built-in one of the same name).
        stubs_map = {name: (stub, api_versions(enum)[1])
                     for name, (stub, enum) in _BUILTIN_STUBS.items()}
        managers = []
        for d in descriptors:
            stubs_map[d.name] = (d.client_stub, api_versions(d.api_version)[1])
            if isinstance(d.manager, RpcManager):
                ensure_manager_attributes(d.manager)
            logger = getattr(d.manager, "logger", None)
            if isinstance(logger, logging.Logger) and logger.name not in managers:
                managers.append(logger.name)

        native = _Native(folders, statics, users, stubs_map, managers)
        services = []
        out = c_void_p()
        failure = None
        try:
            for d in descriptors:
                services.append(self._service(d, native))
            flags = (_ffi.GH_RPC_WITH_EVENTS if with_events else 0) | \
                (_ffi.GH_RPC_DEBUG_SIGNAL if with_debug_signal else 0)
            with folders._handle.use() as folders_ptr:
                _ffi.gh_rpc_server_new(int(port), _array(c_void_p, [s.value for s in services]),
                                       len(services), folders_ptr, _array(c_char_p, cli), len(cli),
                                       _array(c_void_p, [c._ptr.value for c in statics]), len(statics),
                                       _array(c_void_p, [c._ptr.value for c in users]), len(users),
                                       flags, byref(out))
        except Exception as e:  # noqa: BLE001 - raised below (or the manager's error)
            failure = e
        finally:
            for s in services:
                _ffi.gh_rpc_service_free(s)
        if failure is not None:
            native.close()            # a server seen by a load hook is gone: never freed here
            error = native.load_error if native.load_error is not None else failure
            del failure
            raise error

        native.owned = True
        native.attach(out.value)
        native.view_config()
        # The debug dump (SIGUSR2) gets the Python threads' stacks too.
        _ffi.gh_rpc_server_set_dump_fn(out, _dump_thunk, None, _NO_FREE)
        self._native = native
        self._client = None
        self._client_lock = threading.Lock()
        self.descriptors = {d.name: d for d in descriptors}
        self.folders = folders
        self._free = weakref.finalize(self, _release_native, native)

    @staticmethod
    def _service(d, native):
        """A gh_rpc_service for descriptor d (the caller frees it)."""
        supported, current = api_versions(d.api_version)
        service_name, handlers = discover_service(d.register_method)
        stub_service, _ = describe_stub(d.client_stub)
        if stub_service is not None and stub_service != service_name:
            raise RpcException("descriptor %r: stub %s calls %s, register_method serves %s"
                               % (d.name, d.client_stub.__name__, stub_service, service_name),
                               ResultCode.ERROR_PARAM_INVALID)
        manager = d.manager
        # A proxied service's calls are the library's (no manager methods, no hooks).
        implemented = {m: None if d.is_proxy else manager_method(manager, m) for m in handlers}
        out = c_void_p()
        _ffi.gh_rpc_service_new(text(d.name, "descriptor name"), service_name.encode("utf-8"),
                                _c_text(module_version(d.module)), supported, current, byref(out))
        try:
            if d.is_proxy:
                _ffi.gh_rpc_service_set_proxy(out, 1)
            for method, handler in handlers.items():
                fn = implemented[method]
                if fn is None:
                    _ffi.gh_rpc_service_add_method(out, method.encode("utf-8"), _cardinality(handler),
                                                   _NO_HANDLER, None, _NO_FREE)
                else:
                    key = _register(_Method(native, fn, handler, "/%s/%s" % (service_name, method)))
                    _ffi.gh_rpc_service_add_method(out, method.encode("utf-8"), _cardinality(handler),
                                                   _handler_thunk, key, _free_key)
            logger = getattr(manager, "logger", None)
            logger_name = logger.name if isinstance(logger, logging.Logger) else type(manager).__name__
            if d.is_proxy:
                pass
            elif isinstance(manager, RpcManager):
                key = _register(_Hooks(native, manager, d.name))
                _ffi.gh_rpc_service_set_manager(out, _c_text(logger_name), _load_thunk,
                                                _shutdown_thunk, key, _free_key)
            else:
                _ffi.gh_rpc_service_set_manager(out, _c_text(logger_name), _NO_LOAD, _NO_SHUTDOWN,
                                                None, _NO_FREE)
        except BaseException:
            _ffi.gh_rpc_service_free(out)
            raise
        return out

    # -- information
    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when 0 was asked)."""
        return self._native.port

    @property
    def config(self) -> ConfigSet:
        """Its config set (the built-in static items, static_items and user_items):
        `item(name)`, `get`, `set`, `reset`... Valid while the server object lives."""
        return self._native.config

    @property
    def logs(self) -> RpcLogs:
        """Its rolling logs (`logger(name)`, `get`, `set`, `reset`, `folder`)."""
        return self._native.logs

    @property
    def logger(self) -> logging.Logger:
        """The "RpcServer" logger (grpc-helper's RpcServer.logger)."""
        return self._native.logger

    @property
    def client(self) -> RpcClient:
        """An auto-client of this server: a stub per served service, named as the
        descriptors (made on first use)."""
        with self._client_lock:
            if self._client is None:
                self._client = RpcClient(
                    "localhost", self.port, self._native.stubs_map, name="srv-client",
                    timeout=self._native.config.item("rpc-client-timeout").float_val,
                    logger=self._native.logger)
            return self._client

    auto_client = client

    @property
    def is_running(self) -> bool:
        """True while it serves; False once a shutdown started."""
        ptr = self._native.handle.acquire()
        if ptr is None:
            return False
        try:
            return bool(_ffi.gh_rpc_server_is_running(ptr))
        finally:
            self._native.handle.release()

    def info(self, request: Filter) -> MultiServiceInfo:
        """srv.info: the services named by the Filter (none: all). An unknown name →
        RpcException ERROR_ITEM_UNKNOWN unless ignore_unknown."""
        with self._native.handle.use() as ptr:
            return message_call(_ffi.gh_rpc_server_info, ptr, request, Filter, MultiServiceInfo)

    # -- lifecycle
    def shutdown(self, request=None) -> ResultStatus:
        """Shuts the server down: stops accepting calls, calls the managers' `_shutdown`,
        lets pending calls run for up to rpc-shutdown-grace seconds, cancels the rest.
        Idempotent; returns when done. From one of its own handlers it returns at once
        (the shutdown goes on on a thread of its own). With a ShutdownRequest, as the
        srv.shutdown RPC (returns at once; the server finishes `timeout` seconds later when
        it is >= 0, 0 meaning rpc-shutdown-timeout)."""
        if request is not None:
            if not self.is_running:
                return ResultStatus()     # idempotent, as grpc-helper's
            return self.client.srv.shutdown(request)
        if getattr(_tls, "serving", None) is self._native:
            threading.Thread(target=self._shutdown_now, name="RpcServer-shutdown").start()
        else:
            self._shutdown_now()
        return ResultStatus()

    def _shutdown_now(self):
        native = self._native
        ptr = native.handle.acquire()
        if ptr is None:
            return
        try:
            _ffi.gh_rpc_server_shutdown(ptr)
        finally:
            native.handle.release()
        native.detach_logs()

    def wait_shutdown(self, timeout: float = None) -> bool:
        """Blocks until the server is shut down (by shutdown(), the srv.shutdown RPC or a
        signal); False if `timeout` seconds passed first."""
        native = self._native
        deadline = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
        while True:
            # Waits in short steps, so that Python signal handlers (Ctrl-C) run.
            step = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))
            ptr = native.handle.acquire()
            if ptr is None:
                return True
            try:
                done = _ffi.gh_rpc_server_wait_shutdown(ptr, step)
            finally:
                native.handle.release()
            if done:
                native.detach_logs()
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def handle_exit_signals(self):
        """Opt-in graceful exit: the first SIGINT or SIGTERM shuts the server down, the
        second exits the process at once (status 1). For one server per process; it
        replaces Python's SIGINT handler (KeyboardInterrupt)."""
        with self._native.handle.use() as ptr:
            _ffi.gh_rpc_server_handle_exit_signals(ptr)

    def close(self):
        """Shuts down (if it runs) and frees the native server; the config and logs views
        and the auto-clients stop working. Not in grpc-helper: there the server lives until
        the process ends; here also until the RpcServer is collected."""
        if self._free.detach() is not None:
            client = self._client
            if client is not None:
                client.close()
            if getattr(_tls, "serving", None) is self._native:
                # gh_rpc_server_free may not run on one of its handlers.
                threading.Thread(target=self._native.close, name="RpcServer-close").start()
            else:
                self._native.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["RpcServer", "RpcServiceDescriptor", "api_versions", "module_version",
           "discover_service", "manager_method"]
