"""Channel connectivity as grpcio's: Channel.subscribe / unsubscribe, grpc.ChannelConnectivity
and grpc.channel_ready_future, over the library's connectivity watches
(gh_channel_watch_connectivity).

Each subscription is one watch of the channel, whose user_data is a registry entry of
kind SUBSCRIPTION_KIND (a _Subscription: the callback), released by the library once the
watch has ended and no delivery runs. The library delivers the current state at once, then
every change, in order, one at a time per watch, on the channel's callback threads; the
thunk hands each to the callback as a ChannelConnectivity member, logging what it raises.

As in grpcio, closing the channel (or dropping it) ends its subscriptions first: the
SHUTDOWN the library delivers to a watch when the channel is freed is not passed on, and
no callback starts once close() has returned.
"""

import logging
import threading
import time
from ctypes import byref, c_uint64

from .._native import ffi
from .._native.callbacks import registry
from . import compat

_LOGGER = logging.getLogger("grpchelper")

ChannelConnectivity = compat.ChannelConnectivity

# gh_connectivity_state → ChannelConnectivity (grpcio's values are (state number, name)).
_STATES = {int(member.value[0]): member for member in ChannelConnectivity}

# A subscription is a registry entry of this kind while its watch lasts.
SUBSCRIPTION_KIND = "connectivity-subscription"

# grpcio's log messages.
_CALLBACK_ERROR = "Exception calling channel subscription callback!"
_DONE_CALLBACK_ERROR = 'Exception calling connectivity future "done" callback!'


class _Subscription(object):
    """One subscribe(): its callback, and its watch's id once the library has made it.
    `ended`: unsubscribed, or the channel closed (nothing more is delivered)."""

    __slots__ = ("callback", "watch", "ended")

    def __init__(self, callback):
        self.callback = callback
        self.watch = None
        self.ended = False


@registry.entry_point(ffi.GH_CONNECTIVITY_FN)
def _on_state(state, key):
    sub = registry.get(key)
    if sub is None or sub.ended:
        return
    try:
        sub.callback(_STATES[state])
    except Exception:  # noqa: BLE001 - logged, as grpcio does; later states still come
        _LOGGER.exception(_CALLBACK_ERROR)


class Subscriptions(object):
    """A channel's subscriptions, in the order they were made. It holds the channel's
    handle, not the Channel: the channel's finaliser holds it, and calls end() before the
    handle's close frees the channel."""

    def __init__(self, handle):
        self._handle = handle
        self._lock = threading.Lock()
        self._subs = []
        self._ended = False

    def subscribe(self, callback, try_to_connect=False):
        """grpcio's Channel.subscribe. On a closed channel nothing is delivered (grpcio's
        raises nothing either)."""
        sub = _Subscription(callback)
        ptr = self._handle.acquire()
        if ptr is None:
            return
        try:
            with self._lock:
                if self._ended:
                    return
                self._subs.append(sub)
            key = registry.add(SUBSCRIPTION_KIND, sub)
            watch = c_uint64()
            try:
                # On failure the library has released `key` (free_user_data) already.
                ffi.gh_channel_watch_connectivity(ptr, 1 if try_to_connect else 0, _on_state,
                                                  key, registry.free_user_data, byref(watch))
            except BaseException:
                self._forget(sub)
                raise
            with self._lock:
                sub.watch = watch.value
                ended = sub.ended
            if ended:           # unsubscribed (or the channel closed) while it was made
                ffi.gh_channel_unwatch_connectivity(ptr, watch.value)
        finally:
            self._handle.release()

    def unsubscribe(self, callback):
        """grpcio's Channel.unsubscribe: ends the first subscription of `callback` (none:
        nothing happens). From any thread, also from the callback itself."""
        with self._lock:
            for i, sub in enumerate(self._subs):
                if callback == sub.callback:
                    del self._subs[i]
                    sub.ended = True
                    watch = sub.watch
                    break
            else:
                return
        if watch is None:
            return              # subscribe() is still making it: it unwatches it
        ptr = self._handle.acquire()
        if ptr is None:
            return              # the channel's free ends the watch
        try:
            ffi.gh_channel_unwatch_connectivity(ptr, watch)
        finally:
            self._handle.release()

    def _forget(self, sub):
        with self._lock:
            sub.ended = True
            if sub in self._subs:
                self._subs.remove(sub)

    def end(self):
        """The channel is closing: no state is delivered from now on (the library's
        SHUTDOWN neither), no subscription is made any more. The watches end when the
        channel is freed."""
        with self._lock:
            self._ended = True
            subs, self._subs = self._subs, []
            for sub in subs:
                sub.ended = True


# --- grpc.channel_ready_future ----------------------------------------------------------

class _ChannelReadyFuture(compat.Future):
    """grpcio's _ChannelReadyFuture: done once the channel is READY (result() None), or
    cancelled. Waits with a subscription that keeps the channel connecting."""

    def __init__(self, channel):
        self._condition = threading.Condition()
        self._channel = channel
        self._matured = False
        self._cancelled = False
        self._done_callbacks = []

    def _block(self, timeout):
        until = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while True:
                if self._cancelled:
                    raise compat.FutureCancelledError()
                if self._matured:
                    return
                if until is None:
                    self._condition.wait()
                else:
                    remaining = until - time.monotonic()
                    if remaining < 0:
                        raise compat.FutureTimeoutError()
                    self._condition.wait(timeout=remaining)

    def _update(self, connectivity):
        with self._condition:
            if self._cancelled or self._matured or connectivity is not ChannelConnectivity.READY:
                return
            self._matured = True
            self._channel.unsubscribe(self._update)
            self._condition.notify_all()
            done_callbacks, self._done_callbacks = self._done_callbacks, None
        self._run(done_callbacks)

    def _run(self, done_callbacks):
        for done_callback in done_callbacks:
            try:
                done_callback(self)
            except Exception:  # noqa: BLE001 - logged, as grpcio does
                _LOGGER.exception(_DONE_CALLBACK_ERROR)

    def cancel(self):
        with self._condition:
            if self._matured:
                return False
            if self._cancelled:
                return True     # grpcio's second cancel() raises TypeError
            self._cancelled = True
            self._channel.unsubscribe(self._update)
            self._condition.notify_all()
            done_callbacks, self._done_callbacks = self._done_callbacks, None
        self._run(done_callbacks)
        return True

    def cancelled(self):
        with self._condition:
            return self._cancelled

    def running(self):
        with self._condition:
            return not self._cancelled and not self._matured

    def done(self):
        with self._condition:
            return self._cancelled or self._matured

    def result(self, timeout=None):
        self._block(timeout)

    def exception(self, timeout=None):
        self._block(timeout)

    def traceback(self, timeout=None):
        self._block(timeout)

    def add_done_callback(self, fn):
        with self._condition:
            if not self._cancelled and not self._matured:
                self._done_callbacks.append(fn)
                return
        fn(self)

    def start(self):
        with self._condition:
            self._channel.subscribe(self._update, try_to_connect=True)


def channel_ready_future(channel):
    """grpc.channel_ready_future: a grpc.Future done once `channel` (grpchelper's, or any
    with grpcio's subscribe / unsubscribe) is READY. It subscribes with
    try_to_connect=True: the channel keeps connecting until then."""
    ready_future = _ChannelReadyFuture(channel)
    ready_future.start()
    return ready_future
