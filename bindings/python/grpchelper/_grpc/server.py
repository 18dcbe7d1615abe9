"""grpcio's server surface (grpc.server, grpc.Server) over gh_server.

Handlers run on the library's worker threads (as many as the thread pool's max_workers),
entering Python through dispatch.py.

Stopping is the library's: stop() calls gh_server_begin_shutdown, which returns once the
server takes no new calls (the library answers them UNAVAILABLE) and runs the grace on a
thread of its own, whose on_stopped sets stop()'s event. The native server is freed later,
never on that thread (gh_server_free waits for it): by wait_for_termination or __exit__
once stopped, else by the finaliser when the server is dropped (see _free_server), which
on a live interpreter waits for nothing (gh_server_release: the library frees the server
on a thread of its own). The binding starts no thread for any of it.
"""

import ctypes
import threading
import weakref
from ctypes import byref, c_void_p

from .._native import ffi
from .._native.handle import NativeHandle
from . import compat, health, reflection
from .._native.callbacks import registry
from .dispatch import _Dispatcher, _ServerState, _cardinality, _handler_thunk, _register

# grpcio server arguments the library honours (README: "Options"); -1 is "no limit".
_SERVER_OPTIONS = {
    "grpc.max_receive_message_length": ffi.GH_OPT_MAX_RECV_MESSAGE_SIZE,
    "grpc.max_send_message_length": ffi.GH_OPT_MAX_SEND_MESSAGE_SIZE,
    "grpc.max_concurrent_streams": ffi.GH_OPT_MAX_CONCURRENT_STREAMS,
    "grpc.max_metadata_size": ffi.GH_OPT_MAX_HEADER_LIST_SIZE,
    "grpc.http2.initial_window_size": ffi.GH_OPT_INITIAL_WINDOW_SIZE,
    "grpc.server_handshake_timeout_ms": ffi.GH_OPT_HANDSHAKE_TIMEOUT_MS,
    "grpc.max_allowed_incoming_connections": ffi.GH_OPT_MAX_CONNECTIONS,
    # the library's own (no grpcio equivalent): bytes of incomplete request messages held
    "grpchelper.max_partial_message_bytes_per_connection": ffi.GH_OPT_MAX_PARTIAL_BYTES_PER_CONNECTION,
    "grpchelper.max_partial_message_bytes": ffi.GH_OPT_MAX_PARTIAL_BYTES,
    # workers for blocking handlers: one connection's share, the wait for a worker, the
    # workers in reserve for connections holding none
    "grpchelper.max_workers_per_connection": ffi.GH_OPT_MAX_WORKERS_PER_CONNECTION,
    "grpchelper.worker_wait_timeout_ms": ffi.GH_OPT_WORKER_WAIT_TIMEOUT_MS,
    "grpchelper.reserved_workers": ffi.GH_OPT_RESERVED_WORKERS,
    "grpc.keepalive_time_ms": ffi.GH_OPT_KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": ffi.GH_OPT_KEEPALIVE_TIMEOUT_MS,
    "grpc.http2.min_recv_ping_interval_without_data_ms": ffi.GH_OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS,
    "grpc.http2.max_ping_strikes": ffi.GH_OPT_MAX_PING_STRIKES,
    "grpc.max_connection_idle_ms": ffi.GH_OPT_MAX_CONNECTION_IDLE_MS,
    "grpc.max_connection_age_ms": ffi.GH_OPT_MAX_CONNECTION_AGE_MS,
    "grpc.max_connection_age_grace_ms": ffi.GH_OPT_MAX_CONNECTION_AGE_GRACE_MS,
}

_UNLIMITED = 2 ** 31 - 1


# A stop() in progress is a registry entry of this kind (the user_data of
# gh_server_begin_shutdown), released by its on_stopped.
STOP_KIND = "server-stop"


class _Lifecycle(object):
    """What the finaliser needs to know of the server's stop: whether on_stopped ran, and
    on which thread (the library's shutdown thread, which gh_server_free waits for); and
    how the handle frees the native server (`free`, the handle's free function):
    gh_server_free, or gh_server_release once the finaliser gave it up (`releasing`),
    with the registry keys of its dispatchers (`keys`, released by the library when it
    has freed the server). The handle holds `free`, the server's state the handle, and
    the dispatchers' entries the state; the interpreter's exit waits until the library
    has released those entries (registry.await_at_exit)."""

    __slots__ = ("stopped", "stop_thread", "releasing", "keys")

    def __init__(self):
        self.stopped = False
        self.stop_thread = None
        self.releasing = False
        self.keys = []

    def free(self, ptr):
        if self.releasing:
            ffi.gh_server_release(ptr)
        else:
            ffi.gh_server_free(ptr)


class _Stop(object):
    """One stop() in flight: the registry entry its on_stopped finds. It keeps the
    server alive until then (the grace goes on when the caller drops the server, as in
    grpcio), then sets the stop() event and the termination event."""

    __slots__ = ("server", "life", "event", "terminated")

    def __init__(self, server, life, event, terminated):
        self.server = server
        self.life = life
        self.event = event
        self.terminated = terminated

    def stopped(self):
        life = self.life
        life.stop_thread = threading.get_ident()
        life.stopped = True
        # May drop the last reference and so finalise the server here, on the library's
        # shutdown thread: _free_server sees stop_thread and gives it up with
        # gh_server_release (gh_server_free would wait for this thread).
        # Before the events: a caller that waits for them and then drops the server frees
        # it itself.
        self.server = None
        self.event.set()
        self.terminated.set()


@registry.entry_point(ffi.GH_SERVER_STOPPED_FN)
def _stopped_thunk(key):
    stop = registry.release(key)
    if stop is not None:
        stop.stopped()


def _shut_down_and_free(handle, grace):
    """gh_server_shutdown(grace) — calls in flight get `grace` seconds, then are cancelled;
    it returns once every handler has returned (a shutdown already under way: once it has
    ended, its own grace unchanged) — then the handle's close: the calls' handles
    (children, already closed by their handlers), then gh_server_free."""
    ptr = handle.acquire()
    if ptr is not None:
        try:
            ffi.gh_server_shutdown(ptr, grace)
        finally:
            handle.release()
    handle.close()


def _free_server(handle, life):
    """Frees the native server: the finaliser of Server (garbage collection, interpreter
    exit), also called by wait_for_termination and __exit__ once the server has stopped.

    gh_server_free shuts a running server down (as stop(0)) and waits for its handlers and
    for the shutdown thread of gh_server_begin_shutdown, on_stopped included. So:
    - stopped (on_stopped ran), on any thread but that shutdown thread: freed here, at once;
    - on the shutdown thread (its on_stopped dropped the server's last reference), freeing
      would wait for itself; and a server not stopped is not freed where the collection
      happens either: that may be one of its own handlers, or a thread a blocked handler
      waits for. Both wait for nothing: the handle closes the deferred way and its last
      use gives the server up with gh_server_release, which returns at once (a running
      server stopped as by stop(0), no new calls); the calls' handles stay open until
      their handlers return (the library keeps the calls until then, as gh_server_shutdown
      did); the library frees the server on a thread of its own once it has stopped, and
      the collecting thread goes on, as with grpcio. The interpreter's exit waits for
      that (_wait_for_releases);
    - at interpreter exit (the main thread has stopped), at once: a running server is
      stopped as by stop(0), a stop under way is waited for (its grace unchanged) — except
      on the shutdown thread, where the server has stopped and the process ends with it."""
    if handle.closed:
        return
    on_stop_thread = life.stop_thread == threading.get_ident()
    if life.stopped and not on_stop_thread:
        handle.close()
    elif threading.main_thread().is_alive():
        life.releasing = True
        registry.await_at_exit(life.keys)       # the exit waits for the free
        handle.close(False, children=False)
    elif not on_stop_thread:
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
        self._life = life = _Lifecycle()
        ptr = c_void_p()
        ffi.gh_server_new(byref(ptr))
        self._handle = handle = NativeHandle("server", ptr, life.free, what="server")
        self._state.handle = handle
        self._free = weakref.finalize(self, _free_server, handle, life)
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
        reuse_port = 1              # grpcio's default on Linux: grpc.so_reuseport on
        for key, value in options or ():
            if key in _SERVER_OPTIONS:
                v = int(value)
                ffi.gh_server_set_int(ptr, _SERVER_OPTIONS[key], _UNLIMITED if v < 0 else v)
            elif key == "grpc.per_message_decompression":
                ffi.gh_server_set_int(ptr, ffi.GH_OPT_PER_MESSAGE_DECOMPRESSION, 1 if int(value) else 0)
            elif key == "grpc.keepalive_permit_without_calls":
                ffi.gh_server_set_int(ptr, ffi.GH_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1 if int(value) else 0)
            elif key == "grpc.so_reuseport":
                reuse_port = 1 if int(value) else 0
            elif key == "grpc.default_compression_algorithm":
                ffi.gh_server_set_int(ptr, ffi.GH_OPT_DEFAULT_COMPRESSION, int(value))
            # Other grpcio options (channel args) have no meaning here and are ignored,
            # as grpcio ignores the ones it does not know.
        ffi.gh_server_set_int(ptr, ffi.GH_OPT_SO_REUSEPORT, reuse_port)

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

    # -- health checking (grpc.health.v1.Health, served by the library)
    def enable_health(self):
        """Serves the standard health service grpc.health.v1.Health (Check and Watch) on
        this server, in the library (no Python thread per Watch stream). Statuses: the one
        set with set_health_status; else "" (the server as a whole) and every service of
        the handlers added before start() (generated add_*_to_server, registered or
        generic handlers with named methods) are SERVING; any other service is unknown
        (Check: NOT_FOUND; Watch: SERVICE_UNKNOWN). From stop() on every known service is
        NOT_SERVING and Watch streams end. Before start(), once. (grpcio-health-checking's
        own HealthServicer also runs on this server, as any generated servicer does.)"""
        with self._lock:
            self._check_not_started("enable health checking on")
            with self._handle.use() as ptr:
                ffi.gh_server_enable_health(ptr)

    def set_health_status(self, service, status):
        """Sets `service`'s status ("": the server as a whole): HealthStatus.SERVING,
        NOT_SERVING or UNKNOWN (or health_pb2's values); its Watch streams get it. Ignored
        once stop() began. Any thread."""
        with self._handle.use() as ptr:
            ffi.gh_server_set_health(ptr, health.service_name(service), health.settable(status))

    def clear_health_status(self, service):
        """Forgets the status set for `service` (SERVING again if it is "" or served)."""
        with self._handle.use() as ptr:
            ffi.gh_server_clear_health(ptr, health.service_name(service))

    def health_status(self, service):
        """`service`'s status (a HealthStatus) as Check answers it; None when unknown."""
        with self._handle.use() as ptr:
            return health.get(ffi.gh_server_get_health, ptr, service)

    # -- server reflection (grpc.reflection.v1 and v1alpha, served by the library)
    def enable_reflection(self):
        """Serves the standard reflection services (grpc.reflection.v1 and v1alpha: what
        grpcurl, grpc_cli and grpcio-reflection's client use) on this server, in the
        library. At start() it describes every service of the handlers added (generated
        add_*_to_server, generic handlers with named methods) whose `_pb2` module was
        imported (protobuf's default descriptor pool), with the files they import; more
        with add_reflection_file. Before start(), once. (grpcio-reflection's own
        `enable_server_reflection` also works on this server.)"""
        with self._lock:
            self._check_not_started("enable reflection on")
            with self._handle.use() as ptr:
                ffi.gh_server_enable_reflection(ptr)
            self._state.reflection = True

    def add_reflection_file(self, file_descriptor):
        """Describes a .proto file for reflection: a protobuf FileDescriptor (a `_pb2`
        module's DESCRIPTOR), with the files it imports; or serialized
        FileDescriptorProto bytes (add what it imports too). Any time after
        enable_reflection()."""
        files = [bytes(file_descriptor)] if isinstance(file_descriptor, (bytes, bytearray)) \
            else reflection.file_and_dependencies(file_descriptor)
        with self._handle.use() as ptr:
            for data in files:
                ffi.gh_server_add_file_descriptor(ptr, data, len(data))

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
            if state.reflection:
                described = set()
                for path in paths:
                    name = reflection.service_of_path(path)
                    if name and name not in described:
                        described.add(name)
                        with self._handle.use() as ptr:
                            for data in reflection.files_of_service(name):
                                ffi.gh_server_add_file_descriptor(ptr, data, len(data))
            any_shape = bool(state.interceptors)  # an interceptor may swap handlers
            with self._handle.use() as ptr:
                keys = self._life.keys
                for path, h in paths.items():
                    key = _register(_Dispatcher(state, path, h))
                    keys.append(key)
                    ffi.gh_server_register(ptr, path.encode(),
                                           ffi.GH_BIDI_STREAMING if any_shape else _cardinality(h),
                                           _handler_thunk, key, registry.free_user_data)
                # Every other path: the generic handlers and interceptors, else grpcio's
                # UNIMPLEMENTED "Method not found!" (the library's own answer names the path)
                key = _register(_Dispatcher(state, None, None))
                keys.append(key)
                ffi.gh_server_register_fallback(ptr, _handler_thunk, key, registry.free_user_data)
                ffi.gh_server_start(ptr)
            self._started = True

    def stop(self, grace):
        """grpcio's stop: the server takes no new call once it returns (the library answers
        them UNAVAILABLE), calls in flight get `grace` seconds (None: none) and are then
        cancelled; the event is set once every handler has returned. No thread of its own:
        gh_server_begin_shutdown runs the shutdown on a library thread and calls
        on_stopped (_stopped_thunk) at its end."""
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
            key = registry.add(STOP_KIND, _Stop(self, self._life, event, self._terminated))
            try:
                with self._handle.use() as ptr:
                    ffi.gh_server_begin_shutdown(
                        ptr, 0.0 if grace is None else max(0.0, float(grace)),
                        _stopped_thunk, key)
            except BaseException:  # pragma: no cover - the library refused: not stopping
                registry.release(key)
                self._stop_event = None
                raise
            return event

    def wait_for_termination(self, timeout=None):
        """Blocks until the server has stopped; True if `timeout` passed first. Once it
        has stopped, the native server is freed (on this thread: not the library's shutdown
        thread, which gh_server_free would wait for)."""
        if not self._terminated.wait(timeout):
            return True
        self._free()
        return False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop(None).wait()
        if self._terminated.is_set():  # it ran and stopped: free it now
            self._free()
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
