"""examples/python/helper_host.py end to end, through the same checks as the C and Swift
host examples (examples/run_helper_host.sh): version, command line, config layers and the
persisted user item, log files; argparse's usage errors exit 2."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PKG_ROOT = os.path.join(REPO, "bindings", "python")


def test_python_helper_host_example(tmp_path):
    env = dict(os.environ, PYTHONPATH=PKG_ROOT)
    r = subprocess.run(["sh", os.path.join(REPO, "examples", "run_helper_host.sh"), "2", str(tmp_path / "work"),
                        sys.executable, os.path.join(REPO, "examples", "python", "helper_host.py")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "helper_host example OK" in r.stdout
