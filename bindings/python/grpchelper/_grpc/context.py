"""grpcio's grpc.ServicerContext over a gh_server_call: the handler's view of one call, and
the request stream of stream-request handlers."""

import ctypes
import logging
import threading
import time
from ctypes import byref, c_size_t, c_void_p

from .._native import ffi
from . import compat, status
from . import metadata as _metadata
from .status import StatusCode

_LOGGER = logging.getLogger("grpchelper")


def _encode_details(details):
    if details is None:
        return None
    if isinstance(details, bytes):
        return details
    return str(details).encode("utf-8")


class _RpcErrorMarker(compat.RpcError):
    """Raised inside a handler when its call was cancelled (as grpcio raises grpc.RpcError)."""


_UNREAD = object()


class ServicerContext(compat.ServicerContext):
    """The handler's view of one call (grpcio's grpc.ServicerContext)."""

    def __init__(self, call, method, server_state):
        # The call is the library's, valid until the handler returns. The handler's own
        # thread uses it directly (_send, _is_active_here, _finish(here=True), the request
        # read). Other uses go through _acquire: a borrowed handle, a child of the
        # server's, made on the first such use (most calls never need it), held for the
        # handler until _end, which closes it (waiting for uses on other threads). Closing
        # the server closes it first without waiting (the library's shutdown waits for
        # the handlers). Raises ValueError if the server's handle is closed.
        if server_state.handle.closed:
            raise ValueError("server is closed")
        self._handle = None
        self._ended = False
        self._ptr = call
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

    def _acquire(self):
        """The call for one use from any thread (ended by self._handle.release()); None
        once the handler has returned or the server is closed."""
        handle = self._handle
        if handle is None:
            with self._lock:
                handle = self._handle
                if handle is None:
                    if self._ended:
                        return None
                    handle = self._state.handle.borrowed_child(self._ptr, what="call",
                                                               deferred=True)
                    if handle is None:        # the server is closed
                        return None
                    self._handle = handle     # its first use is the handler's, until _end
        return handle.acquire()

    def _closed_by_server(self):
        """Whether the server's close has closed the call (the library cancels it)."""
        handle = self._handle
        return self._state.handle.closed or (handle is not None and handle.closed)

    # -- call information
    def invocation_metadata(self):
        if self._metadata is None:
            call = self._acquire()
            if call is None:                  # the handler has returned
                return ()
            try:
                ua = ffi.gh_server_call_user_agent(call)
                prefix = ((_metadata.Metadatum("user-agent", ua.decode("utf-8", "replace")),)
                          if ua else ())
                self._metadata = _metadata.from_native(
                    ffi.gh_server_call_request_metadata(call), prefix)
            finally:
                self._handle.release()
        return self._metadata

    def peer(self):
        call = self._acquire()
        if call is None:
            return ""
        try:
            p = ffi.gh_server_call_peer(call)
        finally:
            self._handle.release()
        return p.decode("utf-8", "replace") if p else ""

    def peer_identities(self):
        return None

    def peer_identity_key(self):
        return None

    def auth_context(self):
        return {}

    # Other threads may hold the context after the handler returned: once the call has
    # finished, these two do not read it.
    def time_remaining(self):
        with self._lock:
            if self._deadline is _UNREAD:
                r = 0.0
                call = None if self._finished else self._acquire()
                if call is not None:
                    try:
                        r = ffi.gh_server_call_time_remaining(call)
                    finally:
                        self._handle.release()
                self._deadline = None if r == float("inf") else time.monotonic() + r
        if self._deadline is None:
            return None
        return max(self._deadline - time.monotonic(), 0.0)

    def is_active(self):
        with self._lock:
            if self._finished:
                return False
            call = self._acquire()
            if call is None:
                return False
            try:
                return not ffi.gh_server_call_is_cancelled(call)
            finally:
                self._handle.release()

    def _is_active_here(self):
        """is_active() on the handler's thread."""
        with self._lock:
            return not self._finished and not ffi.gh_server_call_is_cancelled(self._ptr)

    # -- call control
    def cancel(self):
        self._finish(status.CANCELLED, "Cancelled")

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
        call = self._acquire()
        if call is not None:
            try:
                ffi.gh_server_call_wait_done(call, -1.0)
            except Exception:  # pragma: no cover
                pass
            finally:
                self._handle.release()
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
        call = self._acquire()
        if call is None:                      # the call is over: nothing to compress
            return
        try:
            rc = ffi.gh_server_call_set_compression(call, compat.compression_value(compression))
        finally:
            self._handle.release()
        if rc < 0 and rc != ffi.GH_ERR_INVALID_STATE:
            ffi.raise_for(rc)

    def send_initial_metadata(self, initial_metadata):
        with self._lock:
            call = self._acquire()
            if call is None:
                raise self._rpc_error()
            try:
                self._send_initial_metadata(call, initial_metadata)
            finally:
                self._handle.release()

    def _send_initial_metadata(self, call, initial_metadata):
        if ffi.gh_server_call_is_cancelled(call):
            raise self._rpc_error()
        if self._initial_sent or self._finished:
            raise ValueError("Initial metadata no longer allowed!")
        try:
            native = _metadata.NativeMetadata(initial_metadata or ())
        except _metadata.MetadataError as e:
            # As grpcio: no exception in the handler; the call ends INTERNAL.
            _LOGGER.error("invalid initial metadata: %s", e)
            self._initial_sent = True
            self._finish(status.INTERNAL, "Invalid metadata")
            return
        with native as md:
            rc = ffi.gh_server_call_send_initial_metadata(call, md)
        if rc == ffi.GH_ERR_CLOSED:
            raise self._rpc_error()
        ffi.raise_for(rc)
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
        """Sends one serialized response; False once the call can take no more. On the
        handler's thread only."""
        flags = 0
        if self._no_compress_next:
            flags = ffi.GH_WRITE_NO_COMPRESS
            self._no_compress_next = False
        rc = ffi.gh_server_call_send(self._ptr, data, len(data), flags)
        if rc < 0:
            if rc in (ffi.GH_ERR_CLOSED, ffi.GH_ERR_INVALID_STATE):
                return False
            ffi.raise_for(rc)
        self._initial_sent = True
        return True

    def _abort(self, code, details):
        """Ends the call with an error; the handler's own set_code/set_details win."""
        effective = status.application_code(self._code) if self._code is not None else code
        if effective == status.OK:
            effective = code
        self._finish(effective, self._details if self._details is not None else details)

    def _finish(self, code=None, details=None, here=False):
        """Ends the call (once); `here`: on the handler's thread, which holds the call."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            trailing = self._trailing
        if code is None:
            code = status.application_code(self._code) if self._code is not None else status.OK
            details = self._details
        if here:
            if not self._closed_by_server():
                self._finish_call(self._ptr, code, details, trailing)
            return
        call = self._acquire()
        if call is None:                      # pragma: no cover - _end closes it after this
            return
        try:
            self._finish_call(call, code, details, trailing)
        finally:
            self._handle.release()

    def _finish_call(self, call, code, details, trailing):
        try:
            if trailing:
                with _metadata.NativeMetadata(trailing) as md:
                    ffi.gh_server_call_set_trailing_metadata(call, md)
        except Exception as e:
            _LOGGER.error("invalid trailing metadata: %s", e)
            code, details = status.INTERNAL, "Invalid metadata"
        d = _encode_details(details)
        rc = ffi.gh_server_call_finish(call, code, d, None, 0)
        if rc < 0 and rc != ffi.GH_ERR_INVALID_STATE:
            # The call must end here: add_callback's watcher (joined by _end) waits for it.
            _LOGGER.error("finishing the call failed (%d): %s", rc, ffi.last_error())
            ffi.gh_server_call_finish(call, status.UNKNOWN, None, None, 0)

    def _end(self):
        """After the handler: make sure the call is finished, run the callbacks, then close
        the call's handle (the handler returns to the library next)."""
        self._finish(here=True)
        with self._lock:
            watcher = self._watcher
        if watcher is not None:
            watcher.join()
        else:
            self._run_callbacks()
        with self._lock:
            self._ended = True
            handle = self._handle
        if handle is not None:
            handle.release(close=True, wait=True)


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
        call = ctx._acquire()
        if call is None:                      # the handler has returned
            raise ctx._rpc_error()
        try:
            rc = ffi.gh_server_call_read(call, byref(self._data), byref(self._size))
            if rc == 1:
                raw = (ctypes.string_at(self._data.value, self._size.value)
                       if self._size.value else b"")
        finally:
            ctx._handle.release()
        if rc == 1:
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
        ctx._abort(status.INTERNAL, "Exception deserializing request!")
        raise _DeserializeError()


def _serialize(response, serializer):
    return compat.serialize(serializer, response, "Failed to serialize response!")
