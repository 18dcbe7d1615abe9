"""Metadata between grpcio's Python form and gh_metadata lists.

grpcio's form: a sequence of (key, value) pairs; values of keys ending in "-bin" are bytes,
others str. Received metadata is a tuple of `Metadatum(key, value)` named tuples.
"""

import collections
import ctypes

from .._native import ffi
from .._native.handle import NativeHandle

Metadatum = collections.namedtuple("Metadatum", ("key", "value"))


class MetadataError(ValueError):
    """Metadata the library refuses (bad key or value); the text says which and why."""


class NativeMetadata(object):
    """A gh_metadata list built from Python pairs; use as a context manager (`with
    NativeMetadata(pairs) as md:` lends the pointer, then frees the list)."""

    __slots__ = ("handle",)

    def __init__(self, pairs):
        ptr = ctypes.c_void_p()
        ffi.gh_metadata_new(ctypes.byref(ptr))
        self.handle = NativeHandle("metadata", ptr, ffi.gh_metadata_free, what="metadata")
        try:
            with self.handle.use() as md:
                for key, value in pairs:
                    add(md, key, value)
        except BaseException:
            self.handle.close()
            raise

    def __enter__(self):
        return self.handle.acquire()

    def __exit__(self, *exc):
        self.handle.release()
        self.handle.close()


def add(ptr, key, value):
    if isinstance(key, bytes):
        key = key.decode("ascii", "replace")
    if not isinstance(key, str):
        raise MetadataError("metadata key must be str, got %r" % (key,))
    bkey = key.encode("utf-8")
    try:
        if key.endswith("-bin"):
            if isinstance(value, str):
                value = value.encode("utf-8")
            if not isinstance(value, (bytes, bytearray)):
                raise MetadataError("value of binary metadata key %r must be bytes, got %r"
                                    % (key, type(value).__name__))
            value = bytes(value)
            ffi.gh_metadata_add_bin(ptr, bkey, value, len(value))
        else:
            if isinstance(value, (bytes, bytearray)):
                value = bytes(value).decode("ascii", "replace")
            if not isinstance(value, str):
                raise MetadataError("value of metadata key %r must be str, got %r"
                                    % (key, type(value).__name__))
            if "\x00" in value:
                raise MetadataError("value of metadata key %r contains a NUL byte" % key)
            ffi.gh_metadata_add(ptr, bkey, value.encode("utf-8"))
    except ffi.InvalidArgumentError as e:
        if ffi.gh_metadata_key_is_managed(bkey):
            return      # a header the library sets itself: dropped, as grpcio drops it
        raise MetadataError(e.message) from None


def from_native(ptr, prefix=()):
    """A tuple of Metadatum from a gh_metadata list (NULL → the prefix only)."""
    out = list(prefix)
    if not ptr:
        return tuple(out)
    n = ffi.gh_metadata_count(ptr)
    key = ctypes.c_char_p()
    value = ctypes.c_void_p()
    size = ctypes.c_size_t()
    for i in range(n):
        ffi.gh_metadata_get(ptr, i, ctypes.byref(key), ctypes.byref(value), ctypes.byref(size))
        k = key.value.decode("utf-8")
        raw = ctypes.string_at(value.value, size.value) if size.value else b""
        if k.endswith("-bin"):
            out.append(Metadatum(k, raw))
        else:
            out.append(Metadatum(k, raw.decode("utf-8", "replace")))
    return tuple(out)
