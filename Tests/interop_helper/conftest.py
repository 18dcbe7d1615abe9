"""Fixtures: the ORIGINAL grpc-helper 2.3.1 as a test peer (see original.py).

- original_target: the original's install folder (installed on first use; the tests skip when
  it cannot be installed, e.g. offline on a first run, unless GRPCHELPER_REQUIRE_ORIGINAL=1);
- sample_gen: Python code for protos/sample.proto against grpc-helper-api (for the children);
- original_server: an original RpcServer (srv, config, log, sample) in a child process,
  shared by a test module, stopped at its end;
- start_original: a factory of more such servers, all stopped at the end of the test;
- original_client: run_client bound to original_server;
- metadata_recorder: a plain grpcio server answering UNIMPLEMENTED to everything and recording
  each call's method and invocation metadata.
Every child is waited for and every temporary folder removed at teardown.
"""
import os
import tempfile
import threading
from concurrent import futures
from pathlib import Path

import pytest

from . import original


@pytest.fixture(scope="session")
def original_target():
    try:
        return original.ensure_installed()
    except original.OriginalUnavailable as e:
        if os.environ.get("GRPCHELPER_REQUIRE_ORIGINAL") == "1":
            pytest.fail(f"the original grpc-helper is required but could not be installed: {e}")
        pytest.skip(f"the original grpc-helper could not be installed: {e}")


@pytest.fixture(scope="session")
def workdir():
    with tempfile.TemporaryDirectory(prefix="interop-helper-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def sample_gen(original_target, workdir):
    return original.generate_sample(workdir / "gen-original", "original", original_target)


class Servers:
    """Starts original servers in fresh workspaces under `workdir`; stop_all() stops them."""

    def __init__(self, target, gen, workdir):
        self.target, self.gen = target, gen
        self.base = Path(tempfile.mkdtemp(prefix="servers-", dir=workdir))
        self.started = []

    def __call__(self, **kwargs):
        ws = Path(tempfile.mkdtemp(prefix="srv-", dir=self.base)) / "workspace"
        srv = original.start_server(self.target, self.gen, ws, **kwargs)
        self.started.append(srv)
        return srv

    def stop_all(self):
        statuses = [srv.stop() for srv in self.started]
        return statuses


@pytest.fixture(scope="module")
def original_server(original_target, sample_gen, workdir):
    servers = Servers(original_target, sample_gen, workdir)
    srv = servers()
    yield srv
    assert servers.stop_all() == [0], srv.stderr()[-3000:]
    assert srv.lines[-1] == "STOPPED"


@pytest.fixture
def start_original(original_target, sample_gen, workdir):
    servers = Servers(original_target, sample_gen, workdir)
    yield servers
    servers.stop_all()


@pytest.fixture
def original_client(original_target, sample_gen, original_server):
    def run(calls, **kwargs):
        kwargs.setdefault("gen_dir", sample_gen)
        return original.run_client(original_target, original_server.port, calls, **kwargs)
    return run


class MetadataRecorder:
    """grpcio server on 127.0.0.1: every call is recorded as (method, [(key, value), ...]) and
    answered UNIMPLEMENTED (no handler)."""

    def __init__(self):
        import grpc
        self.calls = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(grpc.GenericRpcHandler):
            def service(self, details):
                with recorder._lock:
                    recorder.calls.append((details.method, list(details.invocation_metadata)))
                return None

        self._pool = futures.ThreadPoolExecutor(max_workers=2)
        self.server = grpc.server(self._pool)
        self.server.add_generic_rpc_handlers((Handler(),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(None).wait(10)
        self._pool.shutdown(wait=True)


@pytest.fixture
def metadata_recorder():
    rec = MetadataRecorder()
    yield rec
    rec.stop()
