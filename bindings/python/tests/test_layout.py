"""The package's layout: the public import paths keep their names, the layers import only
downwards (helper → grpcio surface → native), and no module grows past 600 lines."""

import ast
import importlib
import os

import pytest

import grpchelper

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.join(os.path.dirname(HERE), "grpchelper")

# Public module path → names that were importable from it before the package was split
# into layers (their own classes and functions; not what they imported for themselves).
PUBLIC = {
    "grpchelper.errors": ["RpcException"],
    "grpchelper.folders": ["Folders"],
    "grpchelper.config": ["Config", "ConfigHolder", "RpcStaticConfig", "ConfigSet",
                          "static_config_items"],
    "grpchelper.cli": ["RpcCliParser", "CONFIG_ITEM_DEF_PATTERN", "ConfigDictAction",
                       "config_item_def", "expanded_path"],
    "grpchelper.logs": ["RpcLogs"],
    "grpchelper.events": ["EventsListener"],
    "grpchelper.manager": ["RpcManager", "ensure_manager_attributes"],
    "grpchelper.client": ["RpcClient", "RpcStub", "StubMethod", "describe_stub",
                          "trace_buffer"],
    "grpchelper.rpc_server": ["RpcServer", "RpcServiceDescriptor", "api_versions",
                              "module_version", "discover_service", "manager_method",
                              "python_stacks"],
    "grpchelper._ffi": ["live_handles", "gh_metadata_count", "gh_server_call_request_metadata",
                        "GH_OK", "GrpcHelperError", "lib"],
}


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_public_paths_keep_their_names(path):
    module = importlib.import_module(path)
    for name in PUBLIC[path]:
        assert hasattr(module, name), "%s.%s" % (path, name)
    for name in getattr(module, "__all__", ()):
        assert hasattr(module, name), "%s.__all__ names %s" % (path, name)


def test_top_level_names_are_the_layers_objects():
    from grpchelper import _grpc, config, rpc_server
    for name in grpchelper.__all__:
        assert hasattr(grpchelper, name), name
    for name in ("server", "insecure_channel", "Server", "Channel", "StatusCode"):
        assert getattr(grpchelper, name) is getattr(_grpc, name)
    assert grpchelper.Config is config.Config and grpchelper.RpcServer is rpc_server.RpcServer
    assert grpchelper.RpcException.__module__ == "grpchelper.errors"


def _modules():
    for root, _dirs, files in os.walk(PACKAGE):
        if os.path.basename(root) in ("api", "__pycache__"):
            continue                                   # generated code
        for f in sorted(files):
            if f.endswith(".py"):
                yield os.path.relpath(os.path.join(root, f), PACKAGE)


def _module_level_imports(path):
    """Package-relative modules imported at module level ("_native.ffi", "_grpc", ...)."""
    tree = ast.parse(open(os.path.join(PACKAGE, path)).read())
    here = os.path.dirname(path).split(os.sep) if os.path.dirname(path) else []
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[:len(here) - (node.level - 1)] if node.level > 1 else list(here)
            target = base + (node.module.split(".") if node.module else [])
            for alias in node.names:
                out.add(".".join(target + ([alias.name] if not node.module else [])))
    return out


LAYERS = {"_native": 1, "_grpc": 2, "_helper": 3}


def test_layers_import_downwards_only():
    found = 0
    for path in _modules():
        layer = path.split(os.sep)[0]
        if layer not in LAYERS:
            continue
        for target in _module_level_imports(path):
            top = target.split(".")[0]
            found += 1
            assert LAYERS.get(top, 0) <= LAYERS[layer], "%s imports %s" % (path, target)
    assert found > 30


def test_no_module_is_over_600_lines():
    sizes = {p: sum(1 for _ in open(os.path.join(PACKAGE, p))) for p in _modules()}
    assert len(sizes) > 25
    assert {p: n for p, n in sizes.items() if n > 600} == {}
