"""The events examples (examples/*/events_example*), run end to end by
examples/run_events_example.sh: the Python trio, and Python's listener and sender against
the C and Swift servers and theirs against the Python server (the same command lines, the
same wire), when those are built (scripts/test.sh builds them before this suite)."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PY = "%s %s/examples/python/events_example.py" % (sys.executable, REPO)
C = os.path.join(REPO, "build", "examples", "c", "events_example")
SWIFT = os.path.join(REPO, ".build", "debug", "events-example")

# name: (server, listener, sender, the binary it needs)
TRIOS = {
    "python": (PY, PY, PY, None),
    "C server/python clients": (C, PY, PY, C),
    "python server/C clients": (PY, C, C, C),
    "swift server/python clients": (SWIFT, PY, PY, SWIFT),
    "python server/swift clients": (PY, SWIFT, SWIFT, SWIFT),
}


@pytest.mark.parametrize("trio", list(TRIOS))
def test_events_example(trio, tmp_path):
    server, listener, sender, needs = TRIOS[trio]
    if needs is not None and not os.path.exists(needs):
        pytest.skip("%s is not built (scripts/test.sh builds it)" % needs)
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "bindings", "python"))
    r = subprocess.run(["sh", os.path.join(REPO, "examples", "run_events_example.sh"), str(tmp_path / "work"),
                        server + " serve", listener + " listen", sender + " send"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "events example OK" in r.stdout


def readme_excerpts():
    """The README's code blocks marked `<!-- excerpt: PATH -->`: (path, lines)."""
    import re
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    return [(m.group(1), m.group(2).splitlines())
            for m in re.finditer(r"<!-- excerpt: (\S+) -->\n```\w*\n(.*?)```", text, re.S)]


def test_the_readme_excerpts_are_the_examples_code():
    """Each excerpt's lines are lines of its program, in the program's order (indentation
    aside): the README shows code the examples script runs."""
    excerpts = readme_excerpts()
    assert sorted(p for p, _ in excerpts) == ["examples/c/events_example.c", "examples/python/events_example.py",
                                              "examples/python/proxy_example.py",
                                              "examples/swift/EventsExample/EventsExample.swift"]
    for path, lines in excerpts:
        source = [line.strip() for line in open(os.path.join(REPO, path), encoding="utf-8")]
        at = 0
        for line in (x.strip() for x in lines):
            if not line:
                continue
            assert line in source[at:], "%s: %r is not in the program (after line %d)" % (path, line, at)
            at = source.index(line, at) + 1
