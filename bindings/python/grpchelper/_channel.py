"""grpcio's channel surface (grpc.insecure_channel, multi-callables, calls, futures) over
gh_channel / gh_call.

Blocking calls use the library's blocking API, so a reader is held back by HTTP/2 flow
control when it stops reading. Request iterators are consumed on a thread of their own.
`.future()` of single-response methods uses the callback API (no thread per call).
"""

import ctypes
import itertools
import logging
import sys
import threading
import time
import weakref
from ctypes import byref, c_size_t, c_void_p

from . import _ffi, _grpc, _metadata

_LOGGER = logging.getLogger("grpchelper")

_OK = 0
_CANCELLED = 1
_UNKNOWN = 2
_DEADLINE_EXCEEDED = 4
_RESOURCE_EXHAUSTED = 8
_INTERNAL = 13

# grpcio's details of a call cancelled with cancel().
_LOCALLY_CANCELLED = (_CANCELLED, "Locally cancelled by application!")


class _State(object):
    """A call's outcome: code (int), details (str), metadata (tuples of Metadatum)."""

    __slots__ = ("code", "details", "initial_metadata", "trailing_metadata")

    def __init__(self, code, details, initial_metadata=(), trailing_metadata=()):
        self.code = code
        self.details = details
        self.initial_metadata = initial_metadata
        self.trailing_metadata = trailing_metadata


def _snapshot(ptr, override=None):
    """Reads a finished native call's outcome into a _State."""
    code = _ffi.gh_call_status(ptr)
    msg = _ffi.gh_call_status_message(ptr)
    details = msg.decode("utf-8", "replace") if msg else ""
    if override is not None:
        code, details = override
    return _State(code, details,
                  _metadata.from_native(_ffi.gh_call_initial_metadata(ptr)),
                  _metadata.from_native(_ffi.gh_call_trailing_metadata(ptr)))


def _debug_string(state):
    return '{grpc_status:%d, grpc_message:"%s"}' % (state.code, state.details)


class _CallBase(_grpc.RpcError, _grpc.Call, _grpc.Future):
    """What every call object shares: it is the call (grpc.Call), its future
    (grpc.Future), and the error raised when it fails (grpc.RpcError), as in grpcio.

    Subclasses provide `_outcome(timeout)` (the final _State, waiting up to `timeout`,
    FutureTimeoutError after) and `_value()` (the response of a successful call)."""

    _cancelled = False

    def _value(self):
        return None

    def code(self):
        return _grpc.status_code(self._outcome(None).code)

    def details(self):
        return self._outcome(None).details

    def trailing_metadata(self):
        return self._outcome(None).trailing_metadata

    def debug_error_string(self):
        return _debug_string(self._outcome(None))

    def cancelled(self):
        # cancel() returned True: the outcome is CANCELLED (see _LOCALLY_CANCELLED), even
        # before the library has reported the end of the call.
        return self._cancelled

    def running(self):
        return not self.done()

    def is_active(self):
        return not self.done()

    def _failure(self, timeout):
        """None for a successful call, else the error; FutureCancelledError if cancelled."""
        state = self._outcome(timeout)
        if state.code == _OK:
            return None
        if self._cancelled and state.code == _CANCELLED:
            raise _grpc.FutureCancelledError()
        return self

    def result(self, timeout=None):
        error = self._failure(timeout)
        if error is not None:
            raise error
        return self._value()

    def exception(self, timeout=None):
        return self._failure(timeout)

    def traceback(self, timeout=None):
        if self._failure(timeout) is None:
            return None
        try:
            raise self
        except _grpc.RpcError:
            return sys.exc_info()[2]

    def __str__(self):
        if not self.done():
            return "<%s of in-flight RPC>" % type(self).__name__
        state = self._outcome(None)
        return '<%s of RPC that terminated with:\n\tstatus = %s\n\tdetails = "%s"\n>' % (
            type(self).__name__, _grpc.status_code(state.code), state.details)

    __repr__ = __str__


class _FinishedCall(_CallBase):
    """A call that has ended: raised as the error of a failed call, and returned by
    `with_call` as the call of a successful one."""

    def __init__(self, state, response=None):
        super(_FinishedCall, self).__init__()
        self._state = state
        self._response = response

    def _outcome(self, timeout):
        return self._state

    def _value(self):
        return self._response

    def initial_metadata(self):
        return self._state.initial_metadata

    def done(self):
        return True

    def time_remaining(self):
        return None

    def cancel(self):
        return False

    def add_callback(self, callback):
        return False

    def add_done_callback(self, fn):
        fn(self)


class _NativeCall(object):
    """Owns one gh_call handle (freed by a finalizer that holds no reference to self)."""

    __slots__ = ("ptr", "free", "channel", "__weakref__")

    def __init__(self, channel, ptr):
        self.ptr = ptr
        self.channel = channel  # children keep their parent alive
        _ffi.handle_created("call")
        self.free = weakref.finalize(self, _ffi.free_handle, "call", _ffi.gh_call_free, ptr)
        # Not at interpreter exit: a call still alive then may be in use by another
        # (daemon) thread blocked in gh_call_recv / gh_call_send / gh_call_wait, and
        # freeing it under that thread is a use-after-free. The channel, freed at exit,
        # cancels the call; the process's end releases its memory.
        self.free.atexit = False


class _ChannelHandle(object):
    """The native channel, the lock that orders gh_call_new against gh_channel_free, and
    the closed flag. The finalizer holds this, never the Channel."""

    __slots__ = ("ptr", "lock", "closed")

    def __init__(self, ptr):
        self.ptr = ptr
        self.lock = threading.Lock()
        self.closed = False


def _free_channel(handle):
    """Finalizer (close(), garbage collection, interpreter exit). Once `closed` is set no
    gh_call_new starts, and every one begun has returned (both under the lock). The free
    runs outside the lock: it waits for queued completion callbacks, which may try to
    start calls (they then see `closed`). A call created before and started after the
    free ends at once with CANCELLED (the library's rule)."""
    with handle.lock:
        handle.closed = True
    _ffi.free_handle("channel", _ffi.gh_channel_free, handle.ptr)


# --- the channel ----------------------------------------------------------------

_CHANNEL_INT_OPTIONS = {
    "grpc.max_receive_message_length": _ffi.GH_OPT_MAX_RECV_MESSAGE_SIZE,
    "grpc.max_metadata_size": _ffi.GH_OPT_MAX_HEADER_LIST_SIZE,
    "grpc.default_compression_algorithm": _ffi.GH_OPT_DEFAULT_COMPRESSION,
    "grpc.http2.initial_window_size": _ffi.GH_OPT_INITIAL_WINDOW_SIZE,
}
_UNLIMITED = 2 ** 31 - 1


def _target(target):
    """grpcio target names → the library's ("host:port", "[v6]:port", "unix:PATH")."""
    if isinstance(target, bytes):
        target = target.decode()
    for scheme in ("dns:///", "dns:", "ipv4:", "ipv6:", "passthrough:///"):
        if target.startswith(scheme):
            target = target[len(scheme):]
            break
    if target.startswith("unix:"):
        return target
    if target.startswith("["):
        return target if "]:" in target else target + ":443"
    if ":" not in target:
        return target + ":443"
    if target.count(":") > 1:  # a bare IPv6 address with a port: "::1:50051"
        host, _, port = target.rpartition(":")
        return "[%s]:%s" % (host, port)
    return target


class Channel(_grpc.Channel):
    """grpcio's grpc.Channel on libgrpchelper. Create it with grpchelper.insecure_channel()."""

    def __init__(self, target, options=None, compression=None):
        self.max_send_message_length = None
        ptr = c_void_p()
        try:
            _ffi.gh_channel_new(byref(ptr), _target(target).encode())
        except _ffi.InvalidArgumentError as e:
            raise ValueError("invalid target %r: %s" % (target, e.message)) from None
        _ffi.handle_created("channel")
        self._handle = handle = _ChannelHandle(ptr)
        self._free = weakref.finalize(self, _free_channel, handle)
        if compression is not None:
            _ffi.gh_channel_set_int(ptr, _ffi.GH_OPT_DEFAULT_COMPRESSION,
                                    _grpc.compression_value(compression))
        for key, value in options or ():
            if key in _CHANNEL_INT_OPTIONS:
                v = int(value)
                _ffi.gh_channel_set_int(ptr, _CHANNEL_INT_OPTIONS[key], _UNLIMITED if v < 0 else v)
            elif key == "grpc.max_send_message_length":
                self.max_send_message_length = None if int(value) < 0 else int(value)
            elif key == "grpc.primary_user_agent":
                _ffi.gh_channel_set_str(ptr, _ffi.GH_OPT_USER_AGENT_PREFIX, str(value).encode())
            # Other grpcio channel arguments are ignored, as grpcio ignores unknown ones.

    def _new_call(self, method, timeout, metadata, wait_for_ready, compression, credentials):
        if credentials is not None:
            raise ValueError("call credentials need a secure channel; grpchelper is plaintext only")
        ptr = c_void_p()
        handle = self._handle
        with handle.lock:
            if handle.closed:
                raise ValueError("Cannot invoke RPC on closed channel!")
            _ffi.gh_call_new(handle.ptr, method, byref(ptr))
        call = _NativeCall(self, ptr)
        if timeout is not None:
            # A deadline already passed still makes a call, which then fails at once.
            _ffi.gh_call_set_timeout(ptr, max(float(timeout), 1e-9))
        if metadata:
            with _metadata.NativeMetadata(metadata) as md:
                _ffi.gh_call_set_metadata(ptr, md)
        if wait_for_ready:
            _ffi.gh_call_set_wait_for_ready(ptr, 1)
        if compression is not None:
            _ffi.gh_call_set_compression(ptr, _grpc.compression_value(compression))
        return call

    def _check_size(self, data):
        limit = self.max_send_message_length
        if limit is not None and len(data) > limit:
            return _State(_RESOURCE_EXHAUSTED,
                          "CLIENT: Sent message larger than max (%d vs. %d)" % (len(data), limit))
        return None

    # -- multi-callables
    def unary_unary(self, method, request_serializer=None, response_deserializer=None,
                    _registered_method=False):
        return UnaryUnaryMultiCallable(self, method, request_serializer, response_deserializer)

    def unary_stream(self, method, request_serializer=None, response_deserializer=None,
                     _registered_method=False):
        return UnaryStreamMultiCallable(self, method, request_serializer, response_deserializer)

    def stream_unary(self, method, request_serializer=None, response_deserializer=None,
                     _registered_method=False):
        return StreamUnaryMultiCallable(self, method, request_serializer, response_deserializer)

    def stream_stream(self, method, request_serializer=None, response_deserializer=None,
                      _registered_method=False):
        return StreamStreamMultiCallable(self, method, request_serializer, response_deserializer)

    def subscribe(self, callback, try_to_connect=False):
        raise NotImplementedError("grpchelper channels do not report connectivity states")

    def unsubscribe(self, callback):
        raise NotImplementedError("grpchelper channels do not report connectivity states")

    def close(self):
        """Cancels calls in flight and releases the connection (idempotent)."""
        self._free()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def insecure_channel(target, options=None, compression=None):
    """A plaintext channel to `target`, like grpc.insecure_channel()."""
    return Channel(target, options, compression)


# --- helpers shared by the multi-callables ----------------------------------------

def _serialize(serializer, request):
    return _grpc.serialize(serializer, request, "Exception serializing request!")


def _deserialize(deserializer, raw):
    if deserializer is None:
        return raw, True
    try:
        return deserializer(raw), True
    except Exception:
        _LOGGER.exception("Exception deserializing response!")
        return None, False


def _method(method):
    return method if isinstance(method, bytes) else method.encode()


def _start_plain(call):
    _ffi.gh_call_start(call.ptr)


def _start_call(channel, method, timeout, metadata, wait_for_ready, compression, credentials,
                start=_start_plain):
    """A native call started by `start(call)` (None: left to the caller), or a
    _FinishedCall error for bad metadata."""
    try:
        call = channel._new_call(method, timeout, metadata, wait_for_ready, compression,
                                 credentials)
    except _metadata.MetadataError as e:
        return None, _FinishedCall(_State(_INTERNAL, "Invalid metadata: %s" % e))
    if start is not None:
        start(call)
    return call, None


class _MultiCallable(object):
    def __init__(self, channel, method, request_serializer, response_deserializer):
        self._channel = channel
        self._method = _method(method)
        self._serializer = request_serializer
        self._deserializer = response_deserializer


# --- unary request, unary response ------------------------------------------------

class UnaryUnaryMultiCallable(_MultiCallable):

    def _invoke(self, request, timeout, metadata, credentials, wait_for_ready, compression,
                with_call):
        data = _serialize(self._serializer, request)
        if data is None:
            raise _FinishedCall(_State(_INTERNAL, "Exception serializing request!"))
        too_large = self._channel._check_size(data)
        if too_large is not None:
            raise _FinishedCall(too_large)
        call, error = _start_call(self._channel, self._method, timeout, metadata, wait_for_ready,
                                  compression, credentials, start=None)
        if error is not None:
            raise error
        try:
            ptr = call.ptr
            out = c_void_p()
            size = c_size_t()
            rc = _ffi.gh_call_unary(ptr, data, len(data), byref(out), byref(size))
            if rc == _ffi.GH_OK:
                raw = ctypes.string_at(out.value, size.value) if size.value else b""
                response, ok = _deserialize(self._deserializer, raw)
                if not ok:
                    raise _FinishedCall(_snapshot(ptr, (_INTERNAL, "Exception deserializing response!")))
                if with_call:
                    return response, _FinishedCall(_snapshot(ptr), response)
                return response
            if rc != _ffi.GH_ERR_RPC:
                _ffi.raise_for(rc)
            if _ffi.gh_call_status(ptr) == _OK:  # OK without a response message
                raise _FinishedCall(_snapshot(ptr, (_INTERNAL, "no response message for a unary call")))
            raise _FinishedCall(_snapshot(ptr))
        finally:
            call.free()

    def __call__(self, request, timeout=None, metadata=None, credentials=None,
                 wait_for_ready=None, compression=None):
        return self._invoke(request, timeout, metadata, credentials, wait_for_ready, compression,
                            False)

    def with_call(self, request, timeout=None, metadata=None, credentials=None,
                  wait_for_ready=None, compression=None):
        return self._invoke(request, timeout, metadata, credentials, wait_for_ready, compression,
                            True)

    def future(self, request, timeout=None, metadata=None, credentials=None,
               wait_for_ready=None, compression=None):
        data = _serialize(self._serializer, request)
        if data is None:
            return _FinishedCall(_State(_INTERNAL, "Exception serializing request!"))
        too_large = self._channel._check_size(data)
        if too_large is not None:
            return _FinishedCall(too_large)
        fut = _CallFuture(None, self._deserializer, timeout)

        def start(call):
            fut._call = call
            key = _register_future(fut)
            try:
                _ffi.gh_call_start_unary_async(call.ptr, data, len(data), _on_message, _on_done,
                                               key)
            except BaseException:
                _futures.pop(key, None)
                raise

        call, error = _start_call(self._channel, self._method, timeout, metadata, wait_for_ready,
                                  compression, credentials, start)
        if error is not None:
            return error
        return fut


# --- futures (callback API) --------------------------------------------------------
# Keys → futures in flight; a future stays here (alive) until its on_done ran.

_futures = {}
_future_keys = itertools.count(1)


def _register_future(fut):
    key = next(_future_keys)
    _futures[key] = fut
    return key


@_ffi.GH_MESSAGE_FN
def _on_message(call, data, size, key):
    try:
        fut = _futures.get(key)
        if fut is not None:
            fut._raw = ctypes.string_at(data, size) if size else b""
    except BaseException:  # pragma: no cover - nothing may cross into C
        pass


@_ffi.GH_DONE_FN
def _on_done(call, code, key):
    try:
        fut = _futures.pop(key, None)
        if fut is not None:
            fut._complete()
    except BaseException:  # pragma: no cover
        try:
            _LOGGER.exception("internal error completing a future")
        except BaseException:
            pass


class _LiveCall(_CallBase):
    """A call still bound to its native call: deadline, lock, and the local outcome
    (`_override`) that wins over the library's when the binding ends the call itself."""

    def __init__(self, call, deserializer, timeout):
        super(_LiveCall, self).__init__()
        self._call = call
        self._deserializer = deserializer
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._cond = threading.Condition()
        self._state = None
        self._override = None
        self._callbacks = []

    def _fail_locally(self, code, details):
        with self._cond:
            if self._override is None:
                self._override = (code, details)
        _ffi.gh_call_cancel(self._call.ptr)

    def time_remaining(self):
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())


class _CallFuture(_LiveCall):
    """The future of a single-response call (also its Call, and its error if it fails)."""

    def __init__(self, call, deserializer, timeout):
        super(_CallFuture, self).__init__(call, deserializer, timeout)
        self._raw = None
        self._response = None
        # self._callbacks: add_callback's and add_done_callback's, in the order given

    def _complete(self):
        """On the channel's callback thread, from on_done."""
        ptr = self._call.ptr
        override = self._override
        response = None
        if self._raw is not None and _ffi.gh_call_status(ptr) == _OK and override is None:
            response, ok = _deserialize(self._deserializer, self._raw)
            if not ok:
                override = (_INTERNAL, "Exception deserializing response!")
        elif _ffi.gh_call_status(ptr) == _OK and override is None:
            override = (_INTERNAL, "no response message for a unary call")
        state = _snapshot(ptr, override)
        with self._cond:
            if override is None and self._override is not None:  # cancel() won the race
                code, details = self._override
                state = _State(code, details, state.initial_metadata, state.trailing_metadata)
                response = None
            self._state = state
            self._response = response
            self._raw = None
            callbacks, self._callbacks = self._callbacks, None
            self._cond.notify_all()
        for cb in callbacks:
            _safe(cb)

    def _outcome(self, timeout):
        with self._cond:
            if not self._cond.wait_for(lambda: self._state is not None, timeout):
                raise _grpc.FutureTimeoutError()
            return self._state

    def _value(self):
        return self._response

    # Future
    def cancel(self):
        with self._cond:
            if self._state is not None:
                return False
            self._cancelled = True
            # Even if the call ended in the library an instant ago: cancel() said True.
            if self._override is None:
                self._override = _LOCALLY_CANCELLED
        _ffi.gh_call_cancel(self._call.ptr)
        return True

    def done(self):
        with self._cond:
            return self._state is not None or self._cancelled

    def add_done_callback(self, fn):
        with self._cond:
            if self._callbacks is not None:
                self._callbacks.append(lambda: fn(self))
                return
        _safe(fn, self)

    # Call

    def add_callback(self, callback):
        with self._cond:
            if self._callbacks is None:
                return False
            self._callbacks.append(callback)
            return True

    def initial_metadata(self):
        with self._cond:
            if self._state is not None:
                return self._state.initial_metadata
        return _metadata.from_native(_ffi.gh_call_initial_metadata(self._call.ptr))


def _safe(fn, *args):
    try:
        fn(*args)
    except Exception:
        _LOGGER.exception("Exception calling callback!")


# --- request streams ------------------------------------------------------------

def _send_requests(owner, ptr, iterator, serializer, channel):
    """Consumes a request iterator on its own thread, sending each request."""
    try:
        for request in iter(iterator):
            data = _serialize(serializer, request)
            if data is None:
                owner._fail_locally(_INTERNAL, "Exception serializing request!")
                return
            too_large = channel._check_size(data)
            if too_large is not None:
                owner._fail_locally(too_large.code, too_large.details)
                return
            rc = _ffi.gh_call_send(ptr, data, len(data), 0)
            if rc < 0:
                return  # the call has ended; its status tells why
        _ffi.gh_call_close_send(ptr)
    except Exception:
        _LOGGER.exception("Exception iterating requests!")
        owner._fail_locally(_UNKNOWN, "Exception iterating requests!")


def _start_sender(owner, call, request_iterator, serializer, channel):
    t = threading.Thread(target=_send_requests, name="grpchelper-requests",
                         args=(owner, call.ptr, request_iterator, serializer, channel),
                         daemon=True)
    # The thread holds `owner` and with it the native call until the iterator is done.
    t.start()
    return t


# --- streaming responses (blocking API) -------------------------------------------

class _ResponseStream(_LiveCall):
    """A response stream: an iterator of responses, the call, and its error if it fails."""

    def __init__(self, call, deserializer, timeout):
        super(_ResponseStream, self).__init__(call, deserializer, timeout)
        self._recv_lock = threading.Lock()
        self._initial = None
        self._waiter = None
        self._data = c_void_p()
        self._size = c_size_t()

    def _finished_state(self):
        with self._cond:
            if self._state is not None:
                return self._state
        _ffi.gh_call_wait(self._call.ptr)
        with self._cond:
            if self._state is None:
                self._state = _snapshot(self._call.ptr, self._override)
            return self._state

    # iterator
    def __iter__(self):
        return self

    def __next__(self):
        with self._recv_lock:
            rc = _ffi.gh_call_recv(self._call.ptr, byref(self._data), byref(self._size))
            if rc == 1:
                raw = ctypes.string_at(self._data.value, self._size.value) if self._size.value else b""
                response, ok = _deserialize(self._deserializer, raw)
                if ok:
                    return response
                self._fail_locally(_INTERNAL, "Exception deserializing response!")
        state = self._finished_state()
        if state.code == _OK:
            raise StopIteration()
        raise self

    next = __next__

    # Call
    def initial_metadata(self):
        with self._cond:
            if self._initial is not None:
                return self._initial
        md = _metadata.from_native(_ffi.gh_call_initial_metadata(self._call.ptr))
        with self._cond:
            self._initial = md
        return md


    def cancel(self):
        with self._cond:
            if self._state is not None or _ffi.gh_call_status(self._call.ptr) >= 0:
                return False
            self._cancelled = True
            if self._override is None:
                self._override = _LOCALLY_CANCELLED
        _ffi.gh_call_cancel(self._call.ptr)
        return True

    def add_callback(self, callback):
        with self._cond:
            if self._state is not None or _ffi.gh_call_status(self._call.ptr) >= 0:
                return False
            self._callbacks.append(callback)
            self._ensure_waiter()
            return True

    def _ensure_waiter(self):
        # A thread that waits for the end of the call, for callbacks and timed waits.
        if self._waiter is None:
            self._waiter = threading.Thread(target=self._wait_end, name="grpchelper-call-done",
                                            daemon=True)
            self._waiter.start()

    def _wait_end(self):
        self._finished_state()
        with self._cond:
            callbacks, self._callbacks = self._callbacks, []
            self._cond.notify_all()
        for cb in callbacks:
            _safe(cb)

    # Future
    def done(self):
        return _ffi.gh_call_status(self._call.ptr) >= 0

    def _outcome(self, timeout):
        if timeout is None:
            return self._finished_state()
        with self._cond:
            self._ensure_waiter()
            if not self._cond.wait_for(lambda: self._state is not None, timeout):
                raise _grpc.FutureTimeoutError()
            return self._state

    def add_done_callback(self, fn):
        if not self.add_callback(lambda: fn(self)):
            _safe(fn, self)


class UnaryStreamMultiCallable(_MultiCallable):

    def __call__(self, request, timeout=None, metadata=None, credentials=None,
                 wait_for_ready=None, compression=None):
        data = _serialize(self._serializer, request)
        if data is None:
            raise _FinishedCall(_State(_INTERNAL, "Exception serializing request!"))
        too_large = self._channel._check_size(data)
        if too_large is not None:
            raise _FinishedCall(too_large)
        call, error = _start_call(self._channel, self._method, timeout, metadata, wait_for_ready,
                                  compression, credentials)
        if error is not None:
            raise error
        stream = _ResponseStream(call, self._deserializer, timeout)
        ptr = call.ptr
        # Failures (unreachable server, ended call) show in the status, read by the iterator.
        if _ffi.gh_call_send(ptr, data, len(data), 0) == _ffi.GH_OK:
            _ffi.gh_call_close_send(ptr)
        return stream


class StreamStreamMultiCallable(_MultiCallable):

    def __call__(self, request_iterator, timeout=None, metadata=None, credentials=None,
                 wait_for_ready=None, compression=None):
        call, error = _start_call(self._channel, self._method, timeout, metadata, wait_for_ready,
                                  compression, credentials)
        if error is not None:
            raise error
        stream = _ResponseStream(call, self._deserializer, timeout)
        _start_sender(stream, call, request_iterator, self._serializer, self._channel)
        return stream


# --- stream request, unary response ---------------------------------------------

class StreamUnaryMultiCallable(_MultiCallable):

    def _blocking(self, request_iterator, timeout, metadata, credentials, wait_for_ready,
                  compression, with_call):
        call, error = _start_call(self._channel, self._method, timeout, metadata, wait_for_ready,
                                  compression, credentials)
        if error is not None:
            raise error
        stream = _ResponseStream(call, self._deserializer, timeout)
        _start_sender(stream, call, request_iterator, self._serializer, self._channel)
        try:
            response = None
            got = False
            for response in stream:
                got = True
                break
            state = stream._finished_state()
            if state.code == _OK and not got:
                state = _State(_INTERNAL, "no response message for a unary call",
                               state.initial_metadata, state.trailing_metadata)
            if state.code != _OK:
                raise _FinishedCall(state)
            if with_call:
                return response, _FinishedCall(state, response)
            return response
        finally:
            del stream

    def __call__(self, request_iterator, timeout=None, metadata=None, credentials=None,
                 wait_for_ready=None, compression=None):
        return self._blocking(request_iterator, timeout, metadata, credentials, wait_for_ready,
                              compression, False)

    def with_call(self, request_iterator, timeout=None, metadata=None, credentials=None,
                  wait_for_ready=None, compression=None):
        return self._blocking(request_iterator, timeout, metadata, credentials, wait_for_ready,
                              compression, True)

    def future(self, request_iterator, timeout=None, metadata=None, credentials=None,
               wait_for_ready=None, compression=None):
        fut = _CallFuture(None, self._deserializer, timeout)

        def start(call):
            fut._call = call
            key = _register_future(fut)
            try:
                _ffi.gh_call_start_async(call.ptr, _on_message, _on_done, key)
            except BaseException:
                _futures.pop(key, None)
                raise

        call, error = _start_call(self._channel, self._method, timeout, metadata, wait_for_ready,
                                  compression, credentials, start)
        if error is not None:
            return error
        _start_sender(fut, call, request_iterator, self._serializer, self._channel)
        return fut

