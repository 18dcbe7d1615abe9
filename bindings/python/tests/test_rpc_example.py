"""The seed's RpcServer / RpcClient usage examples, run end to end by
examples/run_rpc_sample.sh: the Python pair, and the Python server and client against the
C and Swift examples (the same command lines, the same wire), when those are built
(scripts/test.sh builds them before this suite)."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PY_SERVER = "%s %s/examples/python/rpc_server.py" % (sys.executable, REPO)
PY_CLIENT = "%s %s/examples/python/rpc_client.py" % (sys.executable, REPO)
C_SERVER = os.path.join(REPO, "build", "examples", "c", "rpc_server")
C_CLIENT = os.path.join(REPO, "build", "examples", "c", "rpc_client")
SWIFT = os.path.join(REPO, ".build", "debug", "rpc-sample")

PAIRS = {
    "python/python": (PY_SERVER, PY_CLIENT, None),
    "python server/C client": (PY_SERVER, C_CLIENT, C_CLIENT),
    "C server/python client": (C_SERVER, PY_CLIENT, C_SERVER),
    "swift server/python client": (SWIFT + " serve", PY_CLIENT, SWIFT),
    "python server/swift client": (PY_SERVER, SWIFT + " call", SWIFT),
}


@pytest.mark.parametrize("pair", list(PAIRS))
def test_rpc_sample_pair(pair, tmp_path):
    server, client, needs = PAIRS[pair]
    if needs is not None and not os.path.exists(needs):
        pytest.skip("%s is not built (scripts/test.sh builds it)" % needs)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "bindings", "python"),
                                                        os.path.join(REPO, "examples", "python")]))
    r = subprocess.run(["sh", os.path.join(REPO, "examples", "run_rpc_sample.sh"), str(tmp_path / "work"),
                        server, client], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rpc sample OK" in r.stdout
