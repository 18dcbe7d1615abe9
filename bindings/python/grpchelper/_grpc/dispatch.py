"""Serving one call of a gh_server: the C entry point (one ctypes thunk for every method,
finding the method's dispatcher by its user_data key and never letting an exception
escape into C), handler resolution (registered paths, generic handlers, interceptors) and
the four cardinalities, as grpcio runs them."""

import ctypes
import logging
from ctypes import byref, c_size_t, c_void_p

from .._native import ffi
from .._native.callbacks import registry
from . import compat, status
from .context import ServicerContext, _DeserializeError, _deserialize, _RequestIterator, \
    _serialize

_LOGGER = logging.getLogger("grpchelper")

# A server's dispatchers are registry entries of this kind (their key is the user_data of
# gh_server_register), released by the library's free_user_data when it frees the server.
KIND = "server-dispatcher"


def _register(dispatcher):
    return registry.add(KIND, dispatcher)


@registry.entry_point(ffi.GH_HANDLER_FN)
def _handler_thunk(call, key):
    try:
        dispatcher = registry.get(key)
        if dispatcher is None:
            ffi.gh_server_call_finish(call, status.UNIMPLEMENTED, b"Method not found!", None, 0)
            return
        dispatcher.serve(call)
    except BaseException:  # never let an exception cross into C
        try:
            _LOGGER.exception("internal error serving a call")
            ffi.gh_server_call_finish(call, status.INTERNAL, b"internal error in grpchelper", None, 0)
        except BaseException:  # pragma: no cover
            pass


class _HandlerCallDetails(
        compat.HandlerCallDetails if compat.HAVE_GRPCIO else object):
    __slots__ = ("method", "invocation_metadata")

    def __init__(self, method, invocation_metadata):
        self.method = method
        self.invocation_metadata = invocation_metadata


class _ServerState(object):
    """What the dispatchers share: the server's handle (the parent of the calls'),
    handlers, interceptors, limits."""

    def __init__(self):
        self.handle = None
        self.registered = {}        # path -> method handler (resolved at start)
        self.opaque = []            # generic handlers that cannot be enumerated, in order
        self.interceptors = ()
        self.reflection = False     # enable_reflection(): describe the services at start

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
        method = self.path
        if method is None:
            method = ffi.gh_server_call_method(call).decode("utf-8", "replace")
        try:
            ctx = ServicerContext(call, method, state)
        except ValueError:                    # pragma: no cover - the server is closed
            ffi.gh_server_call_finish(call, status.UNAVAILABLE, b"server is shutting down", None, 0)
            return
        try:
            handler = self.handler
            if handler is None or state.interceptors:
                try:
                    handler = state.resolve(method, ctx)
                except Exception:
                    _LOGGER.exception("Exception servicing handler")
                    ctx._finish(status.UNKNOWN, "Error in service handler!")
                    return
                if handler is None:
                    ctx._finish(status.UNIMPLEMENTED, "Method not found!")
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
        ctx._abort(status.UNKNOWN, "RPC Aborted")
    elif isinstance(exception, _DeserializeError):
        pass  # already answered INTERNAL
    elif exception in ctx._rpc_errors:
        ctx._finish(status.CANCELLED, "Cancelled")
    else:
        try:
            details = template.format(exception)
        except Exception:
            details = "Calling application raised unprintable Exception!"
        _LOGGER.exception(details)
        ctx._abort(status.UNKNOWN, details)


def _unary_request(ctx, deserializer):
    data = c_void_p()
    size = c_size_t()
    if ctx._closed_by_server():              # pragma: no cover - the server's close
        return None, False
    # On the handler's thread, which holds the call.
    rc = ffi.gh_server_call_read(ctx._ptr, byref(data), byref(size))
    if rc == 1:
        raw = ctypes.string_at(data.value, size.value) if size.value else b""
        try:
            return _deserialize(ctx, raw, deserializer), True
        except _DeserializeError:
            return None, False
    if rc == 0:
        ctx._abort(status.UNIMPLEMENTED, '"{}" requires exactly one request message.'.format(ctx._method))
    return None, False


def _send_single(ctx, response, serializer):
    if ctx._code is not None and status.application_code(ctx._code) != status.OK:
        ctx._finish()
        return
    data = _serialize(response, serializer)
    if data is None:
        ctx._abort(status.INTERNAL, "Failed to serialize response!")
        return
    if ctx._send(data):
        ctx._finish(here=True)


def _send_stream(ctx, iterator, serializer):
    while True:
        try:
            response = next(iterator)
        except StopIteration:
            break
        except Exception as e:
            _behavior_failed(ctx, e, "Exception iterating responses: {}")
            return
        if not ctx._is_active_here():
            return
        data = _serialize(response, serializer)
        if data is None:
            ctx._abort(status.INTERNAL, "Failed to serialize response!")
            return
        if not ctx._send(data):
            return
    ctx._finish(here=True)


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
        return ffi.GH_BIDI_STREAMING if handler.response_streaming else ffi.GH_CLIENT_STREAMING
    return ffi.GH_SERVER_STREAMING if handler.response_streaming else ffi.GH_UNARY
