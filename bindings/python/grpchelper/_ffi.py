"""The C ABI declared for ctypes, under its former path (grpchelper._ffi): the functions,
callback types and GH_* constants of grpchelper._native.ffi, and live_handles()."""

from ._native.ffi import *  # noqa: F401,F403
from ._native.ffi import __all__ as _ffi_all
from ._native.handle import live_handles

__all__ = list(_ffi_all) + ["live_handles"]
