"""The binding itself: library lookup, running without grpcio, callbacks that fail,
the GIL released while C blocks, server options, futures, and no leaks."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from concurrent import futures

import grpc
import pytest

import grpchelper
from _util import build_wheel, bytes_handlers

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)                 # bindings/python
REPO = os.path.dirname(os.path.dirname(PKG_ROOT))
LIB = os.path.join(REPO, "build", "lib", "libgrpchelper.so.1")


def run_python(code, env=None, cwd=None, timeout=120):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=e, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


# --- library lookup -------------------------------------------------------------

def copy_package(tmp_path):
    """The package alone in tmp_path, so the in-tree build is not beside it."""
    dst = tmp_path / "pkg"
    shutil.copytree(os.path.join(PKG_ROOT, "grpchelper"), dst / "grpchelper")
    return str(dst)


NO_SYSTEM = {"PKG_CONFIG_PATH": "", "PKG_CONFIG_LIBDIR": "/nonexistent", "LD_LIBRARY_PATH": ""}

WHICH_LIB = """
    import grpchelper
    maps = open("/proc/self/maps").read()
    print([l.split()[-1] for l in maps.splitlines() if "libgrpchelper" in l][0])
"""


def test_library_from_environment_variable(tmp_path):
    lib = tmp_path / "custom" / "libgrpchelper.so.1"
    lib.parent.mkdir()
    shutil.copy(LIB, lib)
    env = dict(NO_SYSTEM, GRPCHELPER_LIBRARY=str(lib))
    r = run_python(WHICH_LIB, env=env, cwd=copy_package(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(lib)


def test_library_from_pkg_config(tmp_path):
    prefix = tmp_path / "prefix"
    r = subprocess.run(["cmake", "--install", os.path.join(REPO, "build"), "--prefix", str(prefix)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    pcdirs = [str(p.parent) for p in prefix.rglob("grpchelper.pc")]
    assert pcdirs
    env = dict(NO_SYSTEM, PKG_CONFIG_PATH=pcdirs[0], PKG_CONFIG_LIBDIR="")
    r = run_python(WHICH_LIB, env=env, cwd=copy_package(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(str(prefix))


def test_library_from_system_linker_path(tmp_path):
    libdir = tmp_path / "linker"
    libdir.mkdir()
    shutil.copy(LIB, libdir / "libgrpchelper.so.1")
    env = dict(NO_SYSTEM, LD_LIBRARY_PATH=str(libdir))
    r = run_python(WHICH_LIB, env=env, cwd=copy_package(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(libdir / "libgrpchelper.so.1")


def test_library_from_in_tree_build():
    env = dict(NO_SYSTEM)
    r = run_python(WHICH_LIB, env=env, cwd=PKG_ROOT)
    assert r.returncode == 0, r.stderr
    assert os.path.realpath(r.stdout.strip()) == os.path.realpath(LIB)


def test_import_error_lists_every_try(tmp_path):
    env = dict(NO_SYSTEM, GRPCHELPER_LIBRARY=str(tmp_path / "missing.so"))
    r = run_python("import grpchelper", env=env, cwd=copy_package(tmp_path))
    assert r.returncode != 0
    assert "ImportError: cannot load libgrpchelper; tried, in order:" in r.stderr
    for what in ("GRPCHELPER_LIBRARY", "missing.so", "pkg-config", "system linker path",
                 "in-tree build"):
        assert what in r.stderr


def test_library_too_old_is_refused(tmp_path):
    code = """
        import grpchelper._ffi as f
    """
    # A library that is not libgrpchelper at all (no gh_version) is refused by name.
    env = dict(NO_SYSTEM, GRPCHELPER_LIBRARY="libz.so.1")
    r = run_python(code, env=env, cwd=copy_package(tmp_path))
    assert r.returncode != 0
    assert "libz.so.1: not libgrpchelper (no gh_version)" in r.stderr


def test_library_without_a_declared_function_is_refused_by_name():
    """A library older than the package (a function of the table missing) fails the
    import with an ImportError naming what it lacks."""
    r = run_python("""
        import ctypes
        import grpchelper._native.ffi as f
        try:
            f._declare({"gh_strdup": (ctypes.c_void_p, [ctypes.c_char_p], None),
                        "gh_not_in_any_library": (ctypes.c_int, [], None)})
        except ImportError as e:
            print(e)
    """, cwd=PKG_ROOT)
    assert r.returncode == 0, r.stderr
    assert "lacks gh_not_in_any_library, which this package uses" in r.stdout
    assert "gh_strdup" not in r.stdout.split("lacks")[1]


# --- without grpcio ---------------------------------------------------------------

def test_works_without_grpcio():
    code = """
        import sys
        sys.modules["grpc"] = None          # import grpc now fails
        import grpchelper as g
        assert not g.HAVE_GRPCIO
        assert g.StatusCode.NOT_FOUND.value[0] == 5

        def echo(req, ctx):
            if req == b"fail":
                ctx.abort(g.StatusCode.NOT_FOUND, "no such thing")
            return req[::-1]

        def count(req, ctx):
            for i in range(int(req)):
                yield b"%d" % i

        class Denied(g.Status):
            code = g.StatusCode.PERMISSION_DENIED
            details = "denied"
            trailing_metadata = (("why", "asked"),)

        class Deny(g.ServerInterceptor):
            def intercept_service(self, continuation, details):
                if ("deny", "yes") in details.invocation_metadata:
                    return g.unary_unary_rpc_method_handler(
                        lambda req, ctx: ctx.abort_with_status(Denied()))
                return continuation(details)

        h = g.method_handlers_generic_handler("t.T", {
            "Echo": g.unary_unary_rpc_method_handler(echo),
            "Count": g.unary_stream_rpc_method_handler(count),
        })
        s = g.server(2, handlers=(h,), interceptors=(Deny(),))
        port = s.add_insecure_port("127.0.0.1:0")
        s.start()
        with g.insecure_channel("127.0.0.1:%d" % port) as ch:
            assert ch.unary_unary("/t.T/Echo")(b"abc") == b"cba"
            assert list(ch.unary_stream("/t.T/Count")(b"3")) == [b"0", b"1", b"2"]
            try:
                ch.unary_unary("/t.T/Echo")(b"fail")
                raise SystemExit("no error")
            except g.RpcError as e:
                assert e.code() is g.StatusCode.NOT_FOUND, e.code()
                assert e.details() == "no such thing"
            try:
                ch.unary_unary("/t.T/Echo")(b"abc", metadata=(("deny", "yes"),))
                raise SystemExit("not denied")
            except g.RpcError as e:
                assert (e.code(), e.details()) == (g.StatusCode.PERMISSION_DENIED, "denied")
                assert ("why", "asked") in e.trailing_metadata()
        s.stop(None).wait()
        print("ok")
    """
    r = run_python(code, cwd=PKG_ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


# --- exceptions inside callbacks never cross into C -----------------------------

def test_failing_deserializer_and_callbacks(serve, channels):
    ran = []
    second_ran = threading.Event()

    def bad_deserializer(raw):
        raise ValueError("cannot parse")

    def handler(req, ctx):
        ctx.add_callback(lambda: 1 / 0)                 # raises: logged, not fatal
        ctx.add_callback(lambda: (ran.append("second"), second_ran.set()))  # still runs
        return req

    s, target = serve(bytes_handlers(
        Bad=grpc.unary_unary_rpc_method_handler(handler, request_deserializer=bad_deserializer),
        Ok=grpc.unary_unary_rpc_method_handler(handler)))
    ch = channels(target)
    with pytest.raises(grpc.RpcError) as e:
        ch.unary_unary("/t.T/Bad")(b"x")
    assert e.value.code() == grpc.StatusCode.INTERNAL
    assert e.value.details() == "Exception deserializing request!"
    assert ch.unary_unary("/t.T/Ok")(b"y") == b"y"
    assert second_ran.wait(10) and ran == ["second"]

    # A client-side deserializer that fails, and a done-callback that raises.
    def bad_response(raw):
        raise ValueError("nope")
    with pytest.raises(grpc.RpcError) as e:
        ch.unary_unary("/t.T/Ok", response_deserializer=bad_response)(b"z")
    assert e.value.code() == grpc.StatusCode.INTERNAL
    fut = ch.unary_unary("/t.T/Ok").future(b"f")
    done = threading.Event()
    fut.add_done_callback(lambda f: 1 / 0)
    fut.add_done_callback(lambda f: done.set())
    assert fut.result(10) == b"f"
    assert done.wait(10)


# --- the GIL is released while C blocks ----------------------------------------

def test_many_python_threads_progress_at_once(serve, channels):
    barrier = threading.Barrier(10, timeout=20)

    def meet(req, ctx):
        barrier.wait()      # passes only when 10 handlers run at the same time
        return req

    s, target = serve(bytes_handlers(Meet=grpc.unary_unary_rpc_method_handler(meet)), pool=10)
    ch = channels(target)
    results = [None] * 10

    def client(i):
        results[i] = ch.unary_unary("/t.T/Meet")(b"%d" % i, timeout=30)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert results == [b"%d" % i for i in range(10)]


# --- server options and surface --------------------------------------------------

@pytest.mark.parametrize("kind", ["grpcio", "grpchelper"])
def test_maximum_concurrent_rpcs(serve, channels, kind):
    release = threading.Event()
    entered = threading.Semaphore(0)

    def hold(req, ctx):
        entered.release()
        release.wait(20)
        return req

    s, target = serve(bytes_handlers(Hold=grpc.unary_unary_rpc_method_handler(hold)),
                      kind=kind, pool=4, maximum_concurrent_rpcs=2)
    ch = channels(target)
    f1 = ch.unary_unary("/t.T/Hold").future(b"1")
    f2 = ch.unary_unary("/t.T/Hold").future(b"2")
    assert entered.acquire(timeout=10) and entered.acquire(timeout=10)
    with pytest.raises(grpc.RpcError) as e:
        ch.unary_unary("/t.T/Hold")(b"3", timeout=10)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    release.set()
    assert f1.result(10) == b"1" and f2.result(10) == b"2"


@pytest.mark.parametrize("kind", ["grpcio", "grpchelper"])
def test_unix_socket_port(tmp_path, channels, kind):
    s = (grpchelper.server(2) if kind == "grpchelper"
         else grpc.server(futures.ThreadPoolExecutor(2)))
    s.add_generic_rpc_handlers((bytes_handlers(
        Echo=grpc.unary_unary_rpc_method_handler(lambda r, c: r)),))
    path = tmp_path / "s.sock"
    try:
        assert s.add_insecure_port("unix:%s" % path) == 1
        s.start()
        ch = channels("unix:%s" % path)
        assert ch.unary_unary("/t.T/Echo")(b"over unix") == b"over unix"
    finally:
        s.stop(None).wait(10)


def test_interceptor_and_handler_precedence(serve, channels):
    # grpcio's abstract types, under the package too (`import grpchelper as grpc`)
    assert grpchelper.ServerInterceptor is grpc.ServerInterceptor
    assert grpchelper.Status is grpc.Status

    class Deny(grpc.ServerInterceptor):
        def intercept_service(self, continuation, details):
            if ("deny", "yes") in details.invocation_metadata:
                return grpc.unary_unary_rpc_method_handler(
                    lambda req, ctx: ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "denied"))
            return continuation(details)

    class Opaque(grpc.GenericRpcHandler):
        def service(self, details):
            if details.method == "/t.T/Dynamic":
                return grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"dynamic")
            return None

    first = bytes_handlers(Echo=grpc.unary_unary_rpc_method_handler(lambda r, c: b"first"))
    second = bytes_handlers(Echo=grpc.unary_unary_rpc_method_handler(lambda r, c: b"second"))
    s, target = serve(first, Opaque(), second, interceptors=(Deny(),))
    ch = channels(target)
    assert ch.unary_unary("/t.T/Echo")(b"") == b"first"
    assert ch.unary_unary("/t.T/Dynamic")(b"") == b"dynamic"
    with pytest.raises(grpc.RpcError) as e:
        ch.unary_unary("/t.T/Echo")(b"", metadata=(("deny", "yes"),))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as e:
        ch.unary_unary("/t.T/Missing")(b"")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_registered_methods_win_over_generic(channels):
    s = grpchelper.server(2)
    s.add_generic_rpc_handlers((bytes_handlers(
        Echo=grpc.unary_unary_rpc_method_handler(lambda r, c: b"generic")),))
    s.add_registered_method_handlers("t.T", {
        "Echo": grpc.unary_unary_rpc_method_handler(lambda r, c: b"registered")})
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    try:
        assert channels("127.0.0.1:%d" % port).unary_unary("/t.T/Echo")(b"") == b"registered"
        with pytest.raises(RuntimeError):
            s.start()
    finally:
        assert s.stop(None).wait(10)
    assert s.wait_for_termination(1) is False


@pytest.mark.parametrize("module", [grpc, grpchelper], ids=["grpcio", "grpchelper"])
def test_busy_port_and_so_reuseport(module):
    """As grpcio's on Linux: grpc.so_reuseport is on by default, so a second server may bind
    a port another one with it holds; with ("grpc.so_reuseport", 0) the port is busy."""
    first = module.server(futures.ThreadPoolExecutor(1))
    sharing = module.server(futures.ThreadPoolExecutor(1))
    alone = module.server(futures.ThreadPoolExecutor(1), options=[("grpc.so_reuseport", 0)])
    try:
        port = first.add_insecure_port("127.0.0.1:0")
        first.start()
        target = "127.0.0.1:%d" % port
        assert sharing.add_insecure_port(target) == port
        with pytest.raises(RuntimeError) as e:
            alone.add_insecure_port(target)
        assert target in str(e.value)
    finally:
        for s in (first, sharing, alone):
            s.stop(None)


def test_busy_port_without_reuseport_is_an_error(serve):
    s, target = serve(bytes_handlers())
    other = grpchelper.server(1, options=[("grpc.so_reuseport", 0)])
    with pytest.raises(RuntimeError) as e:
        other.add_insecure_port(target)
    assert target in str(e.value)


def test_invalid_metadata_is_a_clear_error(serve, channels):
    s, target = serve(bytes_handlers(Echo=grpc.unary_unary_rpc_method_handler(lambda r, c: r)))
    ch = channels(target)
    for md in ((("Bad Key", "v"),), (("k", "line\nbreak"),)):
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/t.T/Echo")(b"", metadata=md)
        assert e.value.code() == grpc.StatusCode.INTERNAL
        assert e.value.details().startswith("Invalid metadata")


def test_futures_and_with_call(serve, channels):
    release = threading.Event()

    def slow(req, ctx):
        ctx.send_initial_metadata((("early", "yes"),))
        release.wait(20)
        ctx.set_trailing_metadata((("late", "yes"),))
        return req

    s, target = serve(bytes_handlers(Slow=grpc.unary_unary_rpc_method_handler(slow)))
    ch = channels(target)
    fut = ch.unary_unary("/t.T/Slow").future(b"x")
    with pytest.raises(grpc.FutureTimeoutError):
        fut.result(timeout=0.05)
    assert fut.running() and not fut.done()
    assert ("early", "yes") in fut.initial_metadata()
    release.set()
    assert fut.result(10) == b"x"
    assert fut.done() and fut.code() == grpc.StatusCode.OK
    assert ("late", "yes") in fut.trailing_metadata()
    resp, call = ch.unary_unary("/t.T/Slow").with_call(b"y")
    assert resp == b"y" and call.code() == grpc.StatusCode.OK

    # A cancelled future.
    release.clear()
    fut = ch.unary_unary("/t.T/Slow").future(b"z")
    assert fut.cancel()
    with pytest.raises(grpc.FutureCancelledError):
        fut.result(10)
    assert fut.cancelled()
    release.set()


def test_closed_channel_refuses_calls(serve):
    s, target = serve(bytes_handlers(Echo=grpc.unary_unary_rpc_method_handler(lambda r, c: r)))
    ch = grpchelper.insecure_channel(target)
    assert ch.unary_unary("/t.T/Echo")(b"a") == b"a"
    ch.close()
    ch.close()
    with pytest.raises(ValueError):
        ch.unary_unary("/t.T/Echo")(b"a")


# --- no leaks ---------------------------------------------------------------------

LEAK_SCRIPT = """
    import gc, json, sys, threading
    import grpc, grpchelper
    from grpchelper import _ffi
    from grpchelper._native.callbacks import registry

    def unary(req, ctx): return req
    def server_stream(req, ctx):
        yield req; yield req
    def client_stream(it, ctx): return b"".join(it)
    def bidi(it, ctx):
        for r in it: yield r

    h = grpc.method_handlers_generic_handler("t.T", {
        "U": grpc.unary_unary_rpc_method_handler(unary),
        "SS": grpc.unary_stream_rpc_method_handler(server_stream),
        "CS": grpc.stream_unary_rpc_method_handler(client_stream),
        "B": grpc.stream_stream_rpc_method_handler(bidi),
    })
    s = grpchelper.server(4, handlers=(h,))
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    ch = grpchelper.insecure_channel("127.0.0.1:%d" % port)
    u, ss = ch.unary_unary("/t.T/U"), ch.unary_stream("/t.T/SS")
    cs, bi = ch.stream_unary("/t.T/CS"), ch.stream_stream("/t.T/B")

    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

    def round_(n):
        for i in range(n):
            assert u(b"u", metadata=(("k", "v"),), timeout=30) == b"u"
            assert list(ss(b"s")) == [b"s", b"s"]
            assert cs(iter((b"a", b"b"))) == b"ab"
            assert list(bi(iter((b"x", b"y")))) == [b"x", b"y"]
            if i % 5 == 0:
                assert u.future(b"f").result(30) == b"f"

    def counts():
        gc.collect()
        return dict(handles=_ffi.live_handles(), futures=registry.count("call-future"),
                    objects=len(gc.get_objects()), threads=threading.active_count())

    round_(int(sys.argv[1]) // 10)      # warm up: caches, thread pools, allocator arenas
    before, rss0 = counts(), rss()
    round_(int(sys.argv[1]))
    after, rss1 = counts(), rss()
    ch.close()
    s.stop(None).wait()
    del s                               # a stopped server is freed when dropped
    gc.collect()
    print(json.dumps(dict(before=before, after=after, rss0=rss0, rss1=rss1,
                          end=_ffi.live_handles(), registry=registry.count("server-dispatcher"))))
"""


def test_no_leak_over_ten_thousand_calls_of_each_pattern():
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(LEAK_SCRIPT), "10000"],
                       cwd=PKG_ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout.strip().splitlines()[-1])
    before, after = m["before"], m["after"]
    # Native handles: only the server and the channel stay, before and after.
    assert before["handles"] == {"server": 1, "channel": 1}
    assert after["handles"] == before["handles"]
    assert after["futures"] == 0
    assert after["threads"] == before["threads"]
    assert after["objects"] - before["objects"] < 2000, m
    # 40 000 calls: a leak of even 500 bytes per call would add 20 MB.
    assert m["rss1"] - m["rss0"] < 16 * 1024 * 1024, m
    # Everything freed once the stopped server is dropped, its dispatchers with it.
    assert m["end"] == {} and m["registry"] == 0


# --- packaging ----------------------------------------------------------------------

def test_pip_builds_a_pure_python_wheel(tmp_path):
    wheel = build_wheel(tmp_path)
    assert wheel.name.endswith("-py3-none-any.whl")   # pure Python, no compiled extension
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "grpchelper/__init__.py" in names and "grpchelper/_ffi.py" in names
    for layer in ("_native/ffi.py", "_native/library.py", "_native/handle.py",
                  "_grpc/server.py", "_grpc/channel.py", "_grpc/status.py",
                  "_helper/config.py", "_helper/rpc_server.py", "_helper/client.py"):
        assert "grpchelper/" + layer in names, layer
    assert "grpchelper/api/__init__.py" in names and "grpchelper/api/config_pb2.py" in names
    for public in ("errors", "folders", "config", "cli", "logs", "manager", "client", "rpc_server"):
        assert "grpchelper/%s.py" % public in names, public
    assert not [n for n in names if n.endswith(".so")]
    # Installed alone into a fresh folder, it imports (finding the library by env var).
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target",
                        str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_python("import grpchelper; print(grpchelper.library_version())",
                   env=dict(NO_SYSTEM, PYTHONPATH=str(target), GRPCHELPER_LIBRARY=LIB),
                   cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0.8.0"
