"""grpcio's server surface (grpc.server, grpc.Server) over gh_server.

Handlers run on the library's worker threads (as many as the thread pool's max_workers),
entering Python through dispatch.py.
"""

import ctypes
import threading
import weakref
from ctypes import byref, c_void_p

from .._native import ffi
from .._native.handle import NativeHandle
from . import compat
from .._native.callbacks import registry
from .dispatch import _Dispatcher, _ServerState, _cardinality, _handler_thunk, _register

_SERVER_OPTIONS = {
    "grpc.max_receive_message_length": ffi.GH_OPT_MAX_RECV_MESSAGE_SIZE,
    "grpc.max_concurrent_streams": ffi.GH_OPT_MAX_CONCURRENT_STREAMS,
    "grpc.max_metadata_size": ffi.GH_OPT_MAX_HEADER_LIST_SIZE,
    "grpc.http2.initial_window_size": ffi.GH_OPT_INITIAL_WINDOW_SIZE,
}

_UNLIMITED = 2 ** 31 - 1


def _shut_down_and_free(handle, grace):
    """gh_server_shutdown(grace) — calls in flight get `grace` seconds, then are cancelled;
    it returns once every handler has returned — then the handle's close: the calls'
    handles (children, already closed by their handlers), then gh_server_free."""
    ptr = handle.acquire()
    if ptr is not None:
        try:
            ffi.gh_server_shutdown(ptr, grace)
        finally:
            handle.release()
    handle.close()


def _free_server(handle):
    """Finalizer of a server that was not stopped: stopped as by stop(0), then freed.

    Run by garbage collection and at interpreter exit. Garbage collection may run on any
    thread — one of the server's own handlers, or a thread a blocked handler waits for —
    so there the shutdown happens on a thread of its own (not a daemon: the interpreter's
    exit waits for it rather than finalizing under running handlers), and the collecting
    thread goes on, as with grpcio. At exit (the main thread has stopped) it runs at once."""
    if handle.closed:
        return
    if threading.main_thread().is_alive():
        threading.Thread(target=_shut_down_and_free, args=(handle, 0.0),
                         name="grpchelper-server-free").start()
    else:
        _shut_down_and_free(handle, 0.0)


class Server(compat.Server):
    """grpcio's grpc.Server on libgrpchelper. Create it with grpchelper.server()."""

    def __init__(self, max_workers, handlers, interceptors, options, maximum_concurrent_rpcs,
                 compression):
        self._lock = threading.Lock()
        self._state = _ServerState()
        self._state.interceptors = tuple(interceptors or ())
        self._generic = list(handlers or ())
        self._registered = {}
        self._started = False
        self._stop_event = None
        self._terminated = threading.Event()
        ptr = c_void_p()
        ffi.gh_server_new(byref(ptr))
        self._handle = handle = NativeHandle("server", ptr, ffi.gh_server_free, what="server")
        self._state.handle = handle
        self._free = weakref.finalize(self, _free_server, handle)
        with handle.use() as ptr:
            self._configure(ptr, max_workers, options, maximum_concurrent_rpcs, compression)

    def _configure(self, ptr, max_workers, options, maximum_concurrent_rpcs, compression):
        if max_workers is not None:
            ffi.gh_server_set_int(ptr, ffi.GH_OPT_MAX_WORKERS, int(max_workers))
        if maximum_concurrent_rpcs is not None:
            if maximum_concurrent_rpcs <= 0:
                raise ValueError("maximum_concurrent_rpcs must be positive")
            ffi.gh_server_set_int(ptr, ffi.GH_OPT_MAX_CONCURRENT_RPCS, int(maximum_concurrent_rpcs))
        if compression is not None:
            ffi.gh_server_set_int(ptr, ffi.GH_OPT_DEFAULT_COMPRESSION,
                                   compat.compression_value(compression))
        for key, value in options or ():
            if key in _SERVER_OPTIONS:
                v = int(value)
                ffi.gh_server_set_int(ptr, _SERVER_OPTIONS[key], _UNLIMITED if v < 0 else v)
            elif key == "grpc.max_send_message_length":
                self._state.max_send_message_length = None if int(value) < 0 else int(value)
            elif key == "grpc.default_compression_algorithm":
                ffi.gh_server_set_int(ptr, ffi.GH_OPT_DEFAULT_COMPRESSION, int(value))
            # Other grpcio options (channel args) have no meaning here and are ignored,
            # as grpcio ignores the ones it does not know.

    # -- configuration
    def add_generic_rpc_handlers(self, generic_rpc_handlers):
        with self._lock:
            self._check_not_started("add handlers to")
            for h in generic_rpc_handlers:
                if not hasattr(h, "service"):
                    raise AttributeError(
                        'Argument "generic_rpc_handlers" must contain objects with a "service" method')
                self._generic.append(h)

    def add_registered_method_handlers(self, service_name, method_handlers):
        with self._lock:
            self._check_not_started("add handlers to")
            for name, handler in method_handlers.items():
                self._registered.setdefault("/%s/%s" % (service_name, name), handler)

    def add_insecure_port(self, address):
        if isinstance(address, bytes):
            address = address.decode()
        with self._lock:
            self._check_not_started("add ports to")
            port = ctypes.c_int()
            try:
                with self._handle.use() as ptr:
                    ffi.gh_server_bind(ptr, _listen_address(address).encode(), byref(port))
            except ffi.GrpcHelperError as e:
                raise RuntimeError("Failed to bind to address %s; %s" % (address, e.message))
            return port.value if port.value else 1

    def add_secure_port(self, address, server_credentials):
        raise NotImplementedError("grpchelper serves plaintext HTTP/2 only (no TLS)")

    def _check_not_started(self, what):
        if self._started or self._stop_event is not None:
            raise RuntimeError("cannot %s a server that has started" % what)

    # -- lifecycle
    def start(self):
        with self._lock:
            if self._started:
                raise RuntimeError("Cannot start already-started server!")
            if self._stop_event is not None:
                raise RuntimeError("cannot start a stopped server")
            state = self._state
            paths = dict(self._registered)
            for g in self._generic:
                handlers = getattr(g, "_method_handlers", None)
                if isinstance(handlers, dict) and not state.opaque:
                    for path, h in handlers.items():
                        paths.setdefault(path, h)
                else:
                    state.opaque.append(g)
            state.registered = paths
            any_shape = bool(state.interceptors)  # an interceptor may swap handlers
            with self._handle.use() as ptr:
                for path, h in paths.items():
                    key = _register(_Dispatcher(state, path, h))
                    ffi.gh_server_register(ptr, path.encode(),
                                           ffi.GH_BIDI_STREAMING if any_shape else _cardinality(h),
                                           _handler_thunk, key, registry.free_user_data)
                if state.opaque or state.interceptors:
                    key = _register(_Dispatcher(state, None, None))
                    ffi.gh_server_register_fallback(ptr, _handler_thunk, key,
                                                    registry.free_user_data)
                ffi.gh_server_start(ptr)
            self._started = True

    def stop(self, grace):
        with self._lock:
            if self._stop_event is not None:
                return self._stop_event
            if not self._started:
                # As grpcio: stopping a server that has not started does nothing (it can
                # still be started); the event is already set.
                event = threading.Event()
                event.set()
                return event
            self._stop_event = event = threading.Event()
            self._state.stopping = True
            handle, free, terminated = self._handle, self._free, self._terminated
            keep_alive = [self]  # no finalizer may free the server while this thread stops it

        def shutdown():
            try:
                # Frees the native server and with it the dispatchers, on this thread (the
                # finalizer would hand it to another one).
                free.detach()
                _shut_down_and_free(handle, 0.0 if grace is None else max(0.0, float(grace)))
            finally:
                event.set()
                terminated.set()
                del keep_alive[:]

        # Not a daemon (as grpcio's grace thread): the interpreter's exit waits for the
        # shutdown instead of freeing the server under it.
        threading.Thread(target=shutdown, name="grpchelper-server-stop").start()
        return event

    def wait_for_termination(self, timeout=None):
        """Blocks until the server has stopped; True if `timeout` passed first."""
        return not self._terminated.wait(timeout)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop(None).wait()
        return False


def _listen_address(address):
    """grpcio listen addresses → the library's ("[::]:0", "0.0.0.0:0", "unix:...")."""
    if address.startswith("unix:") or address.startswith("["):
        return address
    host, sep, port = address.rpartition(":")
    if not sep:
        return address
    if host in ("", "*"):
        host = "[::]"
    elif ":" in host and not host.startswith("["):
        host = "[%s]" % host
    return "%s:%s" % (host, port)


def server(thread_pool=None, handlers=None, interceptors=None, options=(),
           maximum_concurrent_rpcs=None, compression=None):
    """A server like grpc.server(): `thread_pool` is a ThreadPoolExecutor (its max_workers
    sizes the library's worker pool; the executor itself is not used) or an int."""
    if isinstance(thread_pool, int):
        max_workers = thread_pool
    elif thread_pool is None:
        max_workers = None
    else:
        max_workers = getattr(thread_pool, "_max_workers", None)
    return Server(max_workers, handlers, interceptors, options, maximum_concurrent_rpcs,
                  compression)
