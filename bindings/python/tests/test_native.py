"""The native layer's infrastructure: the callback registry (user_data keys → Python
objects) and the native-handle class."""

import ctypes
import sys
import threading

import pytest

from grpchelper._native import ffi
from grpchelper._native.callbacks import CallbackRegistry, registry

BOUND = 10


# --- the callback registry ----------------------------------------------------------------

def test_registry_keys_objects_by_kind():
    r = CallbackRegistry()
    a, b = object(), object()
    ka, kb = r.add("one", a), r.add("two", b)
    assert ka >= 1 and kb >= 1 and ka != kb
    assert r.get(ka) is a and r.get(kb) is b
    assert r.snapshot("one") == {ka: a} and r.count() == 2 and r.count("two") == 1
    assert r.release(ka) is a
    assert r.get(ka) is None and r.release(ka) is None
    assert r.snapshot() == {kb: b}


def test_free_user_data_is_a_c_function_that_releases_its_key():
    r = CallbackRegistry()
    key = r.add("k", "value")
    free = ctypes.cast(r.free_user_data, ctypes.c_void_p)        # what the library gets
    ffi.GH_FREE_FN(free.value)(key)                              # called as C calls it
    assert r.get(key) is None
    ffi.GH_FREE_FN(free.value)(None)                             # NULL user_data: nothing


def test_registry_is_thread_safe():
    r = CallbackRegistry()
    keys = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def work(out):
        start.wait(BOUND)
        for i in range(2000):
            out.append(r.add("t", i))
        for k in out[::2]:
            assert r.release(k) is not None

    threads = [threading.Thread(target=work, args=(out,)) for out in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    assert not any(t.is_alive() for t in threads)
    every = [k for out in keys for k in out]
    assert len(set(every)) == len(every) == 16000
    assert set(r.snapshot("t")) == {k for out in keys for k in out[1::2]}


def test_entry_points_let_no_exception_reach_c(monkeypatch):
    r = CallbackRegistry()
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    @r.entry_point(ffi.GH_RPC_HANDLER_FN, on_error=lambda e: 7 if isinstance(e, KeyError) else 8)
    def handler(call, key):
        raise r.get(key)

    @r.entry_point(ffi.GH_FREE_FN)
    def void(key):
        raise RuntimeError("into C?")

    # Called through their C function pointers, as the library calls them.
    as_c = ffi.GH_RPC_HANDLER_FN(ctypes.cast(handler, ctypes.c_void_p).value)
    assert as_c(None, r.add("e", KeyError("k"))) == 7
    assert as_c(None, r.add("e", ValueError("v"))) == 8
    ffi.GH_FREE_FN(ctypes.cast(void, ctypes.c_void_p).value)(None)
    assert unraisable == []
    with pytest.raises(TypeError):                  # an int result needs on_error
        r.entry_point(ffi.GH_RPC_HANDLER_FN)


def test_library_releases_user_data_also_when_the_call_fails():
    """gh_config_new refuses a bad name and releases the validator's key itself."""
    from grpchelper import Config, RpcException
    from grpchelper.api import ConfigValidator

    def validator(name, value):
        pass

    before = registry.count("config-validator")
    with pytest.raises(RpcException):
        Config(name="Bad_name", validator=ConfigValidator.CONFIG_VALID_CUSTOM,
               custom_validator=validator)
    assert validator not in registry.snapshot("config-validator").values()
    assert registry.count("config-validator") == before
