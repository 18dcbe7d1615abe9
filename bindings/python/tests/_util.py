"""Small helpers shared by the binding's test modules."""

import os
import shutil
import subprocess
import sys

import grpc

PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # bindings/python


def bytes_handlers(**methods):
    """A generic handler for service t.T from {name: RpcMethodHandler} (raw bytes)."""
    return grpc.method_handlers_generic_handler("t.T", methods)


def build_wheel(tmp_path):
    """The package's wheel, built by pip (offline, no build isolation) from a copy of
    bindings/python in tmp_path, so that no build/ or egg-info lands in the tree; returns
    its path (tmp_path/dist/grpchelper-*.whl)."""
    src = tmp_path / "src"
    shutil.copytree(PKG_ROOT, src, ignore=shutil.ignore_patterns(
        "tests", "__pycache__", "*.egg-info", "build"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "--no-index", "-w", str(tmp_path / "dist"), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    wheels = list((tmp_path / "dist").glob("grpchelper-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]
