"""Status code, message and grpc-status-details-bin between grpcio and libgrpchelper's C ABI.

The library is loaded with ctypes from the CMake build (build/lib/libgrpchelper.so.1, or
GRPCHELPER_LIBRARY), so these tests also exercise the exported C functions from Python.
"""
import ctypes
import os
from concurrent import futures
from ctypes import CFUNCTYPE, POINTER, byref, c_char_p, c_double, c_int, c_size_t, c_uint8, c_void_p

import grpc
import pytest

from conftest import ROOT

MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
DETAILS = bytes([0, 1, 2, 254, 255]) + b"details"
GH_STATUS_NOT_FOUND = 5
GH_ERR_RPC = -505


@pytest.fixture(scope="module")
def lib():
    path = os.environ.get("GRPCHELPER_LIBRARY", os.path.join(ROOT, "build", "lib", "libgrpchelper.so.1"))
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: build it first (cmake --build build)")
    lib = ctypes.CDLL(path)
    sig = {
        "gh_server_new": (c_int, [POINTER(c_void_p)]),
        "gh_server_add_listener": (c_int, [c_void_p, c_char_p]),
        "gh_server_register": (c_int, [c_void_p, c_char_p, c_int, c_void_p, c_void_p, c_void_p]),
        "gh_server_start": (c_int, [c_void_p]),
        "gh_server_port": (c_int, [c_void_p, c_size_t, POINTER(c_int)]),
        "gh_server_shutdown": (c_int, [c_void_p, c_double]),
        "gh_server_free": (None, [c_void_p]),
        "gh_server_call_read": (c_int, [c_void_p, POINTER(POINTER(c_uint8)), POINTER(c_size_t)]),
        "gh_server_call_finish": (c_int, [c_void_p, c_int, c_char_p, c_char_p, c_size_t]),
        "gh_channel_new": (c_int, [POINTER(c_void_p), c_char_p]),
        "gh_channel_free": (None, [c_void_p]),
        "gh_call_new": (c_int, [c_void_p, c_char_p, POINTER(c_void_p)]),
        "gh_call_set_timeout": (c_int, [c_void_p, c_double]),
        "gh_call_unary": (c_int, [c_void_p, c_char_p, c_size_t, POINTER(POINTER(c_uint8)), POINTER(c_size_t)]),
        "gh_call_status": (c_int, [c_void_p]),
        "gh_call_status_message": (c_char_p, [c_void_p]),
        "gh_call_status_details": (c_int, [c_void_p, POINTER(POINTER(c_uint8)), POINTER(c_size_t)]),
        "gh_call_free": (None, [c_void_p]),
        "gh_last_error": (c_char_p, []),
    }
    for name, (restype, argtypes) in sig.items():
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = argtypes
    return lib


HANDLER = CFUNCTYPE(None, c_void_p, c_void_p)


def test_grpcio_client_reads_details_from_our_server(lib):
    @HANDLER
    def handler(call, user_data):
        data, size = POINTER(c_uint8)(), c_size_t()
        lib.gh_server_call_read(call, byref(data), byref(size))
        lib.gh_server_call_finish(call, GH_STATUS_NOT_FOUND, MESSAGE.encode(), DETAILS, len(DETAILS))

    server = c_void_p()
    assert lib.gh_server_new(byref(server)) == 0
    try:
        assert lib.gh_server_add_listener(server, b"127.0.0.1:0") == 0
        assert lib.gh_server_register(server, b"/details.S/Fail", 0, ctypes.cast(handler, c_void_p), None, None) == 0
        assert lib.gh_server_start(server) == 0, lib.gh_last_error()
        port = c_int()
        assert lib.gh_server_port(server, 0, byref(port)) == 0
        with grpc.insecure_channel(f"127.0.0.1:{port.value}") as channel:
            with pytest.raises(grpc.RpcError) as e:
                channel.unary_unary("/details.S/Fail")(b"x", timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert e.value.details() == MESSAGE
        trailers = dict(e.value.trailing_metadata())
        assert trailers["grpc-status-details-bin"] == DETAILS
    finally:
        lib.gh_server_shutdown(server, 5.0)
        lib.gh_server_free(server)


class _Status(grpc.Status):
    def __init__(self, code, details, trailing_metadata):
        self.code, self.details, self.trailing_metadata = code, details, trailing_metadata


def test_our_client_reads_details_from_grpcio(lib):
    def fail(request, context):
        context.abort_with_status(_Status(grpc.StatusCode.NOT_FOUND, MESSAGE,
                                          (("grpc-status-details-bin", DETAILS),)))

    handler = grpc.method_handlers_generic_handler("details.S", {"Fail": grpc.unary_unary_rpc_method_handler(fail)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = c_void_p()
    call = c_void_p()
    try:
        assert lib.gh_channel_new(byref(channel), f"127.0.0.1:{port}".encode()) == 0
        assert lib.gh_call_new(channel, b"/details.S/Fail", byref(call)) == 0
        assert lib.gh_call_set_timeout(call, 10.0) == 0
        resp, resp_len = POINTER(c_uint8)(), c_size_t()
        assert lib.gh_call_unary(call, b"x", 1, byref(resp), byref(resp_len)) == GH_ERR_RPC
        assert lib.gh_call_status(call) == GH_STATUS_NOT_FOUND
        assert lib.gh_call_status_message(call).decode() == MESSAGE
        data, size = POINTER(c_uint8)(), c_size_t()
        assert lib.gh_call_status_details(call, byref(data), byref(size)) == 0
        assert ctypes.string_at(data, size.value) == DETAILS
    finally:
        lib.gh_call_free(call)
        lib.gh_channel_free(channel)
        server.stop(grace=None).wait()
