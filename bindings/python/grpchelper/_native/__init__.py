"""Layer 1: libgrpchelper itself, for the layers above (grpchelper._grpc, grpchelper._helper).

- `library`: finding and loading libgrpchelper.so.1;
- `constants`: the header's GH_* integers;
- `ffi`: every C function, declared once for ctypes (checked against the header by
  tests/test_ffi_header.py), and the exceptions of gh_error results; the helper layer's
  functions are in `ffi_helper`, the callback types (CFUNCTYPEs) in `functypes`, both
  reached as `ffi.<name>`;
- `handle`: NativeHandle, the Python side of every native handle;
- `callbacks`: the one registry of Python objects the library calls back with;
- `convert`: str, paths, memory handed over by the library, encoded messages.

Nothing here knows grpcio or grpc-helper (the one exception: a GH_ERR_RESULT becomes
grpc-helper's RpcException, imported when it happens).
"""
