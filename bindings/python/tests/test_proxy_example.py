"""The proxied-services example (examples/python/proxy_example.py: a main server and a
self-registering backend), run end to end by examples/run_proxy_example.sh with the Python,
C and Swift sample clients (the C and Swift ones when built: scripts/test.sh builds them
before this suite)."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PY = "%s %s/examples/python/proxy_example.py" % (sys.executable, REPO)
CLIENTS = {
    "python": ("%s %s/examples/python/rpc_client.py" % (sys.executable, REPO), None),
    "C": (os.path.join(REPO, "build", "examples", "c", "rpc_client"),) * 2,
    "swift": (os.path.join(REPO, ".build", "debug", "rpc-sample") + " call",
              os.path.join(REPO, ".build", "debug", "rpc-sample")),
}


@pytest.mark.parametrize("client", list(CLIENTS))
def test_proxy_example(client, tmp_path):
    command, needs = CLIENTS[client]
    if needs is not None and not os.path.exists(needs):
        pytest.skip("%s is not built (scripts/test.sh builds it)" % needs)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "bindings", "python"),
                                                        os.path.join(REPO, "examples", "python")]))
    r = subprocess.run(["sh", os.path.join(REPO, "examples", "run_proxy_example.sh"), str(tmp_path / "work"),
                        PY + " main", PY + " backend", command], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "proxy example OK" in r.stdout
