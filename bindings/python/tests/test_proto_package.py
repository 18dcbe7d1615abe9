"""The helper services' .proto files ship in the package (grpchelper.api.proto_include()):
they are Protos/grpchelper/api's, under the names the generated modules register, and a
user's .proto file that imports grpchelper/api/common.proto compiles with grpcio-tools
against the wheel installed in a fresh venv, with the README's commands; its service then
runs on a grpchelper server."""

import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile

import pytest

from grpchelper import api
from _util import PKG_ROOT, build_wheel

REPO = os.path.dirname(os.path.dirname(PKG_ROOT))
SOURCE = os.path.join(REPO, "Protos", "grpchelper", "api")     # the source of the .proto files
README = os.path.join(PKG_ROOT, "README.md")
MODULES = {"common.proto": api.common_pb2, "config.proto": api.config_pb2,
           "events.proto": api.events_pb2, "logger.proto": api.logger_pb2,
           "server.proto": api.server_pb2}


def _protos(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".proto"))


# --- the package's copies ---------------------------------------------------------------

def test_the_package_holds_protos_own_files():
    include = api.proto_include()
    assert "proto_include" in api.__all__
    assert isinstance(include, str)
    assert include == os.path.join(PKG_ROOT, "grpchelper", "api", "_proto")
    shipped = os.path.join(include, "grpchelper", "api")
    assert _protos(SOURCE) == sorted(MODULES)
    assert _protos(shipped) == _protos(SOURCE)
    for name in _protos(SOURCE):
        with open(os.path.join(SOURCE, name), "rb") as f:
            source = f.read()
        with open(os.path.join(shipped, name), "rb") as f:
            assert f.read() == source, (
                "grpchelper/api/_proto/grpchelper/api/%s differs from Protos/grpchelper/api/%s: "
                "run bash Protos/generate.sh (it copies them)" % (name, name))


def test_the_files_are_under_the_names_the_modules_register():
    # A user's generated code finds its imports by these names in protobuf's pool.
    for name, module in MODULES.items():
        assert module.DESCRIPTOR.name == "grpchelper/api/" + name
        assert os.path.isfile(os.path.join(api.proto_include(), module.DESCRIPTOR.name))


def test_no_proto_files_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "__file__", str(tmp_path / "api" / "__init__.py"))
    with pytest.raises(FileNotFoundError, match=r"grpchelper\.api: the helper services' "
                       r"\.proto files are not installed \(no .*common\.proto\)"):
        api.proto_include()


# --- a user's .proto file against the installed wheel ------------------------------------

USER_PROTO = """\
syntax = "proto3";
package users;

import "grpchelper/api/common.proto";

message User {
    string name = 1;
}

message UserList {
    Result r = 1;
    repeated User users = 2;
}

service UserService {
    rpc find(Filter) returns (UserList);
    rpc ping(Empty) returns (ResultStatus);
}
"""

# Run in the venv, in the folder of the generated code: the message round trip, then one
# call of each rpc on a grpchelper server. Prints one JSON line.
USER_SCRIPT = textwrap.dedent("""
    import json
    from concurrent import futures

    import grpchelper
    from grpchelper import api
    import my_service_pb2 as pb
    import my_service_pb2_grpc as pb_grpc

    class Users(pb_grpc.UserServiceServicer):
        def find(self, request, context):
            if request.ignore_unknown:
                return pb.UserList(users=[pb.User(name=n) for n in request.names])
            return pb.UserList(r=api.Result(code=api.ResultCode.ERROR_ITEM_UNKNOWN,
                                            msg="unknown: " + ",".join(request.names)))

        def ping(self, request, context):
            return api.ResultStatus(r=api.Result(msg="pong"))

    out = {"grpchelper": grpchelper.__file__, "api": api.__file__,
           "include": api.proto_include(), "generated": pb.__file__,
           "dependencies": [d.name for d in pb.DESCRIPTOR.dependencies],
           "same_result": pb.UserList.DESCRIPTOR.fields_by_name["r"].message_type
                          is api.Result.DESCRIPTOR}
    sent = pb.UserList(r=api.Result(code=api.ResultCode.ERROR_CUSTOM, msg="m", stack="s"),
                       users=[pb.User(name="a")])
    received = pb.UserList.FromString(sent.SerializeToString())
    out["round_trip"] = received == sent and received.r.code == api.ResultCode.ERROR_CUSTOM

    executor = futures.ThreadPoolExecutor(max_workers=2)
    server = grpchelper.server(executor)
    pb_grpc.add_UserServiceServicer_to_server(Users(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpchelper.insecure_channel("127.0.0.1:%d" % port) as channel:
            stub = pb_grpc.UserServiceStub(channel)
            found = stub.find(api.Filter(names=["a", "b"], ignore_unknown=True), timeout=10)
            unknown = stub.find(api.Filter(names=["x"]), timeout=10)
            pong = stub.ping(api.Empty(), timeout=10)
    finally:
        stopped = server.stop(None).wait(10)
        executor.shutdown(wait=True)
    out["found"] = [u.name for u in found.users]
    out["unknown"] = [api.ResultCode.Name(unknown.r.code), unknown.r.msg]
    out["pong"] = [type(pong).__name__, pong.r.msg]
    out["stopped"] = stopped
    print(json.dumps(out))
""")


def readme_commands():
    """The shell block of the README's section on users' .proto files."""
    text = open(README, encoding="utf-8").read()
    m = re.search(r"^## Your own \.proto files that use the helper's messages$(.*?)^## ",
                  text, re.M | re.S)
    assert m, "README.md has no section 'Your own .proto files that use the helper's messages'"
    blocks = re.findall(r"^```sh\n(.*?)^```$", m.group(1), re.M | re.S)
    assert len(blocks) == 1, "the README's section should have one sh block: %r" % blocks
    assert "my_service.proto" in blocks[0]
    return blocks[0]


def loaded_library():
    """The libgrpchelper file this process loaded, however the package found it: a package
    installed in a venv cannot find the in-tree build, so its processes are given it as
    GRPCHELPER_LIBRARY."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "libgrpchelper" in line}
    assert len(paths) == 1, paths
    return paths.pop()


def run(args, **kwargs):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300,
                       **kwargs)
    assert r.returncode == 0, "%s\n%s%s" % (" ".join(map(str, args)), r.stdout, r.stderr)
    return r


def test_a_users_proto_compiles_against_the_wheel_in_a_fresh_venv(tmp_path):
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    for name in MODULES:
        assert "grpchelper/api/_proto/grpchelper/api/" + name in names, name

    # A venv that sees the system's grpcio, grpcio-tools and protobuf (no network needed)
    # and pip (the venv's python runs it, so it installs into the venv), but not the
    # repository: no PYTHONPATH, and every process runs outside the repository.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = str(venv / "bin") + os.pathsep + env.get("PATH", "")
    env["GRPCHELPER_LIBRARY"] = loaded_library()
    run([venv / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index",
         "--ignore-installed", wheel], env=env, cwd=tmp_path)

    user = tmp_path / "user"
    user.mkdir()
    (user / "my_service.proto").write_text(USER_PROTO)
    run(["sh", "-c", "set -e\n" + readme_commands()], env=env, cwd=user)
    assert (user / "my_service_pb2.py").is_file() and (user / "my_service_pb2_grpc.py").is_file()
    assert "from grpchelper.api import common_pb2" in (user / "my_service_pb2.py").read_text()

    r = run([venv / "bin" / "python", "-c", USER_SCRIPT], env=env, cwd=user)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    site = str(venv / "lib")
    assert out["grpchelper"].startswith(site), out["grpchelper"]   # the wheel's, not the tree's
    assert out["api"].startswith(site) and out["include"].startswith(site), out
    assert out["generated"] == str(user / "my_service_pb2.py")
    assert out["dependencies"] == ["grpchelper/api/common.proto"]
    assert out["same_result"] is True
    assert out["round_trip"] is True
    assert out["found"] == ["a", "b"]
    assert out["unknown"] == ["ERROR_ITEM_UNKNOWN", "unknown: x"]
    assert out["pong"] == ["ResultStatus", "pong"]
    assert out["stopped"] is True
