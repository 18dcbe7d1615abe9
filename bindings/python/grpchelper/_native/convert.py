"""Conversions between Python values and what the C functions take and hand over:
str and paths as bytes, memory the library hands over (released with gh_free), and the
calls that take and return encoded protobuf messages."""

import ctypes
import os
from ctypes import byref, c_size_t, c_void_p

from . import ffi


def take_string(ptr):
    """The text of a char * handed over by the library (decoded as UTF-8), then gh_free'd."""
    if not ptr:
        raise MemoryError("libgrpchelper returned NULL (out of memory)")
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        ffi.gh_free(ptr)


def take_bytes(ptr, size):
    """size bytes at ptr, handed over by the library, then gh_free'd (NULL: b"")."""
    try:
        return ctypes.string_at(ptr, size) if ptr else b""
    finally:
        ffi.gh_free(ptr)


def text(value, what):
    """A str argument as UTF-8 bytes (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("%s must be a str, not %s" % (what, type(value).__name__))
    return value.encode("utf-8")


def path(value):
    """A str or os.PathLike as file-system bytes (None stays None)."""
    if value is None:
        return None
    return os.fsencode(os.fspath(value))


def message_call(fn, ptr, request, request_type, response_type):
    """fn(ptr, request bytes, len, &response, &len) on an encoded message; the response
    (released with gh_free) decoded as response_type."""
    if not isinstance(request, request_type):
        raise TypeError("expected a %s message, not %s"
                        % (request_type.__name__, type(request).__name__))
    data = request.SerializeToString()
    out = c_void_p()
    size = c_size_t()
    fn(ptr, data, len(data), byref(out), byref(size))
    return response_type.FromString(take_bytes(out.value, size.value))
