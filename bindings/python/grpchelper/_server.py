"""grpcio's server surface (grpc.server, grpc.ServicerContext) over gh_server.

Handlers run on the library's worker threads (as many as the thread pool's max_workers);
each C handler invocation enters Python through one ctypes thunk, which looks up the
method's dispatcher by an integer key (the C user_data) and never lets an exception
escape into C.
"""

import ctypes
import itertools
import logging
import threading
import time
import weakref
from ctypes import byref, c_size_t, c_void_p

from . import _ffi, _grpc, _metadata
from ._grpc import StatusCode

_LOGGER = logging.getLogger("grpchelper")

_OK = 0
_CANCELLED = 1
_UNKNOWN = 2
_RESOURCE_EXHAUSTED = 8
_UNIMPLEMENTED = 12
_INTERNAL = 13
_UNAVAILABLE = 14

# --- the C entry points -----------------------------------------------------------
# user_data keys → dispatchers. Entries are removed by the library's free_user_data
# when the native server is freed.
_registry = {}
_keys = itertools.count(1)


def _register(dispatcher):
    key = next(_keys)
    _registry[key] = dispatcher
    return key


@_ffi.GH_FREE_FN
def _free_user_data(key):
    try:
        _registry.pop(key, None)
    except BaseException:  # pragma: no cover - never let anything reach C
        pass


@_ffi.GH_HANDLER_FN
def _handler_thunk(call, key):
    try:
        dispatcher = _registry.get(key)
        if dispatcher is None:
            _ffi.gh_server_call_finish(call, _UNIMPLEMENTED, b"Method not found!", None, 0)
            return
        dispatcher.serve(call)
    except BaseException:  # never let an exception cross into C
        try:
            _LOGGER.exception("internal error serving a call")
            _ffi.gh_server_call_finish(call, _INTERNAL, b"internal error in grpchelper", None, 0)
        except BaseException:  # pragma: no cover
            pass


def _application_code(code):
    """The number of a status code set by the application (set_code, abort): as grpcio's
    _application_code, UNKNOWN for anything that is not a StatusCode."""
    if isinstance(code, StatusCode):
        return code.value[0]
    return _UNKNOWN


def _encode_details(details):
    if details is None:
        return None
    if isinstance(details, bytes):
        return details
    return str(details).encode("utf-8")


# --- ServicerContext ---------------------------------------------------------------

class _RpcErrorMarker(_grpc.RpcError):
    """Raised inside a handler when its call was cancelled (as grpcio raises grpc.RpcError)."""


_UNREAD = object()


class ServicerContext(_grpc.ServicerContext):
    """The handler's view of one call (grpcio's grpc.ServicerContext)."""

    def __init__(self, call, method, server_state):
        self._call = call
        self._method = method
        self._state = server_state
        self._lock = threading.RLock()
        self._code = None
        self._details = None
        self._trailing = None
        self._aborted = False
        self._finished = False
        self._initial_sent = False
        self._no_compress_next = False
        self._metadata = None
        self._callbacks = []
        self._watcher = None
        self._rpc_errors = []
        self._deadline = _UNREAD

    # -- call information
    def invocation_metadata(self):
        if self._metadata is None:
            ua = _ffi.gh_server_call_user_agent(self._call)
            prefix = (_metadata.Metadatum("user-agent", ua.decode("utf-8", "replace")),) if ua else ()
            self._metadata = _metadata.from_native(
                _ffi.gh_server_call_request_metadata(self._call), prefix)
        return self._metadata

    def peer(self):
        p = _ffi.gh_server_call_peer(self._call)
        return p.decode("utf-8", "replace") if p else ""

    def peer_identities(self):
        return None

    def peer_identity_key(self):
        return None

    def auth_context(self):
        return {}

    # The native call is valid only until the handler returns, while other threads may
    # still hold the context: these two read it under the lock that _finish takes
    # before the call ends, and not at all once it finished.
    def time_remaining(self):
        with self._lock:
            if self._deadline is _UNREAD:
                r = _ffi.gh_server_call_time_remaining(self._call) if not self._finished else 0.0
                self._deadline = None if r == float("inf") else time.monotonic() + r
        if self._deadline is None:
            return None
        return max(self._deadline - time.monotonic(), 0.0)

    def is_active(self):
        with self._lock:
            if self._finished:
                return False
            return not _ffi.gh_server_call_is_cancelled(self._call)

    # -- call control
    def cancel(self):
        self._finish(_CANCELLED, "Cancelled")

    def add_callback(self, callback):
        with self._lock:
            if self._callbacks is None:
                return False
            self._callbacks.append(callback)
            if self._watcher is None and not self._finished:
                # Wakes when the call ends while the handler is still busy (client
                # cancel, deadline, shutdown); joined before the handler returns to C.
                self._watcher = threading.Thread(target=self._watch, name="grpchelper-rpc-done",
                                                 daemon=True)
                self._watcher.start()
            return True

    def _watch(self):
        try:
            _ffi.gh_server_call_wait_done(self._call, -1.0)
        except Exception:  # pragma: no cover
            pass
        self._run_callbacks()

    def _run_callbacks(self):
        with self._lock:
            callbacks, self._callbacks = self._callbacks, None
        for cb in callbacks or ():
            try:
                cb()
            except Exception:
                _LOGGER.exception("Exception calling callback!")

    def disable_next_message_compression(self):
        self._no_compress_next = True

    def set_compression(self, compression):
        rc = _ffi.gh_server_call_set_compression(self._call, _grpc.compression_value(compression))
        if rc < 0 and rc != _ffi.GH_ERR_INVALID_STATE:
            _ffi.raise_for(rc)

    def send_initial_metadata(self, initial_metadata):
        with self._lock:
            if _ffi.gh_server_call_is_cancelled(self._call):
                raise self._rpc_error()
            if self._initial_sent or self._finished:
                raise ValueError("Initial metadata no longer allowed!")
            try:
                native = _metadata.NativeMetadata(initial_metadata or ())
            except _metadata.MetadataError as e:
                # As grpcio: no exception in the handler; the call ends INTERNAL.
                _LOGGER.error("invalid initial metadata: %s", e)
                self._initial_sent = True
                self._finish(_INTERNAL, "Invalid metadata")
                return
            with native as md:
                rc = _ffi.gh_server_call_send_initial_metadata(self._call, md)
            if rc == _ffi.GH_ERR_CLOSED:
                raise self._rpc_error()
            _ffi.raise_for(rc)
            self._initial_sent = True

    def set_trailing_metadata(self, trailing_metadata):
        trailing = tuple(trailing_metadata or ())  # once: it may be a generator
        # Checked now, so the log names the bad key where it is set; as in grpcio the
        # handler gets no exception and the call ends INTERNAL "Invalid metadata".
        try:
            with _metadata.NativeMetadata(trailing):
                pass
        except _metadata.MetadataError as e:
            _LOGGER.error("invalid trailing metadata: %s", e)
        with self._lock:
            self._trailing = trailing

    def trailing_metadata(self):
        return self._trailing

    def abort(self, code, details):
        if code == StatusCode.OK:
            _LOGGER.error("abort() called with StatusCode.OK; returning UNKNOWN")
            code = StatusCode.UNKNOWN
            details = ""
        with self._lock:
            self._code = code
            self._details = details
            self._aborted = True
        raise Exception()  # noqa: TRY002 - grpcio raises a bare Exception too

    def abort_with_status(self, status):
        with self._lock:
            self._trailing = tuple(status.trailing_metadata or ())
        self.abort(status.code, status.details)

    def set_code(self, code):
        with self._lock:
            self._code = code

    def code(self):
        return self._code

    def set_details(self, details):
        with self._lock:
            self._details = details

    def details(self):
        return _encode_details(self._details)

    # -- internals
    def _rpc_error(self):
        e = _RpcErrorMarker()
        self._rpc_errors.append(e)
        return e

    def _send(self, data):
        """Sends one serialized response; False once the call can take no more."""
        limit = self._state.max_send_message_length
        if limit is not None and 0 <= limit < len(data):
            self._abort(_RESOURCE_EXHAUSTED,
                        "Sent message larger than max (%d vs. %d)" % (len(data), limit))
            return False
        flags = 0
        if self._no_compress_next:
            flags = _ffi.GH_WRITE_NO_COMPRESS
            self._no_compress_next = False
        rc = _ffi.gh_server_call_send(self._call, data, len(data), flags)
        if rc < 0:
            if rc in (_ffi.GH_ERR_CLOSED, _ffi.GH_ERR_INVALID_STATE):
                return False
            _ffi.raise_for(rc)
        self._initial_sent = True
        return True

    def _abort(self, code, details):
        """Ends the call with an error; the handler's own set_code/set_details win."""
        effective = _application_code(self._code) if self._code is not None else code
        if effective == _OK:
            effective = code
        self._finish(effective, self._details if self._details is not None else details)

    def _finish(self, code=None, details=None):
        with self._lock:
            if self._finished:
                return
            self._finished = True
            trailing = self._trailing
        if code is None:
            code = _application_code(self._code) if self._code is not None else _OK
            details = self._details
        try:
            if trailing:
                with _metadata.NativeMetadata(trailing) as md:
                    _ffi.gh_server_call_set_trailing_metadata(self._call, md)
        except Exception as e:
            _LOGGER.error("invalid trailing metadata: %s", e)
            code, details = _INTERNAL, "Invalid metadata"
        d = _encode_details(details)
        rc = _ffi.gh_server_call_finish(self._call, code, d, None, 0)
        if rc < 0 and rc != _ffi.GH_ERR_INVALID_STATE:
            # The call must end here: add_callback's watcher (joined by _end) waits for it.
            _LOGGER.error("finishing the call failed (%d): %s", rc, _ffi.last_error())
            _ffi.gh_server_call_finish(self._call, _UNKNOWN, None, None, 0)

    def _end(self):
        """After the handler: make sure the call is finished, then run the callbacks."""
        self._finish()
        with self._lock:
            watcher = self._watcher
        if watcher is not None:
            watcher.join()
        else:
            self._run_callbacks()


class _RequestIterator(object):
    """The request stream of a call, as grpcio hands it to stream-request handlers."""

    def __init__(self, context, deserializer):
        self._context = context
        self._deserializer = deserializer
        self._data = c_void_p()
        self._size = c_size_t()

    def __iter__(self):
        return self

    def __next__(self):
        ctx = self._context
        rc = _ffi.gh_server_call_read(ctx._call, byref(self._data), byref(self._size))
        if rc == 1:
            raw = ctypes.string_at(self._data.value, self._size.value) if self._size.value else b""
            return _deserialize(ctx, raw, self._deserializer)
        if rc == 0:
            raise StopIteration()
        raise ctx._rpc_error()

    next = __next__


class _DeserializeError(Exception):
    pass


def _deserialize(ctx, raw, deserializer):
    if deserializer is None:
        return raw
    try:
        return deserializer(raw)
    except Exception:
        _LOGGER.exception("Exception deserializing request!")
        ctx._abort(_INTERNAL, "Exception deserializing request!")
        raise _DeserializeError()


def _serialize(response, serializer):
    return _grpc.serialize(serializer, response, "Failed to serialize response!")


# --- serving one call ---------------------------------------------------------------

class _HandlerCallDetails(
        _grpc.HandlerCallDetails if _grpc.HAVE_GRPCIO else object):
    __slots__ = ("method", "invocation_metadata")

    def __init__(self, method, invocation_metadata):
        self.method = method
        self.invocation_metadata = invocation_metadata


class _ServerState(object):
    """What the dispatchers share: handlers, interceptors, limits, the stopping flag."""

    def __init__(self):
        self.registered = {}        # path -> method handler (resolved at start)
        self.opaque = []            # generic handlers that cannot be enumerated, in order
        self.interceptors = ()
        self.max_send_message_length = None
        self.stopping = False

    def resolve(self, method, context):
        details = _HandlerCallDetails(method, context.invocation_metadata())

        def query(d):
            h = self.registered.get(d.method)
            if h is not None:
                return h
            for g in self.opaque:
                h = g.service(d)
                if h is not None:
                    return h
            return None

        interceptors = self.interceptors

        def continuation(index):
            if index == len(interceptors):
                return query
            nxt = continuation(index + 1)
            return lambda d: interceptors[index].intercept_service(nxt, d)

        return continuation(0)(details)


class _Dispatcher(object):
    """Serves the calls of one registered path (handler known) or of the fallback."""

    __slots__ = ("state", "path", "handler")

    def __init__(self, state, path, handler):
        self.state = state
        self.path = path
        self.handler = handler

    def serve(self, call):
        state = self.state
        if state.stopping:
            _ffi.gh_server_call_finish(call, _UNAVAILABLE, b"server is shutting down", None, 0)
            return
        method = self.path
        if method is None:
            method = _ffi.gh_server_call_method(call).decode("utf-8", "replace")
        ctx = ServicerContext(call, method, state)
        try:
            handler = self.handler
            if handler is None or state.interceptors:
                try:
                    handler = state.resolve(method, ctx)
                except Exception:
                    _LOGGER.exception("Exception servicing handler")
                    ctx._finish(_UNKNOWN, "Error in service handler!")
                    return
                if handler is None:
                    ctx._finish(_UNIMPLEMENTED, "Method not found!")
                    return
            _serve(ctx, handler)
        finally:
            ctx._end()


def _call_behavior(ctx, behavior, argument):
    try:
        return behavior(argument, ctx), True
    except Exception as e:
        _behavior_failed(ctx, e, "Exception calling application: {}")
        return None, False


def _behavior_failed(ctx, exception, template):
    if ctx._aborted:
        ctx._abort(_UNKNOWN, "RPC Aborted")
    elif isinstance(exception, _DeserializeError):
        pass  # already answered INTERNAL
    elif exception in ctx._rpc_errors:
        ctx._finish(_CANCELLED, "Cancelled")
    else:
        try:
            details = template.format(exception)
        except Exception:
            details = "Calling application raised unprintable Exception!"
        _LOGGER.exception(details)
        ctx._abort(_UNKNOWN, details)


def _unary_request(ctx, deserializer):
    data = c_void_p()
    size = c_size_t()
    rc = _ffi.gh_server_call_read(ctx._call, byref(data), byref(size))
    if rc == 1:
        raw = ctypes.string_at(data.value, size.value) if size.value else b""
        try:
            return _deserialize(ctx, raw, deserializer), True
        except _DeserializeError:
            return None, False
    if rc == 0:
        ctx._abort(_UNIMPLEMENTED, '"{}" requires exactly one request message.'.format(ctx._method))
    return None, False


def _send_single(ctx, response, serializer):
    if ctx._code is not None and _application_code(ctx._code) != _OK:
        ctx._finish()
        return
    data = _serialize(response, serializer)
    if data is None:
        ctx._abort(_INTERNAL, "Failed to serialize response!")
        return
    if ctx._send(data):
        ctx._finish()


def _send_stream(ctx, iterator, serializer):
    while True:
        try:
            response = next(iterator)
        except StopIteration:
            break
        except Exception as e:
            _behavior_failed(ctx, e, "Exception iterating responses: {}")
            return
        if not ctx.is_active():
            return
        data = _serialize(response, serializer)
        if data is None:
            ctx._abort(_INTERNAL, "Failed to serialize response!")
            return
        if not ctx._send(data):
            return
    ctx._finish()


def _serve(ctx, handler):
    deser = handler.request_deserializer
    ser = handler.response_serializer
    if handler.request_streaming:
        argument, ok = _RequestIterator(ctx, deser), True
    else:
        argument, ok = _unary_request(ctx, deser)
    if not ok:
        return
    if handler.response_streaming:
        behavior = handler.stream_stream if handler.request_streaming else handler.unary_stream
        iterator, ok = _call_behavior(ctx, behavior, argument)
        if ok:
            _send_stream(ctx, iterator, ser)
    else:
        behavior = handler.stream_unary if handler.request_streaming else handler.unary_unary
        response, ok = _call_behavior(ctx, behavior, argument)
        if ok:
            _send_single(ctx, response, ser)


def _cardinality(handler):
    if handler.request_streaming:
        return _ffi.GH_BIDI_STREAMING if handler.response_streaming else _ffi.GH_CLIENT_STREAMING
    return _ffi.GH_SERVER_STREAMING if handler.response_streaming else _ffi.GH_UNARY


# --- the server ---------------------------------------------------------------------

_SERVER_OPTIONS = {
    "grpc.max_receive_message_length": _ffi.GH_OPT_MAX_RECV_MESSAGE_SIZE,
    "grpc.max_concurrent_streams": _ffi.GH_OPT_MAX_CONCURRENT_STREAMS,
    "grpc.max_metadata_size": _ffi.GH_OPT_MAX_HEADER_LIST_SIZE,
    "grpc.http2.initial_window_size": _ffi.GH_OPT_INITIAL_WINDOW_SIZE,
}

_UNLIMITED = 2 ** 31 - 1


def _free_server(ptr):
    """Finalizer: frees the native server (cancelling calls in flight, then waiting for
    every handler to return).

    Called by the stopping thread, by garbage collection of a server that was not stopped,
    and at interpreter exit. Garbage collection may run on any thread — one of the
    server's own handlers, or a thread a blocked handler waits for — so there the wait
    happens on a thread of its own (not a daemon: the interpreter's exit waits for it
    rather than finalizing under running handlers), and the collecting thread goes on,
    as with grpcio. At exit (the main thread has stopped) it frees at once."""
    def free():
        _ffi.free_handle("server", _ffi.gh_server_free, ptr)
    if threading.main_thread().is_alive():
        threading.Thread(target=free, name="grpchelper-server-free").start()
    else:
        free()


class Server(_grpc.Server):
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
        _ffi.gh_server_new(byref(ptr))
        _ffi.handle_created("server")
        self._ptr = ptr
        self._free = weakref.finalize(self, _free_server, ptr)
        if max_workers is not None:
            _ffi.gh_server_set_int(ptr, _ffi.GH_OPT_MAX_WORKERS, int(max_workers))
        if maximum_concurrent_rpcs is not None:
            if maximum_concurrent_rpcs <= 0:
                raise ValueError("maximum_concurrent_rpcs must be positive")
            _ffi.gh_server_set_int(ptr, _ffi.GH_OPT_MAX_CONCURRENT_RPCS, int(maximum_concurrent_rpcs))
        if compression is not None:
            _ffi.gh_server_set_int(ptr, _ffi.GH_OPT_DEFAULT_COMPRESSION,
                                   _grpc.compression_value(compression))
        for key, value in options or ():
            if key in _SERVER_OPTIONS:
                v = int(value)
                _ffi.gh_server_set_int(ptr, _SERVER_OPTIONS[key], _UNLIMITED if v < 0 else v)
            elif key == "grpc.max_send_message_length":
                self._state.max_send_message_length = None if int(value) < 0 else int(value)
            elif key == "grpc.default_compression_algorithm":
                _ffi.gh_server_set_int(ptr, _ffi.GH_OPT_DEFAULT_COMPRESSION, int(value))
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
                _ffi.gh_server_bind(self._ptr, _listen_address(address).encode(), byref(port))
            except _ffi.GrpcHelperError as e:
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
            for path, h in paths.items():
                key = _register(_Dispatcher(state, path, h))
                _ffi.gh_server_register(self._ptr, path.encode(),
                                        _ffi.GH_BIDI_STREAMING if any_shape else _cardinality(h),
                                        _handler_thunk, key, _free_user_data)
            if state.opaque or state.interceptors:
                key = _register(_Dispatcher(state, None, None))
                _ffi.gh_server_register_fallback(self._ptr, _handler_thunk, key, _free_user_data)
            _ffi.gh_server_start(self._ptr)
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
            ptr, free, terminated = self._ptr, self._free, self._terminated
            keep_alive = [self]  # no finalizer may free the server while this thread stops it

        def shutdown():
            try:
                _ffi.gh_server_shutdown(ptr, 0.0 if grace is None else max(0.0, float(grace)))
            finally:
                # Frees the native server and with it the dispatchers, on this thread
                # (the finalizer would hand it to another one).
                if free.detach() is not None:
                    _ffi.free_handle("server", _ffi.gh_server_free, ptr)
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
