"""The call objects of a channel, as grpcio's: each is the call (grpc.Call), its future
(grpc.Future) and the error raised when it fails (grpc.RpcError). Single responses of
`.future()` come through the callback API (gh_call_start_async: no thread per call);
response streams are read with the blocking API, so a reader that stops reading holds
the sender back through HTTP/2 flow control; request iterators are consumed on a thread
of their own. Every use of the native call goes through its handle (channel._NativeCall)."""

import ctypes
import logging
import sys
import threading
import time
import weakref
from ctypes import byref, c_size_t, c_void_p

from .._native import ffi
from .._native.callbacks import registry
from . import compat, status
from . import metadata as _metadata

_LOGGER = logging.getLogger("grpchelper")

# grpcio's details of a call cancelled with cancel().
_LOCALLY_CANCELLED = (status.CANCELLED, "Locally cancelled by application!")


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
    code = ffi.gh_call_status(ptr)
    msg = ffi.gh_call_status_message(ptr)
    details = msg.decode("utf-8", "replace") if msg else ""
    if override is not None:
        code, details = override
    return _State(code, details,
                  _metadata.from_native(ffi.gh_call_initial_metadata(ptr)),
                  _metadata.from_native(ffi.gh_call_trailing_metadata(ptr)))


# What a call reports when its channel's close freed it while it ran (the library's
# words for the calls a channel's free cancels).
_CHANNEL_CLOSED = _State(status.CANCELLED, "channel closed")


def _debug_string(state):
    return '{grpc_status:%d, grpc_message:"%s"}' % (state.code, state.details)


class _CallBase(compat.RpcError, compat.Call, compat.Future):
    """What every call object shares: it is the call (grpc.Call), its future
    (grpc.Future), and the error raised when it fails (grpc.RpcError), as in grpcio.

    Subclasses provide `_outcome(timeout)` (the final _State, waiting up to `timeout`,
    FutureTimeoutError after) and `_value()` (the response of a successful call)."""

    _cancelled = False

    def _value(self):
        return None

    def code(self):
        return status.status_code(self._outcome(None).code)

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
        if state.code == status.OK:
            return None
        if self._cancelled and state.code == status.CANCELLED:
            raise compat.FutureCancelledError()
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
        except compat.RpcError:
            return sys.exc_info()[2]

    def __str__(self):
        if not self.done():
            return "<%s of in-flight RPC>" % type(self).__name__
        state = self._outcome(None)
        return '<%s of RPC that terminated with:\n\tstatus = %s\n\tdetails = "%s"\n>' % (
            type(self).__name__, status.status_code(state.code), state.details)

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



def _serialize(serializer, request):
    return compat.serialize(serializer, request, "Exception serializing request!")


def _deserialize(deserializer, raw):
    if deserializer is None:
        return raw, True
    try:
        return deserializer(raw), True
    except Exception:
        _LOGGER.exception("Exception deserializing response!")
        return None, False


# --- futures (callback API) --------------------------------------------------------
# A future in flight is a registry entry of this kind (its key is the user_data of
# gh_call_start_async), alive until its on_done has run; it holds its call (a use of the
# handle) from the start until then.
FUTURE_KIND = "call-future"


def _start_future(fut, call, ptr, start_async):
    """start_async(key) starts fut's call (ptr, a use of it the future takes over) in
    callback mode."""
    fut._call = call
    fut._ptr = ptr
    key = registry.add(FUTURE_KIND, fut)
    try:
        start_async(key)
    except BaseException:
        registry.release(key)
        call.handle.release()
        raise


@registry.entry_point(ffi.GH_MESSAGE_FN)
def _on_message(call, data, size, key):
    fut = registry.get(key)
    if fut is not None:
        fut._raw = ctypes.string_at(data, size) if size else b""


@registry.entry_point(ffi.GH_DONE_FN)
def _on_done(call, code, key):
    fut = registry.release(key)
    if fut is None:  # pragma: no cover
        return
    callbacks = ()
    try:
        callbacks = fut._complete()
    except BaseException:  # pragma: no cover
        try:
            _LOGGER.exception("internal error completing a future")
        except BaseException:
            pass
    finally:
        fut._call.handle.release()   # may free the call: allowed in its own on_done
    for cb in callbacks:
        _safe(cb)


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

    def _native(self, fn, *args, closed=None):
        """fn(pointer, *args) while the call's handle is open; `closed` once the channel's
        close has freed it."""
        handle = self._call.handle
        ptr = handle.acquire()
        if ptr is None:
            return closed
        try:
            return fn(ptr, *args)
        finally:
            handle.release()

    def _closed_state(self):
        """The outcome of a call its channel's close freed (the local one wins)."""
        ended = self._call.ended or _CHANNEL_CLOSED
        with self._cond:
            if self._state is None:
                if self._override is not None:
                    code, details = self._override
                    ended = _State(code, details, ended.initial_metadata, ended.trailing_metadata)
                self._state = ended
                self._cond.notify_all()
            return self._state

    def _fail_locally(self, code, details):
        with self._cond:
            if self._override is None:
                self._override = (code, details)
        self._native(ffi.gh_call_cancel)

    def time_remaining(self):
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())


class _CallFuture(_LiveCall):
    """The future of a single-response call (also its Call, and its error if it fails)."""

    def __init__(self, call, deserializer, timeout):
        super(_CallFuture, self).__init__(call, deserializer, timeout)
        self._ptr = None             # the call, held from the start until on_done
        self._raw = None
        self._response = None
        # self._callbacks: add_callback's and add_done_callback's, in the order given

    def _complete(self):
        """On the channel's callback thread, from on_done: the outcome; returns the
        callbacks to run."""
        ptr = self._ptr
        override = self._override
        response = None
        if self._raw is not None and ffi.gh_call_status(ptr) == status.OK and override is None:
            response, ok = _deserialize(self._deserializer, self._raw)
            if not ok:
                override = (status.INTERNAL, "Exception deserializing response!")
        elif ffi.gh_call_status(ptr) == status.OK and override is None:
            override = (status.INTERNAL, "no response message for a unary call")
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
        return callbacks

    def _outcome(self, timeout):
        with self._cond:
            if not self._cond.wait_for(lambda: self._state is not None, timeout):
                raise compat.FutureTimeoutError()
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
        self._native(ffi.gh_call_cancel)
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
        md = self._native(lambda p: _metadata.from_native(ffi.gh_call_initial_metadata(p)))
        return md if md is not None else self._outcome(None).initial_metadata


def _safe(fn, *args):
    try:
        fn(*args)
    except Exception:
        _LOGGER.exception("Exception calling callback!")


# --- request streams ------------------------------------------------------------

def _send_requests(owner, call, iterator, serializer, channel):
    """Consumes a request iterator on its own thread, sending each request; it uses the
    call (holds its handle) until the iterator is done or the call has ended."""
    ptr = call.handle.acquire()
    if ptr is None:
        return  # the channel's close has freed the call
    try:
        for request in iter(iterator):
            data = _serialize(serializer, request)
            if data is None:
                owner._fail_locally(status.INTERNAL, "Exception serializing request!")
                return
            if ffi.gh_call_send(ptr, data, len(data), 0) < 0:
                return  # the call has ended; its status tells why
        ffi.gh_call_close_send(ptr)
    except Exception:
        _LOGGER.exception("Exception iterating requests!")
        owner._fail_locally(status.UNKNOWN, "Exception iterating requests!")
    finally:
        call.handle.release()


def _start_sender(owner, call, request_iterator, serializer, channel):
    t = threading.Thread(target=_send_requests, name="grpchelper-requests",
                         args=(owner, call, request_iterator, serializer, channel),
                         daemon=True)
    # The thread holds `owner` and with it the native call until the iterator is done.
    t.start()
    return t


# --- streaming responses (blocking API) -------------------------------------------

class _ResponseStream(_LiveCall):
    """A response stream: an iterator of responses, the call, and its error if it fails.

    Once iterated, it uses the call (holds its handle) until the end of the stream, or
    until it is dropped: one use for all the responses, not one each."""

    def __init__(self, call, deserializer, timeout):
        super(_ResponseStream, self).__init__(call, deserializer, timeout)
        self._recv_lock = threading.Lock()
        self._initial = None
        self._waiter = None
        self._data = c_void_p()
        self._size = c_size_t()
        self._held = None           # while iterating: the pointer, and the finaliser
        #                             that releases it (also if the stream is dropped)

    def _finished_state(self, ptr=None):
        """The outcome, waiting for the end of the call (`ptr`: the caller holds it)."""
        with self._cond:
            if self._state is not None:
                return self._state
        if ptr is None:
            state = self._native(self._finished_state, closed=False)
            return state if state is not False else self._closed_state()
        ffi.gh_call_wait(ptr)
        with self._cond:
            if self._state is None:
                self._state = _snapshot(ptr, self._override)
            return self._state

    # iterator
    def __iter__(self):
        return self

    def __next__(self):
        with self._recv_lock:
            held = self._held
            if held is not None and ffi.gh_call_recv(held[0], byref(self._data),
                                                     byref(self._size)) == 1:
                size = self._size.value         # the usual case, first
                raw, state = (ctypes.string_at(self._data.value, size) if size else b""), None
            else:
                raw, state = self._receive(held)
            if raw is not None:
                response, ok = _deserialize(self._deserializer, raw)
                if ok:
                    return response
                self._fail_locally(status.INTERNAL, "Exception deserializing response!")
                state = self._finished_state()
                self._unhold()
        if state.code == status.OK:
            raise StopIteration()
        raise self

    next = __next__

    def _receive(self, held):
        """__next__ past its usual case: (the next response's bytes, None), or (None, the
        outcome) at the end. `held`: the stream has just read the end of the call."""
        if held is not None:
            state = self._finished_state(held[0])
            self._unhold()
            return None, state
        call = self._call
        ptr = call.handle.acquire()
        if ptr is None:             # freed by the channel's close: what was left then
            if call.pending:
                return call.pending.popleft(), None
            return None, self._closed_state()
        # Released at the end of the stream, or by the finaliser if the stream is dropped
        # first (not at interpreter exit: a daemon thread may be reading).
        release = weakref.finalize(self, call.handle.release)
        release.atexit = False
        self._held = (ptr, release)
        if ffi.gh_call_recv(ptr, byref(self._data), byref(self._size)) == 1:
            size = self._size.value
            return (ctypes.string_at(self._data.value, size) if size else b""), None
        return self._receive(self._held)

    def _unhold(self):
        held, self._held = self._held, None
        if held is not None:
            held[1]()

    # Call
    def initial_metadata(self):
        with self._cond:
            if self._initial is not None:
                return self._initial
        md = self._native(lambda p: _metadata.from_native(ffi.gh_call_initial_metadata(p)))
        if md is None:
            md = self._closed_state().initial_metadata
        with self._cond:
            self._initial = md
        return md

    def cancel(self):
        return bool(self._native(self._cancel, closed=False))

    def _cancel(self, ptr):
        with self._cond:
            if self._state is not None or ffi.gh_call_status(ptr) >= 0:
                return False
            self._cancelled = True
            if self._override is None:
                self._override = _LOCALLY_CANCELLED
        ffi.gh_call_cancel(ptr)
        return True

    def add_callback(self, callback):
        return bool(self._native(self._add_callback, callback, closed=False))

    def _add_callback(self, ptr, callback):
        with self._cond:
            if self._state is not None or ffi.gh_call_status(ptr) >= 0:
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
        return self._native(lambda p: ffi.gh_call_status(p) >= 0, closed=True)

    def _outcome(self, timeout):
        if timeout is None:
            return self._finished_state()
        with self._cond:
            self._ensure_waiter()
            if not self._cond.wait_for(lambda: self._state is not None, timeout):
                raise compat.FutureTimeoutError()
            return self._state

    def add_done_callback(self, fn):
        if not self.add_callback(lambda: fn(self)):
            _safe(fn, self)
