"""Equivalence matrix: each behaviour runs on every pairing of {grpcio, grpchelper}
server x {grpcio, grpchelper} client (the `matrix` fixture, see conftest.py) with the
same assertions. Only grpcio's API is used; grpcio x grpcio is the reference.

Every wait is bounded (BOUND seconds, reached only on failure); nothing sleeps to
synchronise.
"""
import os
import queue
import shutil
import tempfile
import threading
import time

import grpc
import pytest

BOUND = 10  # seconds: every wait's bound (as in conftest.py), reached only on failure

KiB = 1024
MiB = 1024 * KiB
T = BOUND  # timeout of calls that are expected to finish

PATTERNS = ["unary", "server_stream", "client_stream", "bidi"]
STREAMING_RESPONSE = {"server_stream", "bidi"}


# ---- helpers -----------------------------------------------------------------------

def echo_servicer(matrix):
    """The plain behaviour of the four methods.

    Unary: echoes payload/text/count.
    ServerStream: `count` messages text=f"{text}{i}", count=i.
    ClientStream: count = sum of counts, text = concatenated texts, payload = joined.
    Bidi: one response per request, text echoed, count doubled."""
    Msg = matrix.Msg

    def Unary(request, context):
        return Msg(payload=request.payload, text=request.text, count=request.count)

    def ServerStream(request, context):
        for i in range(request.count):
            yield Msg(text=f"{request.text}{i}", count=i)

    def ClientStream(request_iterator, context):
        total, texts, payloads = 0, [], []
        for m in request_iterator:
            total += m.count
            texts.append(m.text)
            payloads.append(m.payload)
        return Msg(count=total, text="".join(texts), payload=b"".join(payloads))

    def Bidi(request_iterator, context):
        for m in request_iterator:
            yield Msg(text=m.text, count=m.count * 2)

    return matrix.servicer(Unary=Unary, ServerStream=ServerStream,
                           ClientStream=ClientStream, Bidi=Bidi)


def method(stub, pattern):
    return {"unary": stub.Unary, "server_stream": stub.ServerStream,
            "client_stream": stub.ClientStream, "bidi": stub.Bidi}[pattern]


def run_call(stub, pattern, requests, **call_kwargs):
    """Makes one call of `pattern` (`requests`: a list of messages; the first is the
    request of a unary-request pattern). Returns (responses, error, call): the responses
    received (a list), the grpc.RpcError that ended the call (or None), and the object
    carrying initial_metadata()/trailing_metadata()/code()/details()."""
    call_kwargs.setdefault("timeout", T)
    multi = method(stub, pattern)
    request = requests[0] if pattern in ("unary", "server_stream") else iter(requests)
    if pattern in STREAMING_RESPONSE:
        call = multi(request, **call_kwargs)
        responses = []
        try:
            for r in call:
                responses.append(r)
        except grpc.RpcError as e:
            return responses, e, call
        return responses, None, call
    try:
        response, call = multi.with_call(request, **call_kwargs)
    except grpc.RpcError as e:
        return [], e, e
    return [response], None, call


def user_md(metadata, prefix="x-"):
    """The (key, value) pairs of `metadata` whose keys the tests own."""
    return {(k, v) for k, v in (metadata or ()) if k.startswith(prefix)}


def expect_error(error, code, details=None):
    assert error is not None, f"expected {code}, the call succeeded"
    assert isinstance(error, grpc.RpcError)
    assert error.code() == code, (error.code(), error.details())
    if details is not None:
        assert error.details() == details


# ---- the four call patterns --------------------------------------------------------

def test_unary(matrix):
    srv = matrix.start_server(echo_servicer(matrix))
    stub = matrix.stub(srv)
    resp = stub.Unary(matrix.Msg(payload=b"\x00\x01\xff", text="héllo", count=7), timeout=T)
    assert (resp.payload, resp.text, resp.count) == (b"\x00\x01\xff", "héllo", 7)
    resp, call = stub.Unary.with_call(matrix.Msg(text="again"), timeout=T)
    assert resp.text == "again"
    assert call.code() == grpc.StatusCode.OK


def test_unary_empty_message(matrix):
    srv = matrix.start_server(echo_servicer(matrix))
    assert matrix.stub(srv).Unary(matrix.Msg(), timeout=T) == matrix.Msg()


def test_server_streaming(matrix):
    srv = matrix.start_server(echo_servicer(matrix))
    responses = list(matrix.stub(srv).ServerStream(matrix.Msg(text="m", count=25), timeout=T))
    assert [(r.text, r.count) for r in responses] == [(f"m{i}", i) for i in range(25)]


def test_server_streaming_no_messages(matrix):
    srv = matrix.start_server(echo_servicer(matrix))
    call = matrix.stub(srv).ServerStream(matrix.Msg(count=0), timeout=T)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


def test_client_streaming(matrix):
    srv = matrix.start_server(echo_servicer(matrix))
    requests = [matrix.Msg(count=i, text=str(i), payload=bytes([i])) for i in range(10)]
    resp = matrix.stub(srv).ClientStream(iter(requests), timeout=T)
    assert resp.count == 45
    assert resp.text == "0123456789"
    assert resp.payload == bytes(range(10))


def test_client_streaming_no_messages(matrix):
    srv = matrix.start_server(echo_servicer(matrix))
    resp = matrix.stub(srv).ClientStream(iter([]), timeout=T)
    assert (resp.count, resp.text) == (0, "")


def test_bidi_ping_pong(matrix):
    """The request iterator yields request i+1 only after the client has seen response i:
    only an implementation that consumes the request stream on its own thread (not the
    one reading responses, and not by draining it before the call starts) completes."""
    srv = matrix.start_server(echo_servicer(matrix))
    stub = matrix.stub(srv)
    feed = queue.Queue()
    starved = threading.Event()

    def requests():
        while True:
            try:
                item = feed.get(timeout=BOUND)
            except queue.Empty:
                starved.set()
                return
            if item is None:
                return
            yield item

    responses = stub.Bidi(requests(), timeout=T)
    for i in range(8):
        feed.put(matrix.Msg(text=f"ping {i}", count=i))
        r = next(responses)
        assert (r.text, r.count) == (f"ping {i}", 2 * i)
    feed.put(None)
    assert list(responses) == []
    assert responses.code() == grpc.StatusCode.OK
    assert not starved.is_set(), "the request iterator waited in vain for a response"


def test_bidi_bulk(matrix):
    srv = matrix.start_server(echo_servicer(matrix))
    requests = [matrix.Msg(text=str(i), count=i) for i in range(200)]
    responses = list(matrix.stub(srv).Bidi(iter(requests), timeout=T))
    assert [(r.text, r.count) for r in responses] == [(str(i), 2 * i) for i in range(200)]


@pytest.fixture
def short_tmp_dir():
    d = tempfile.mkdtemp(prefix="gh-matrix-", dir="/tmp")  # short: sun_path is 108 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_unix_socket(matrix, short_tmp_dir):
    address = f"unix:{short_tmp_dir}/s.sock"
    matrix.start_server(echo_servicer(matrix), address=address)
    stub = matrix.stub(address)
    assert stub.Unary(matrix.Msg(text="over unix"), timeout=T).text == "over unix"
    assert [r.count for r in stub.ServerStream(matrix.Msg(count=3), timeout=T)] == [0, 1, 2]


# ---- metadata ----------------------------------------------------------------------

SENT_MD = (
    ("x-text", "hello"),
    ("x-multi", "one"),
    ("x-multi", "two"),
    ("x-data-bin", b"\x00\xff\xfe\x80 not utf-8 \xc3"),
    ("x-empty-bin", b""),
)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_metadata_round_trip(matrix, pattern):
    """Client metadata (text, repeated keys, -bin with non-UTF-8 bytes) reaches the
    server, which echoes it in its initial metadata (plus x-where=initial) and its
    trailing metadata (plus x-where=trailing)."""
    Msg = matrix.Msg
    seen = {}

    def echo_md(context):
        received = user_md(context.invocation_metadata())
        seen["md"] = received
        ordered = sorted(received, key=repr)
        context.send_initial_metadata(tuple(ordered) + (("x-where", "initial"),))
        context.set_trailing_metadata(tuple(ordered) + (("x-where", "trailing"),))

    def Unary(request, context):
        echo_md(context)
        return Msg(text="u")

    def ServerStream(request, context):
        echo_md(context)
        yield Msg(text="s1")
        yield Msg(text="s2")

    def ClientStream(request_iterator, context):
        echo_md(context)
        return Msg(text="".join(m.text for m in request_iterator))

    def Bidi(request_iterator, context):
        echo_md(context)
        for m in request_iterator:
            yield m

    srv = matrix.start_server(matrix.servicer(Unary=Unary, ServerStream=ServerStream,
                                              ClientStream=ClientStream, Bidi=Bidi))
    stub = matrix.stub(srv)
    responses, error, call = run_call(stub, pattern, [Msg(text="a"), Msg(text="b")],
                                      metadata=SENT_MD)
    assert error is None, error
    assert responses
    sent = set(SENT_MD)
    assert seen["md"] == sent
    assert user_md(call.initial_metadata()) == sent | {("x-where", "initial")}
    assert user_md(call.trailing_metadata()) == sent | {("x-where", "trailing")}
    assert call.code() == grpc.StatusCode.OK
    # -bin values are bytes, the others str, on both sides.
    for k, v in call.initial_metadata():
        if k.startswith("x-"):
            assert isinstance(v, bytes if k.endswith("-bin") else str), (k, v)


# ---- deadlines ---------------------------------------------------------------------

# grpcio's server-side time_remaining() can exceed the client's timeout by a few ms
# (observed: 0.3002 for 0.3, 5.0086 for 5): grpc-timeout is rounded up when encoded
# (to 1 ms below 1 s, to 10 ms below 10 s) and the server adds it to a cached clock.
REMAINING_SLACK = 0.05

@pytest.mark.parametrize("pattern", ["unary", "server_stream"])
def test_deadline_exceeded(matrix, pattern):
    """The handler blocks until its RPC ends; the client's 0.3 s deadline ends it: the
    client sees DEADLINE_EXCEEDED and the handler sees the end (its callback runs)."""
    Msg = matrix.Msg
    timeout = 0.3
    ended = matrix.event()
    handler_done = threading.Event()
    seen = {}

    def block(context):
        seen["context"] = context
        try:
            seen["remaining"] = context.time_remaining()
            seen["registered"] = context.add_callback(ended.set)
            ended.wait(BOUND)
            seen["active_after"] = context.is_active()
        finally:
            handler_done.set()

    def Unary(request, context):
        block(context)
        return Msg(text="late")

    def ServerStream(request, context):
        block(context)
        yield Msg(text="late")

    srv = matrix.start_server(matrix.servicer(Unary=Unary, ServerStream=ServerStream))
    stub = matrix.stub(srv)
    start = time.monotonic()
    responses, error, _ = run_call(stub, pattern, [Msg()], timeout=timeout)
    elapsed = time.monotonic() - start
    expect_error(error, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert responses == []
    assert elapsed < 5, f"the deadline of {timeout} s took {elapsed:.2f} s"
    assert ended.wait(BOUND), "the handler did not observe the end of its RPC"
    assert seen["registered"] is True
    assert 0 < seen["remaining"] <= timeout + REMAINING_SLACK, seen["remaining"]
    assert handler_done.wait(BOUND)
    assert seen["active_after"] is False
    assert seen["context"].is_active() is False


def test_deadline_not_reached(matrix):
    seen = {}

    def Unary(request, context):
        seen["remaining"] = context.time_remaining()
        return request

    srv = matrix.start_server(matrix.servicer(Unary=Unary))
    assert matrix.stub(srv).Unary(matrix.Msg(text="in time"), timeout=5).text == "in time"
    assert 0 < seen["remaining"] <= 5 + REMAINING_SLACK, seen["remaining"]


# ---- client cancellation -----------------------------------------------------------

def test_client_cancel_server_stream(matrix):
    """The client reads one message and cancels: its iterator raises CANCELLED, and the
    server sees the RPC end (callback runs, is_active() False)."""
    Msg = matrix.Msg
    ended = matrix.event()
    seen = {}

    def ServerStream(request, context):
        seen["context"] = context
        seen["registered"] = context.add_callback(ended.set)
        yield Msg(text="first", count=0)
        # grpcio may never resume the generator once the call is cancelled (it closes
        # it at the yield above); if it does, this waits for the cancellation.
        ended.wait(BOUND)
        yield Msg(text="second", count=1)

    srv = matrix.start_server(matrix.servicer(ServerStream=ServerStream))
    stub = matrix.stub(srv)
    responses = stub.ServerStream(Msg(count=1), timeout=T)
    first = next(responses)
    assert first.text == "first"
    responses.cancel()
    with pytest.raises(grpc.RpcError) as e:
        next(responses)
    assert e.value.code() == grpc.StatusCode.CANCELLED
    assert responses.code() == grpc.StatusCode.CANCELLED
    assert ended.wait(BOUND), "the server did not observe the cancellation"
    assert seen["registered"] is True
    assert seen["context"].is_active() is False


# ---- compression -------------------------------------------------------------------

ALGORITHMS = [pytest.param(grpc.Compression.Gzip, id="gzip"),
              pytest.param(grpc.Compression.Deflate, id="deflate")]
BIG = 1 * MiB
SMALL_ON_WIRE = 100 * KiB  # what 1 MiB of zeros may cost compressed (really ~1-5 KiB)


def size_servicer(matrix, compress_on=None):
    """Unary: answers count=len(payload), text "zeros" if the payload is all zeros; if
    request.count > 0, also a payload of request.count zero bytes. If the request's text
    is "compress", the handler calls context.set_compression(compress_on)."""
    Msg = matrix.Msg

    def Unary(request, context):
        if request.text == "compress":
            context.set_compression(compress_on)
        zeros = request.payload == bytes(len(request.payload))
        return Msg(count=len(request.payload), text="zeros" if zeros else "other",
                   payload=bytes(request.count))

    return matrix.servicer(Unary=Unary)


def measured(proxy, fn):
    """Runs fn(); returns (its result, bytes up, bytes down) through `proxy`."""
    up0, down0 = proxy.counts()
    result = fn()
    up1, down1 = proxy.counts()
    return result, up1 - up0, down1 - down0


def check_size_response(resp):
    assert (resp.count, resp.text) == (BIG, "zeros")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_compression_per_call(matrix, tcp_proxy, algorithm):
    srv = matrix.start_server(size_servicer(matrix))
    proxy = tcp_proxy(srv.port)
    stub = matrix.stub(proxy.target)
    request = matrix.Msg(payload=bytes(BIG))
    stub.Unary(matrix.Msg(), timeout=T)  # connection set up outside the measurements

    resp, up_plain, _ = measured(proxy, lambda: stub.Unary(request, timeout=T))
    check_size_response(resp)
    resp, up_compressed, _ = measured(
        proxy, lambda: stub.Unary(request, timeout=T, compression=algorithm))
    check_size_response(resp)
    assert up_plain > BIG, up_plain
    assert up_compressed < SMALL_ON_WIRE, up_compressed


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_compression_per_channel(matrix, tcp_proxy, algorithm):
    srv = matrix.start_server(size_servicer(matrix))
    proxy = tcp_proxy(srv.port)
    plain = matrix.stub(proxy.target)
    compressed = matrix.stub(proxy.target, compression=algorithm)
    request = matrix.Msg(payload=bytes(BIG))
    plain.Unary(matrix.Msg(), timeout=T)
    compressed.Unary(matrix.Msg(), timeout=T)

    resp, up_plain, _ = measured(proxy, lambda: plain.Unary(request, timeout=T))
    check_size_response(resp)
    resp, up_compressed, _ = measured(proxy, lambda: compressed.Unary(request, timeout=T))
    check_size_response(resp)
    assert up_plain > BIG, up_plain
    assert up_compressed < SMALL_ON_WIRE, up_compressed


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_compression_server_default(matrix, tcp_proxy, algorithm):
    """server(..., compression=algorithm) compresses the responses."""
    srv = matrix.start_server(size_servicer(matrix), compression=algorithm)
    proxy = tcp_proxy(srv.port)
    stub = matrix.stub(proxy.target)
    stub.Unary(matrix.Msg(), timeout=T)
    resp, _, down = measured(proxy, lambda: stub.Unary(matrix.Msg(count=BIG), timeout=T))
    assert resp.payload == bytes(BIG)
    assert down < SMALL_ON_WIRE, down


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_compression_set_by_handler(matrix, tcp_proxy, algorithm):
    """context.set_compression(algorithm) compresses that call's response only."""
    srv = matrix.start_server(size_servicer(matrix, compress_on=algorithm))
    proxy = tcp_proxy(srv.port)
    stub = matrix.stub(proxy.target)
    stub.Unary(matrix.Msg(), timeout=T)
    resp, _, down_plain = measured(proxy, lambda: stub.Unary(matrix.Msg(count=BIG), timeout=T))
    assert resp.payload == bytes(BIG)
    resp, _, down_compressed = measured(
        proxy, lambda: stub.Unary(matrix.Msg(count=BIG, text="compress"), timeout=T))
    assert resp.payload == bytes(BIG)
    assert down_plain > BIG, down_plain
    assert down_compressed < SMALL_ON_WIRE, down_compressed


# ---- errors: abort, abort_with_status, set_code, exceptions ------------------------

def failing_servicer(matrix, fail, before=0):
    """Every method calls fail(context) after consuming the requests (request-streaming
    patterns) and sending `before` responses (response-streaming patterns)."""
    Msg = matrix.Msg

    def Unary(request, context):
        return fail(context)

    def ServerStream(request, context):
        for i in range(before):
            yield Msg(count=i)
        fail(context)

    def ClientStream(request_iterator, context):
        for _ in request_iterator:
            pass
        return fail(context)

    def Bidi(request_iterator, context):
        for i, _ in zip(range(before), request_iterator):
            yield Msg(count=i)
        fail(context)

    return matrix.servicer(Unary=Unary, ServerStream=ServerStream,
                           ClientStream=ClientStream, Bidi=Bidi)


def requests_for(matrix, n=3):
    return [matrix.Msg(count=i) for i in range(n)]


def expected_before(pattern, before):
    return list(range(before)) if pattern in STREAMING_RESPONSE else []


@pytest.mark.parametrize("pattern", PATTERNS)
def test_abort(matrix, pattern):
    def fail(context):
        context.abort(grpc.StatusCode.NOT_FOUND, "nope")

    srv = matrix.start_server(failing_servicer(matrix, fail, before=2))
    responses, error, _ = run_call(matrix.stub(srv), pattern, requests_for(matrix))
    expect_error(error, grpc.StatusCode.NOT_FOUND, "nope")
    assert [r.count for r in responses] == expected_before(pattern, 2)


class Status:
    """What grpc_status.rpc_status.to_status() builds: a grpc.Status."""

    def __init__(self, code, details, trailing_metadata):
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


@pytest.mark.parametrize("pattern", ["unary", "server_stream"])
def test_abort_with_status(matrix, pattern):
    trailers = (("x-why", "because"), ("x-why-bin", b"\xff\x00\xfe"))

    def fail(context):
        context.abort_with_status(
            Status(grpc.StatusCode.FAILED_PRECONDITION, "not now", trailers))

    srv = matrix.start_server(failing_servicer(matrix, fail, before=1))
    responses, error, _ = run_call(matrix.stub(srv), pattern, requests_for(matrix))
    expect_error(error, grpc.StatusCode.FAILED_PRECONDITION, "not now")
    assert user_md(error.trailing_metadata()) == set(trailers)
    assert [r.count for r in responses] == expected_before(pattern, 1)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_set_code_and_details(matrix, pattern):
    """set_code + set_details, then the handler returns (None for unary responses, the
    end of the generator after one message for streaming responses)."""
    def fail(context):
        context.set_code(grpc.StatusCode.PERMISSION_DENIED)
        context.set_details("denied")
        context.set_trailing_metadata((("x-after", "set_code"),))
        return None

    srv = matrix.start_server(failing_servicer(matrix, fail, before=1))
    responses, error, _ = run_call(matrix.stub(srv), pattern, requests_for(matrix))
    expect_error(error, grpc.StatusCode.PERMISSION_DENIED, "denied")
    assert user_md(error.trailing_metadata()) == {("x-after", "set_code")}
    assert [r.count for r in responses] == expected_before(pattern, 1)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_unhandled_exception(matrix, pattern):
    """An exception escaping a handler: UNKNOWN. grpcio's details are "Exception calling
    application: <e>" when the handler function raises, and "Exception iterating
    responses: <e>" when a response generator raises (it always does here for the
    streaming-response patterns: the generator's body runs on iteration)."""
    def fail(context):
        raise RuntimeError("boom")

    srv = matrix.start_server(failing_servicer(matrix, fail, before=1))
    responses, error, _ = run_call(matrix.stub(srv), pattern, requests_for(matrix))
    expect_error(error, grpc.StatusCode.UNKNOWN)
    if pattern in STREAMING_RESPONSE:
        assert error.details() == "Exception iterating responses: boom"
    else:
        assert error.details() == "Exception calling application: boom"
    assert [r.count for r in responses] == expected_before(pattern, 1)


@pytest.mark.parametrize("pattern", ["server_stream", "bidi"])
def test_unhandled_exception_before_streaming(matrix, pattern):
    """A streaming-response handler that is a plain function (not a generator) and raises
    when called: "Exception calling application: <e>"."""
    def raises(request_or_iterator, context):
        raise ValueError("no stream for you")

    srv = matrix.start_server(
        matrix.servicer(**{"server_stream": {"ServerStream": raises},
                           "bidi": {"Bidi": raises}}[pattern]))
    responses, error, _ = run_call(matrix.stub(srv), pattern, requests_for(matrix))
    expect_error(error, grpc.StatusCode.UNKNOWN,
                 "Exception calling application: no stream for you")
    assert responses == []


@pytest.mark.parametrize("pattern", ["server_stream", "bidi"])
def test_trailers_only_error(matrix, pattern):
    """A streaming handler that fails before sending anything: the client gets the
    status and the trailing metadata, and no user key in its initial metadata (in
    particular not the trailers)."""
    def fail(context):
        context.set_trailing_metadata((("x-trailer", "only"),))
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "early")

    srv = matrix.start_server(failing_servicer(matrix, fail, before=0))
    responses, error, call = run_call(matrix.stub(srv), pattern, requests_for(matrix),
                                      metadata=(("x-client", "hi"),))
    expect_error(error, grpc.StatusCode.FAILED_PRECONDITION, "early")
    assert responses == []
    assert user_md(call.initial_metadata()) == set()
    assert user_md(call.trailing_metadata()) == {("x-trailer", "only")}
    assert call.code() == grpc.StatusCode.FAILED_PRECONDITION


# ---- UNIMPLEMENTED -----------------------------------------------------------------

@pytest.mark.parametrize("path", [pytest.param("/matrix.Matrix/Nope", id="unknown-method"),
                                  pytest.param("/nope.Nope/Unary", id="unknown-service")])
def test_unknown_method(matrix, path):
    srv = matrix.start_server(echo_servicer(matrix))
    channel = matrix.channel(srv)
    Msg = matrix.Msg
    unary = channel.unary_unary(path, request_serializer=Msg.SerializeToString,
                                response_deserializer=Msg.FromString)
    with pytest.raises(grpc.RpcError) as e:
        unary(Msg(), timeout=T)
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
    streaming = channel.unary_stream(path, request_serializer=Msg.SerializeToString,
                                     response_deserializer=Msg.FromString)
    with pytest.raises(grpc.RpcError) as e:
        list(streaming(Msg(), timeout=T))
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
    # The server is still fine.
    assert matrix.pb.MatrixStub(channel).Unary(Msg(text="ok"), timeout=T).text == "ok"


@pytest.mark.parametrize("pattern", PATTERNS)
def test_method_not_overridden(matrix, pattern):
    """A servicer that does not override a method: the generated base answers
    UNIMPLEMENTED "Method not implemented!"."""
    srv = matrix.start_server(matrix.servicer())
    responses, error, _ = run_call(matrix.stub(srv), pattern, requests_for(matrix))
    expect_error(error, grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")
    assert responses == []


# ---- message sizes -----------------------------------------------------------------

def test_large_message_round_trip(matrix):
    payload = os.urandom(3 * MiB)
    srv = matrix.start_server(echo_servicer(matrix))
    resp = matrix.stub(srv).Unary(matrix.Msg(payload=payload), timeout=T)
    assert len(resp.payload) == len(payload)
    assert resp.payload == payload


def test_request_over_server_limit(matrix):
    """A 5 MiB request to a server with the default 4 MiB receive limit."""
    called = threading.Event()

    def Unary(request, context):
        called.set()
        return matrix.Msg()

    srv = matrix.start_server(matrix.servicer(Unary=Unary))
    stub = matrix.stub(srv)
    with pytest.raises(grpc.RpcError) as e:
        stub.Unary(matrix.Msg(payload=bytes(5 * MiB)), timeout=T)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not called.is_set(), "the handler received an over-limit request"
    assert stub.Unary(matrix.Msg(payload=bytes(MiB)), timeout=T) == matrix.Msg()


def test_response_over_client_limit(matrix):
    """A 5 MiB response to a client with the default 4 MiB receive limit."""
    srv = matrix.start_server(size_servicer(matrix))
    stub = matrix.stub(srv)
    with pytest.raises(grpc.RpcError) as e:
        stub.Unary(matrix.Msg(count=5 * MiB), timeout=T)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(stub.Unary(matrix.Msg(count=MiB), timeout=T).payload) == MiB


# ---- concurrency -------------------------------------------------------------------

def test_concurrent_calls(matrix):
    """100 calls from 10 threads (10 each) on one channel."""
    srv = matrix.start_server(echo_servicer(matrix), max_workers=16)
    stub = matrix.stub(srv)
    results = {}
    errors = []

    def worker(t):
        try:
            for i in range(10):
                resp = stub.Unary(matrix.Msg(text=f"{t}/{i}", count=t * 100 + i), timeout=T)
                results[(t, i)] = (resp.text, resp.count)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(3 * BOUND)
    assert not any(th.is_alive() for th in threads), "calls did not finish"
    assert errors == []
    assert results == {(t, i): (f"{t}/{i}", t * 100 + i) for t in range(10) for i in range(10)}


# ---- graceful shutdown -------------------------------------------------------------

def test_stop_with_grace_lets_calls_finish(matrix):
    """stop(5) with a call in flight: new calls fail UNAVAILABLE, the in-flight call
    completes once its handler is released, then the returned event is set."""
    Msg = matrix.Msg
    entered = threading.Event()
    release = matrix.event()

    def Unary(request, context):
        entered.set()
        release.wait(BOUND)
        return Msg(text="finished")

    srv = matrix.start_server(matrix.servicer(Unary=Unary))
    stub = matrix.stub(srv)
    in_flight = stub.Unary.future(Msg(), timeout=T)
    assert entered.wait(BOUND)

    stopped = srv.server.stop(5)
    assert isinstance(stopped, threading.Event)
    with pytest.raises(grpc.RpcError) as e:
        stub.Unary(Msg(), timeout=1.5)  # on the channel that has the call in flight
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.RpcError) as e:
        matrix.stub(srv).Unary(Msg(), timeout=1.5)  # on a new channel
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert not stopped.is_set(), "stopped while a call was in flight within the grace"
    assert not in_flight.done()

    release.set()
    assert in_flight.result(timeout=BOUND).text == "finished"
    assert in_flight.code() == grpc.StatusCode.OK
    assert stopped.wait(BOUND), "stop(5) did not finish after the last call"


def test_stop_grace_expires(matrix):
    """stop(0.3) with a handler that waits for its RPC to end: the grace expires, the
    call is cancelled (the client sees UNAVAILABLE or CANCELLED), the handler sees the
    end, and the returned event is set."""
    Msg = matrix.Msg
    entered = threading.Event()
    ended = matrix.event()
    seen = {}

    def Unary(request, context):
        seen["registered"] = context.add_callback(ended.set)
        entered.set()
        ended.wait(BOUND)
        seen["active_after"] = context.is_active()
        return Msg(text="too late")

    srv = matrix.start_server(matrix.servicer(Unary=Unary))
    stub = matrix.stub(srv)
    in_flight = stub.Unary.future(Msg(), timeout=T)
    assert entered.wait(BOUND)

    start = time.monotonic()
    stopped = srv.server.stop(0.3)
    assert isinstance(stopped, threading.Event)
    error = in_flight.exception(timeout=BOUND)
    assert error is not None, "the in-flight call succeeded"
    assert error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), error
    assert ended.wait(BOUND), "the handler did not observe the end of its RPC"
    assert seen["registered"] is True
    assert stopped.wait(BOUND), "stop(0.3) did not finish"
    assert time.monotonic() - start < 5
