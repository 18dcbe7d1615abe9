"""grpc-helper's RpcClient over gh_rpc_client.

The library does the work: identity metadata (client, user, host, ip) and the stub's
api_version on every call, retries while the server is UNAVAILABLE (0.5 s, doubling,
until the client's timeout), RpcException(ERROR_RPC) naming the method and target for a
failed call, and error results (0 < r.code < ERROR_CUSTOM) raised as RpcException.
This module only finds the stub's methods (by instantiating the grpcio-tools generated
stub class on a channel that records what it asks for) and converts messages.
"""

import logging
import threading
import weakref
from ctypes import byref, c_size_t, c_void_p

from .._grpc import compat
from .._grpc import metadata as _metadata
from .._native import convert, ffi
from .._native.convert import text
from .._native.handle import NativeHandle
from ..api import ResultCode
from .errors import RpcException


# grpc-helper's trace_buffer bound.
_MAX_TRACE = 1024


def trace_buffer(message):
    """grpc-helper's trace of a message: "Type{text on one line}" (cut after 1024 chars)."""
    s = str(message).replace("\n", " ")
    if len(s) >= _MAX_TRACE:
        s = s[:_MAX_TRACE] + "..."
    return "%s{%s}" % (type(message).__name__, s)


# --- what a generated stub class is made of --------------------------------------------

class StubMethod:
    """One method of a generated stub: `kind` is the channel method the stub asked for
    (unary_unary, unary_stream, stream_unary, stream_stream), `path` "/pkg.Service/m"."""

    __slots__ = ("attribute", "kind", "path", "service", "method", "request_serializer",
                 "response_deserializer")

    def __init__(self, attribute, kind, path, request_serializer, response_deserializer):
        if isinstance(path, bytes):
            path = path.decode("utf-8")
        parts = path.split("/")
        if len(parts) != 3 or parts[0] or not parts[1] or not parts[2]:
            raise ValueError("stub method %s: path %r is not /Service/method" % (attribute, path))
        self.attribute = attribute
        self.kind = kind
        self.path = path
        self.service = parts[1]
        self.method = parts[2]
        self.request_serializer = request_serializer
        self.response_deserializer = response_deserializer

    @property
    def request_streaming(self):
        return self.kind.startswith("stream_")

    @property
    def response_streaming(self):
        return self.kind.endswith("_stream")


class _Recorded:
    """What the recording channel returns for each multi-callable a stub asks for."""

    __slots__ = ("kind", "path", "request_serializer", "response_deserializer")

    def __init__(self, kind, path, request_serializer, response_deserializer):
        self.kind = kind
        self.path = path
        self.request_serializer = request_serializer
        self.response_deserializer = response_deserializer

    def __call__(self, *args, **kwargs):  # pragma: no cover - never called
        raise RuntimeError("a recorded stub method cannot be called")


class _RecordingChannel:
    """A stand-in for grpc.Channel: generated stubs call unary_unary(path,
    request_serializer=..., response_deserializer=..., _registered_method=True) & co.
    in their constructor; this records those calls."""

    def _record(kind):
        def multi_callable(self, method, request_serializer=None, response_deserializer=None,
                           **kwargs):
            return _Recorded(kind, method, request_serializer, response_deserializer)
        multi_callable.__name__ = kind
        return multi_callable

    unary_unary = _record("unary_unary")
    unary_stream = _record("unary_stream")
    stream_unary = _record("stream_unary")
    stream_stream = _record("stream_stream")
    del _record

    def subscribe(self, callback, try_to_connect=False):  # pragma: no cover
        pass

    def unsubscribe(self, callback):  # pragma: no cover
        pass

    def close(self):  # pragma: no cover
        pass


_described = {}
_described_lock = threading.Lock()


def describe_stub(stub_class):
    """(service name, {attribute: StubMethod}) of a grpcio-tools generated stub class
    (e.g. ("pkg.MyService", {"update": ...})); service None for a stub without methods."""
    with _described_lock:
        known = _described.get(stub_class)
    if known is not None:
        return known
    stub = stub_class(_RecordingChannel())
    methods = {}
    for attribute, value in vars(stub).items():
        if isinstance(value, _Recorded):
            methods[attribute] = StubMethod(attribute, value.kind, value.path,
                                            value.request_serializer, value.response_deserializer)
    services = sorted({m.service for m in methods.values()})
    if len(services) > 1:
        raise ValueError("stub %s calls several services (%s)"
                         % (stub_class.__name__, ", ".join(services)))
    known = (services[0] if services else None, methods)
    with _described_lock:
        _described[stub_class] = known
    return known


# --- the client -------------------------------------------------------------------------

def _call_timeout(timeout):
    if timeout is None:
        return 0.0
    timeout = float(timeout)
    if timeout <= 0:
        # A deadline already passed: the library's "<= 0" means none, so ask for the
        # smallest one instead.
        return 1e-6
    return timeout


class _Method:
    """A stub method of an RpcClient: `stub.method(request, timeout=None)`."""

    def __init__(self, client, stub_name, spec):
        self._client = client
        self._stub = stub_name
        self._spec = spec
        self._c_stub = stub_name.encode("utf-8")
        self._c_method = spec.method.encode("utf-8")
        self.__name__ = spec.attribute

    def __repr__(self):
        return "<RpcClient method %s.%s (%s)>" % (self._stub, self._spec.attribute, self._spec.path)

    def _serialize(self, request):
        ser = self._spec.request_serializer
        if ser is None:
            if isinstance(request, bytes):
                return request
            raise TypeError("%s takes bytes (its stub has no serializer)" % self._spec.path)
        try:
            return ser(request)
        except Exception as e:
            raise RpcException("RPC error (on %s @ %s): Exception serializing request! (%s)"
                               % (self._spec.path, self._client.target_host, e),
                               rc=ResultCode.ERROR_RPC) from e

    def _deserialize(self, raw):
        deser = self._spec.response_deserializer
        if deser is None:
            return raw
        try:
            return deser(raw)
        except Exception as e:
            raise RpcException("RPC error (on %s @ %s): Exception deserializing response! (%s)"
                               % (self._spec.path, self._client.target_host, e),
                               rc=ResultCode.ERROR_RPC) from e

    def _trace(self, arrow, message):
        logger = self._client.logger
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("<RPC> %s %s.%s @ %s: %s", arrow, self._stub, self._spec.method,
                         self._client.target_host, trace_buffer(message))

    def _received(self, raw, check=None):
        """A response: decoded, traced, and — when the client raises — checked as
        grpc-helper checks it: only a response type with a Result `r` field."""
        response = self._deserialize(raw)
        self._trace("<<", response)
        client = self._client
        if (client._check_results if check is None else check) and _has_result(response):
            code = ffi.gh_rpc_result_code(raw, len(raw))
            if 0 < code < ResultCode.ERROR_CUSTOM:
                r = getattr(response, "r", None)
                msg = getattr(r, "msg", "")
                # grpc-helper's text, word for word (the code is the exception's rc).
                raise (client._custom_exception or RpcException)(
                    "RPC returned error: %s" % msg, rc=code)
        return response


def _has_result(response):
    """Whether the response's type has grpc-helper's `Result r` field."""
    try:
        field = type(response).DESCRIPTOR.fields_by_name.get("r")
    except AttributeError:
        return False
    return field is not None and field.message_type is not None and field.message_type.name == "Result"


class _UnaryMethod(_Method):
    def __call__(self, request, timeout=None):
        data = self._serialize(request)
        self._trace(">>", request)
        out = c_void_p()
        size = c_size_t()
        with self._client._handle.use() as ptr:
            ffi.gh_rpc_client_call(ptr, self._c_stub, self._c_method, data, len(data),
                                    _call_timeout(timeout), byref(out), byref(size))
        return self._received(convert.take_bytes(out.value, size.value))


class _StreamMethod(_Method):
    def __call__(self, request, timeout=None):
        """A generator of the responses (as grpc-helper's, the call starts at the first
        next()); the call is cancelled when the generator is closed or dropped."""
        data = self._serialize(request)
        return self._responses(request, data, _call_timeout(timeout))

    def _responses(self, request, data, timeout):
        self._trace(">>", request)
        out = c_void_p()
        with self._client._handle.use() as ptr:
            ffi.gh_rpc_client_stream(ptr, self._c_stub, self._c_method, data, len(data),
                                      timeout, byref(out))
        # Not a child of the client's handle: the library fails the streams of a client it
        # frees, and the stream reports that (RpcException) when next read.
        responses = NativeHandle("rpc_responses", out, ffi.gh_rpc_responses_free,
                                 what="response stream")
        try:
            item = c_void_p()
            size = c_size_t()
            while True:
                with responses.use() as rp:
                    more = ffi.gh_rpc_responses_next(rp, byref(item), byref(size))
                if not more:
                    return
                yield self._received(convert.take_bytes(item.value, size.value))
        finally:
            responses.close()


class _StreamRequestMethod(_Method):
    """A method that streams requests (client- or bidi-streaming): made on a channel of
    this binding to the same server, with the metadata the library gives the stub's calls
    (identity and API version). Not retried: a request iterator cannot be replayed."""

    def __call__(self, request_iterator, timeout=None):
        client = self._client
        with client._handle.use() as ptr:
            md = c_void_p()
            ffi.gh_rpc_client_call_metadata(ptr, self._c_stub, byref(md))
        md = NativeHandle("metadata", md, ffi.gh_metadata_free, what="metadata")
        try:
            with md.use() as p:
                metadata = tuple((m.key, m.value) for m in _metadata.from_native(p))
        finally:
            md.close()
        channel = client._stream_channel()
        multi = getattr(channel, self._spec.kind)(self._spec.path,
                                                   request_serializer=self._spec.request_serializer)
        self._trace(">>", "(request stream)")
        kwargs = {"metadata": metadata, "timeout": timeout}
        if self._spec.response_streaming:
            return self._responses(multi(request_iterator, **kwargs))
        try:
            raw = multi(request_iterator, **kwargs)
        except compat.RpcError as e:
            raise self._failed(e) from None
        return self._checked(raw)

    def _responses(self, call):
        try:
            for raw in call:
                yield self._checked(raw)
        except compat.RpcError as e:
            raise self._failed(e) from None
        finally:
            call.cancel()

    def _failed(self, e):
        return RpcException("RPC error (on %s @ %s): %s: %s" % (self._spec.path, self._client.target_host,
                                                                 e.code().name, e.details()),
                            rc=ResultCode.ERROR_RPC)

    def _checked(self, raw):
        """A response checked as the others (an error result raises; the auto-client,
        whose other calls the library checks, too)."""
        return self._received(raw, check=self._client._check_results or self._client._library_checks)


class RpcStub:
    """A service's stub on an RpcClient: one callable per method of the generated stub
    (`request, timeout=None`)."""

    def __init__(self, client, name, stub_class, methods):
        self._name = name
        self._stub_class = stub_class
        for attribute, spec in methods.items():
            if spec.request_streaming:
                cls = _StreamRequestMethod
            elif spec.response_streaming:
                cls = _StreamMethod
            else:
                cls = _UnaryMethod
            setattr(self, attribute, cls(client, name, spec))

    def __repr__(self):
        return "<RpcStub %s (%s)>" % (self._name, self._stub_class.__name__)


def _api_version(version):
    if version is None:
        return 0
    version = int(version)
    if version < 0:
        raise ValueError("api version must be >= 0, not %d" % version)
    return version


class RpcClient:
    """Client of managed services on one server (grpc-helper's RpcClient).

    Arguments:
        host, port: the server to connect to.
        stubs_map: {name: (GeneratedStubClass, api_version)}: `client.<name>` is a stub
            whose methods are the generated stub's; each call carries api_version
            (None or 0: none).
        timeout: how long (seconds) a call is retried while the server is unreachable
            (None or 0: not retried). Then RpcException(ERROR_RPC).
        name: the client's name (metadata `client`, in the server's logs).
        logger: a logging.Logger for debug traces of the calls (default "RpcClient").
        exception: raise on a response whose r.code is an error below ERROR_CUSTOM
            (False: return it).
        custom_exception: the class raised for such responses instead of RpcException
            (called as custom_exception(message, rc=code)).

    Methods: `client.<name>.<method>(request, timeout=None)`; `timeout` is the call's
    deadline in seconds. Server-streaming methods return a generator. Methods that
    stream requests take an iterator of requests (not retried: it cannot be replayed).
    """

    def __init__(self, host: str, port: int, stubs_map: dict, timeout: float = 60, name: str = "",
                 logger: logging.Logger = None, exception: bool = True, custom_exception=None):
        self.logger = logger if logger is not None else logging.getLogger("RpcClient")
        self.target_host = "%s:%s" % (host, port)
        self._custom_exception = custom_exception
        # Results are checked here, by response type (grpc-helper checks responses that
        # have a Result `r`); the library returns them all.
        self._check_results = bool(exception)
        self._library_checks = False
        self._channel = None
        self._channel_lock = threading.Lock()
        retry = 0.0 if timeout is None else max(0.0, float(timeout))
        raise_errors = 0
        ptr = c_void_p()
        ffi.gh_rpc_client_new(text(str(host), "host"), int(port), retry,
                               text(name or "", "name"), raise_errors, byref(ptr))
        self._handle = NativeHandle("rpc_client", ptr, ffi.gh_rpc_client_free, what="RpcClient")
        self._free = weakref.finalize(self, self._handle.close)
        self.logger.debug("Initializing RPC client for %s", self.target_host)
        for stub_name, (stub_class, version) in stubs_map.items():
            service, methods = describe_stub(stub_class)
            ver = _api_version(version)
            if service is not None:
                with self._handle.use() as p:
                    ffi.gh_rpc_client_add_stub(p, text(stub_name, "stub name"),
                                                service.encode("utf-8"), ver)
            self.logger.debug(" >> adding %s stub to client (api version: %s)", stub_name, version)
            setattr(self, stub_name, RpcStub(self, stub_name, stub_class, methods))
        self.logger.debug("RPC client ready for %s", self.target_host)

    @classmethod
    def _borrow(cls, ptr, owner, stubs_map, target_host, logger=None):
        """An RpcClient over a client the library owns (a managed server's auto-client,
        given to a load hook): its stubs are already there; `owner` is the server's
        NativeHandle, whose child the client's borrowed handle is (valid while it is
        open)."""
        self = cls.__new__(cls)
        self.logger = logger if logger is not None else logging.getLogger("RpcClient")
        self.target_host = target_host
        self._custom_exception = None
        self._check_results = False    # the library's auto-client checks them
        self._library_checks = True
        self._channel = None
        self._channel_lock = threading.Lock()
        self._handle = NativeHandle(None, ptr, what="RpcClient", parent=owner)
        self._free = weakref.finalize(self, self._handle.close)
        for stub_name, (stub_class, _version) in stubs_map.items():
            _service, methods = describe_stub(stub_class)
            setattr(self, stub_name, RpcStub(self, stub_name, stub_class, methods))
        return self

    def _stream_channel(self):
        """A channel of this binding to the server, for request-streaming calls."""
        with self._channel_lock:
            if self._channel is None:
                from .._grpc.channel import insecure_channel
                self._channel = insecure_channel(self.target_host)
            return self._channel

    def close(self):
        """Closes the connection (calls still running fail; later calls raise
        ValueError). Idempotent. Not in grpc-helper, whose clients live until collected."""
        with self._channel_lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
        self._free()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["RpcClient", "RpcStub", "describe_stub", "StubMethod"]
