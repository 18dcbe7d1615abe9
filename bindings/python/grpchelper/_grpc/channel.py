"""grpcio's channel surface (grpc.insecure_channel, grpc.Channel and its multi-callables)
over gh_channel / gh_call; the call objects are in calls.py, the connectivity states
(subscribe, unsubscribe) in connectivity.py.
"""

import collections
import ctypes
import weakref
from ctypes import byref, c_size_t, c_void_p

from .._native import ffi
from .._native.handle import NativeHandle
from . import compat, status
from . import metadata as _metadata
from .connectivity import Subscriptions
from .calls import _CHANNEL_CLOSED, _CallFuture, _FinishedCall, _ResponseStream, _State, \
    _deserialize, _LOGGER, _on_done, _on_message, _serialize, _snapshot, _start_future, \
    _start_sender


class _NativeCall(object):
    """A client call's native handle (gh_call), and what the call had said when its
    channel's close freed it.

    The handle is a child of the channel's (closing the channel closes it first) and
    deferred: a thread inside gh_call_recv / gh_call_send / gh_call_wait, or a future in
    flight, holds it (acquire) until that returns — the channel's free makes it return —
    and the last of them frees it. When the channel's close frees it under a live call
    object, `ended` keeps the outcome: a call that had ended keeps its status, metadata
    and the responses not yet read (`pending`); one still running reports CANCELLED
    "channel closed". The call's own finaliser does not run at interpreter exit (a daemon
    thread may be inside the call): the channel's, which does, closes it."""

    __slots__ = ("handle", "channel", "ended", "pending", "_free", "__weakref__")

    def __init__(self, channel, method):
        self.channel = channel      # the Channel object lives as long as its calls
        self.ended = None
        self.pending = None
        ref = weakref.ref(self)
        # None if the channel's handle is closed (then no call is made).
        self.handle = handle = channel._handle.new_child(
            _call_new, (method,), "call", ffi.gh_call_free, what="call", deferred=True,
            before_free=lambda p: _capture(ref, p))
        if handle is not None:
            self._free = weakref.finalize(self, handle.close)
            self._free.atexit = False


def _call_new(channel, method):
    """gh_call_new on a channel's pointer: the new call's pointer."""
    out = c_void_p()
    ffi.gh_call_new(channel, method, byref(out))
    return out


def _capture(ref, ptr):
    """before_free of a call's handle: what a live call object will need."""
    call = ref()
    if call is None or call.ended is not None:
        return
    try:
        if ffi.gh_call_status(ptr) < 0:
            call.ended = _CHANNEL_CLOSED
            return
        pending = collections.deque()
        data, size = c_void_p(), c_size_t()
        try:
            while ffi.gh_call_recv(ptr, byref(data), byref(size)) == 1:
                pending.append(ctypes.string_at(data.value, size.value) if size.value else b"")
        except ffi.GrpcHelperError:
            pass                    # a call of the callback API: nothing to read
        call.pending = pending
        call.ended = _snapshot(ptr)
    except Exception:  # noqa: BLE001 - the free goes on
        _LOGGER.exception("reading a call freed by its channel's close")
        call.ended = _CHANNEL_CLOSED


def _free_channel(handle, subscriptions):
    """The channel's finaliser (close(), garbage collection, interpreter exit): its
    subscriptions end first (nothing more is delivered to them, as grpcio's close
    unsubscribes all), then its handle's close stops lending it (a gh_call_new begun has
    returned: they are uses of the handle; later ones see it closed), closes the calls
    (children) first, then frees it with gh_channel_free, outside any lock: that waits
    for queued completion callbacks, which may try to start calls (they then see the
    channel closed), and ends the connectivity watches."""
    subscriptions.end()
    handle.close()


# --- the channel ----------------------------------------------------------------

# grpcio channel arguments the library honours (README: "Options"); -1 is "no limit".
_CHANNEL_INT_OPTIONS = {
    "grpc.max_receive_message_length": ffi.GH_OPT_MAX_RECV_MESSAGE_SIZE,
    "grpc.max_send_message_length": ffi.GH_OPT_MAX_SEND_MESSAGE_SIZE,
    "grpc.max_metadata_size": ffi.GH_OPT_MAX_HEADER_LIST_SIZE,
    "grpc.default_compression_algorithm": ffi.GH_OPT_DEFAULT_COMPRESSION,
    "grpc.http2.initial_window_size": ffi.GH_OPT_INITIAL_WINDOW_SIZE,
    "grpc.initial_reconnect_backoff_ms": ffi.GH_OPT_INITIAL_RECONNECT_BACKOFF_MS,
    "grpc.max_reconnect_backoff_ms": ffi.GH_OPT_MAX_RECONNECT_BACKOFF_MS,
    "grpc.keepalive_time_ms": ffi.GH_OPT_KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": ffi.GH_OPT_KEEPALIVE_TIMEOUT_MS,
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


class Channel(compat.Channel):
    """grpcio's grpc.Channel on libgrpchelper. Create it with grpchelper.insecure_channel()."""

    def __init__(self, target, options=None, compression=None):
        ptr = c_void_p()
        try:
            ffi.gh_channel_new(byref(ptr), _target(target).encode())
        except ffi.InvalidArgumentError as e:
            raise ValueError("invalid target %r: %s" % (target, e.message)) from None
        self._handle = handle = NativeHandle("channel", ptr, ffi.gh_channel_free,
                                             what="channel")
        self._subscriptions = subscriptions = Subscriptions(handle)
        self._free = weakref.finalize(self, _free_channel, handle, subscriptions)
        with handle.use() as ptr:
            self._configure(ptr, options, compression)

    def _configure(self, ptr, options, compression):
        if compression is not None:
            ffi.gh_channel_set_int(ptr, ffi.GH_OPT_DEFAULT_COMPRESSION,
                                    compat.compression_value(compression))
        for key, value in options or ():
            if key in _CHANNEL_INT_OPTIONS:
                v = int(value)
                ffi.gh_channel_set_int(ptr, _CHANNEL_INT_OPTIONS[key], _UNLIMITED if v < 0 else v)
            elif key == "grpc.per_message_decompression":
                ffi.gh_channel_set_int(ptr, ffi.GH_OPT_PER_MESSAGE_DECOMPRESSION, 1 if int(value) else 0)
            elif key == "grpc.keepalive_permit_without_calls":
                ffi.gh_channel_set_int(ptr, ffi.GH_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1 if int(value) else 0)
            elif key == "grpc.primary_user_agent":
                ffi.gh_channel_set_str(ptr, ffi.GH_OPT_USER_AGENT_PREFIX, str(value).encode())
            elif key == "grpc.secondary_user_agent":
                ffi.gh_channel_set_str(ptr, ffi.GH_OPT_USER_AGENT_SUFFIX, str(value).encode())
            # Other grpcio channel arguments are ignored, as grpcio ignores unknown ones.

    def _new_call(self, method, timeout, metadata, wait_for_ready, compression, credentials,
                  bare=False):
        """(call, ptr): a new call with its options set, the caller holding a use of it
        (ptr; released with call.handle.release(), or handed on). bare: the call is its
        handle alone (a NativeHandle, no _NativeCall), for a call its caller makes, uses
        and frees (release(close=True)) without handing it to anyone."""
        if credentials is not None:
            raise ValueError("call credentials need a secure channel; grpchelper is plaintext only")
        if bare:
            call = handle = self._handle.new_child(_call_new, (method,), "call",
                                                   ffi.gh_call_free, what="call",
                                                   deferred=True)
        else:
            call = _NativeCall(self, method)
            handle = call.handle
        if handle is None:
            raise ValueError(_CLOSED)
        ptr = handle.address
        if timeout is None and not metadata and not wait_for_ready and compression is None:
            return call, ptr
        try:
            if timeout is not None:
                # A deadline already passed still makes a call, which then fails at once.
                ffi.gh_call_set_timeout(ptr, max(float(timeout), 1e-9))
            if metadata:
                with _metadata.NativeMetadata(metadata) as md:
                    ffi.gh_call_set_metadata(ptr, md)
            if wait_for_ready:
                ffi.gh_call_set_wait_for_ready(ptr, 1)
            if compression is not None:
                ffi.gh_call_set_compression(ptr, compat.compression_value(compression))
        except BaseException:
            handle.release(close=True)
            raise
        return call, ptr

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
        """Calls callback(grpc.ChannelConnectivity) with the channel's state, at once and
        then at every change, on the library's callback threads, until unsubscribe() or
        close(). try_to_connect: the channel connects, and keeps connecting while this
        subscription lasts."""
        self._subscriptions.subscribe(callback, try_to_connect)

    def unsubscribe(self, callback):
        """Ends the first subscription of `callback` (none: nothing happens)."""
        self._subscriptions.unsubscribe(callback)

    def close(self):
        """Ends the subscriptions, cancels calls in flight and releases the connection
        (idempotent)."""
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

def _method(method):
    return method if isinstance(method, bytes) else method.encode()


_CLOSED = "Cannot invoke RPC on closed channel!"


def _new_call(channel, method, timeout, metadata, wait_for_ready, compression, credentials,
              bare=False):
    """(call, ptr, None): a new native call, the caller holding a use of it (ptr: it
    releases it or hands it on); (None, None, error) for bad metadata."""
    try:
        call, ptr = channel._new_call(method, timeout, metadata, wait_for_ready, compression,
                                      credentials, bare)
    except _metadata.MetadataError as e:
        return None, None, _FinishedCall(_State(status.INTERNAL, "Invalid metadata: %s" % e))
    return call, ptr, None


def _start_plain(call, ptr):
    try:
        ffi.gh_call_start(ptr)
    finally:
        call.handle.release()


def _start_call(channel, method, timeout, metadata, wait_for_ready, compression, credentials,
                start=_start_plain):
    """(call, None): a native call started by `start(call, ptr)`, which takes over the
    use of the call made for it; (None, error) for bad metadata."""
    call, ptr, error = _new_call(channel, method, timeout, metadata, wait_for_ready,
                                 compression, credentials)
    if error is None:
        start(call, ptr)
    return call, error


class _MultiCallable(object):
    def __init__(self, channel, method, request_serializer, response_deserializer):
        self._channel = channel
        self._method = _method(method)
        self._serializer = request_serializer
        self._deserializer = response_deserializer

    def _request_bytes(self, request):
        """(the serialized request, None), or (None, the finished call that answers it: a
        request that does not serialize). The library applies the send limit."""
        data = _serialize(self._serializer, request)
        if data is None:
            return None, _FinishedCall(_State(status.INTERNAL, "Exception serializing request!"))
        return data, None


# --- unary request, unary response ------------------------------------------------

class UnaryUnaryMultiCallable(_MultiCallable):

    def _invoke(self, request, timeout, metadata, credentials, wait_for_ready, compression,
                with_call):
        data, finished = self._request_bytes(request)
        if finished is not None:
            raise finished
        if timeout is None and metadata is None and credentials is None and \
                not wait_for_ready and compression is None:
            handle = self._channel._handle.new_child(_call_new, (self._method,), "call",
                                                     ffi.gh_call_free, what="call",
                                                     deferred=True)
            if handle is None:
                raise ValueError(_CLOSED)
        else:
            handle, ptr, error = _new_call(self._channel, self._method, timeout, metadata,
                                           wait_for_ready, compression, credentials, True)
            if error is not None:
                raise error
        # The call is used by this thread alone, and freed here: a bare handle (a child of
        # the channel's: the channel's close frees it, even if this is interrupted).
        try:
            return self._unary(handle.address, data, with_call)
        finally:
            handle.release(close=True)

    def _unary(self, ptr, data, with_call):
        """gh_call_unary on the call (ptr held by the caller)."""
        out = c_void_p()
        size = c_size_t()
        rc = ffi.gh_call_unary(ptr, data, len(data), byref(out), byref(size))
        if rc == ffi.GH_OK:
            raw = ctypes.string_at(out.value, size.value) if size.value else b""
            response, ok = _deserialize(self._deserializer, raw)
            if not ok:
                raise _FinishedCall(_snapshot(ptr, (status.INTERNAL,
                                                    "Exception deserializing response!")))
            if with_call:
                return response, _FinishedCall(_snapshot(ptr), response)
            return response
        if rc != ffi.GH_ERR_RPC:
            ffi.raise_for(rc)
        if ffi.gh_call_status(ptr) == status.OK:  # OK without a response message
            raise _FinishedCall(_snapshot(ptr, (status.INTERNAL,
                                                "no response message for a unary call")))
        raise _FinishedCall(_snapshot(ptr))

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
        data, finished = self._request_bytes(request)
        if finished is not None:
            return finished
        fut = _CallFuture(None, self._deserializer, timeout)

        def start(call, ptr):
            _start_future(fut, call, ptr, lambda key: ffi.gh_call_start_unary_async(
                ptr, data, len(data), _on_message, _on_done, key))

        call, error = _start_call(self._channel, self._method, timeout, metadata, wait_for_ready,
                                  compression, credentials, start)
        if error is not None:
            return error
        return fut



class UnaryStreamMultiCallable(_MultiCallable):

    def __call__(self, request, timeout=None, metadata=None, credentials=None,
                 wait_for_ready=None, compression=None):
        data, finished = self._request_bytes(request)
        if finished is not None:
            raise finished
        call, ptr, error = _new_call(self._channel, self._method, timeout, metadata,
                                     wait_for_ready, compression, credentials)
        if error is not None:
            raise error
        stream = _ResponseStream(call, self._deserializer, timeout)
        try:
            ffi.gh_call_start(ptr)
            # Failures (unreachable server, ended call) show in the status, read by the
            # iterator.
            if ffi.gh_call_send(ptr, data, len(data), 0) == ffi.GH_OK:
                ffi.gh_call_close_send(ptr)
        finally:
            call.handle.release()
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
            if state.code == status.OK and not got:
                state = _State(status.INTERNAL, "no response message for a unary call",
                               state.initial_metadata, state.trailing_metadata)
            if state.code != status.OK:
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

        def start(call, ptr):
            _start_future(fut, call, ptr, lambda key: ffi.gh_call_start_async(
                ptr, _on_message, _on_done, key))

        call, error = _start_call(self._channel, self._method, timeout, metadata, wait_for_ready,
                                  compression, credentials, start)
        if error is not None:
            return error
        _start_sender(fut, call, request_iterator, self._serializer, self._channel)
        return fut
