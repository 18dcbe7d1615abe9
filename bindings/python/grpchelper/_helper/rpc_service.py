"""The services of grpc-helper's RpcServer: `RpcServiceDescriptor`, finding a service's
methods (the grpcio-tools generated `add_XServicer_to_server` called on a server that
records what it registers), grpc-helper's rule for the methods a manager implements (a
public method with one parameter and a return annotation), and the ctypes entry points
the library calls: one thunk serves every method (it decodes the request, calls the
manager and sends the response(s); an exception becomes the method's error response
through gh_rpc_error), and the managers' load and shutdown hooks."""

import ctypes
import inspect
import logging
import threading
import traceback
from ctypes import byref, c_size_t, c_void_p
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from .._grpc import status
from .._native import ffi
from .._native.callbacks import registry
from .._native.handle import NativeHandle
from ..api import Result, ResultCode
from .client import RpcClient
from .config import _result_code
from .errors import RpcException

_LOGGER = logging.getLogger("grpchelper")

status.INTERNAL = 13
status.UNIMPLEMENTED = 12


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
        is_proxy: a proxied service (forwarded to the backend registered for it with
            srv.proxy_register; no manager needed).
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
        return ffi.GH_BIDI_STREAMING if handler.response_streaming else ffi.GH_CLIENT_STREAMING
    return ffi.GH_SERVER_STREAMING if handler.response_streaming else ffi.GH_UNARY


# --- the C entry points --------------------------------------------------------------
# A method's dispatcher and a manager's hooks are registry entries of these kinds (their
# key is the user_data of gh_rpc_service_add_method / _set_manager), released by the
# library's free_user_data once the service and every server serving it are freed.
METHOD_KIND = "rpc-method"
MANAGER_KIND = "rpc-manager"

_tls = threading.local()

_NO_HANDLER = ffi.GH_RPC_HANDLER_FN()
_NO_LOAD = ffi.GH_RPC_LOAD_FN()
_NO_SHUTDOWN = ffi.GH_RPC_SHUTDOWN_FN()
_NO_FREE = ffi.GH_FREE_FN()


def _c_text(value):
    return str(value).replace("\0", "\\0").encode("utf-8", "replace")


def _report(e):
    """Records e with gh_rpc_error (message, grpc-helper's stack text); its ResultCode."""
    try:
        message = str(e)
    except Exception:  # noqa: BLE001
        message = "%s (unprintable)" % type(e).__name__
    stack = "".join(traceback.format_tb(e.__traceback__))
    ffi.gh_rpc_error(_c_text(message), _c_text(stack))
    if isinstance(e, RpcException):
        return _result_code(e.rc)
    return ffi.GH_RC_ERROR


def _report_safely(e):
    try:
        return _report(e)
    except BaseException:  # pragma: no cover - never let anything reach C
        return ffi.GH_RC_ERROR


@registry.entry_point(ffi.GH_RPC_HANDLER_FN, on_error=_report_safely)
def _handler_thunk(call, key):
    # A worker thread of the library; no exception may cross into C.
    try:
        method = registry.get(key)
        if method is None:  # pragma: no cover - the service owns its entries
            return _report(RpcException("method is gone", ResultCode.ERROR_STATE_UNEXPECTED))
        return method.serve(call)
    except BaseException as e:
        return _report_safely(e)


@registry.entry_point(ffi.GH_RPC_LOAD_FN, on_error=_report_safely)
def _load_thunk(server, client, key):
    try:
        hooks = registry.get(key)
        if hooks is None:  # pragma: no cover
            return ffi.GH_RC_OK
        return hooks.load(server, client)
    except BaseException as e:
        return _report_safely(e)


@registry.entry_point(ffi.GH_RPC_SHUTDOWN_FN)
def _shutdown_thunk(key):
    try:
        hooks = registry.get(key)
        if hooks is not None:
            hooks.shutdown()
    except BaseException:  # pragma: no cover - never let anything reach C
        pass


class _CallEnded(Exception):
    """The call ended while the manager was reading requests (cancelled, deadline,
    shutdown) or was answered with a status here."""


class _Requests:
    """The request stream of a client-streaming call, as grpcio hands it to servicers.

    The call is the library's, valid until the handler returns: a borrowed handle that
    _close() closes then. It is not a child of the server's handle: the library's free
    shuts the server down (pending calls get their grace) and waits for the handlers."""

    def __init__(self, method, call):
        self._method = method
        self._handle = NativeHandle(None, call, what="call")
        self._data = c_void_p()
        self._size = c_size_t()
        self._lock = threading.Lock()         # one read at a time

    def __iter__(self):
        return self

    def _close(self):
        """At the handler's return (after a read in progress on another thread): the
        native call is gone, reads end the iteration."""
        self._handle.close()

    def __next__(self):
        with self._lock:
            call = self._handle.acquire()
            if call is None:
                raise _CallEnded("the call is over")
            try:
                return self._read(call)
            finally:
                self._handle.release()

    def _read(self, call):
        rc = ffi.gh_server_call_read(call, byref(self._data), byref(self._size))
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
            ffi.gh_server_call_finish(call, status.INTERNAL, b"Exception deserializing request!", None, 0)
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
            ffi.gh_server_call_finish(call, status.INTERNAL, b"Failed to serialize response!", None, 0)
            raise _CallEnded("response does not serialize")
        rc = ffi.gh_server_call_send(call, data, len(data), 0)
        if rc < 0:
            if rc in (ffi.GH_ERR_CLOSED, ffi.GH_ERR_INVALID_STATE):
                return False
            ffi.raise_for(rc)
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
                rc = ffi.gh_server_call_read(call, byref(data), byref(size))
                if rc < 0:
                    return ffi.GH_RC_OK      # ended before its request
                if rc == 0:
                    ffi.gh_server_call_finish(call, status.UNIMPLEMENTED, (
                        '"%s" requires exactly one request message.' % self.path).encode(), None, 0)
                    return ffi.GH_RC_OK
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
            return ffi.GH_RC_OK
        except _CallEnded:
            return ffi.GH_RC_OK
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
        return ffi.GH_RC_OK

    def shutdown(self):
        m = self.manager
        try:
            m._shutdown()
        except Exception:  # noqa: BLE001 - logged, the shutdown goes on
            logger = getattr(m, "logger", None)
            if not isinstance(logger, logging.Logger):
                logger = _LOGGER
            logger.exception("Error occurred during %s manager shutdown", self.name)
