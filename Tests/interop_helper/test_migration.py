"""Migration proof (bindings/python/MIGRATING.md): programs written against the ORIGINAL
grpc-helper 2.3.1 / grpcio (migration/*.py, migration/protos/*.proto) run on the original,
then on grpchelper with only their import lines (and the .proto import lines) rewritten
by `rewrite_python` / `rewrite_proto` below, with MIGRATING.md's table; their transcripts (stdout) must be
the same, except for the differences MIGRATING.md lists under "What still differs", each of
which is a `Difference` here: the list and this file must name the same ones, and each one
not marked in flux must show up in the transcripts (so a fixed difference is noticed).

Each side runs in a child process of its own: the original with `original.child_env`
(PYTHONPATH = the original's folder + code generated against grpc-helper-api), ours with
bindings/python + code generated against Protos/grpchelper/api. The two sides of a program
run at the same time, each on a free port of its own (`original.free_port`; a program exits
3 on ERROR_PORT_BUSY and is run again on another port), in temporary folders removed at the
end.
"""
import ast
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import original

MIGRATION = original.HERE / "migration"
PROTOS = MIGRATION / "protos"
MIGRATING_MD = original.ROOT / "bindings" / "python" / "MIGRATING.md"
BINDINGS_PYTHON = original.ROOT / "bindings" / "python"

RUN_TIMEOUT = 120.0
BUSY = 3          # a program's exit status when its port was busy
ATTEMPTS = 5


def our_env(*paths) -> dict:
    """Environment of a child running ours: bindings/python then `paths` on PYTHONPATH;
    GRPCHELPER_LIBRARY kept when set (else the binding's lookup order)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (BINDINGS_PYTHON, *paths))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def our_python(code: str) -> str:
    """stdout of `code` run by a child Python on ours."""
    r = subprocess.run([sys.executable, "-c", code], env=our_env(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip()


def our_proto_include() -> Path:
    """The folder a user's protoc gets with -I for grpchelper/api/*.proto: the installed
    package's (grpchelper.api.proto_include(), as MIGRATING.md says)."""
    return Path(our_python("import grpchelper.api as a; print(a.proto_include())"))


# ---------------------------------------------------------------------------------------------
# The rewrite: import lines only (MIGRATING.md's tables)

# Module paths: original → ours (the longest match wins).
MODULES = {
    "grpc_helper_api": "grpchelper.api",
    "grpc_helper": "grpchelper",
    "grpc_helper.server": "grpchelper.rpc_server",
    "grpc_helper.config.cfg_item": "grpchelper.config",
    "grpc_helper.static_config": "grpchelper.config",
    "grpc": "grpchelper",
}
# .proto import paths: grpc-helper-api's → ours
PROTO_IMPORT = re.compile(r'^(\s*import\s+(?:public\s+|weak\s+)?")grpc_helper_api/(\w+\.proto)(";.*)$')


def _our_module(module: str):
    """The module ours has for `module` (None: not one of the original's)."""
    for old in sorted(MODULES, key=len, reverse=True):
        if module == old or module.startswith(old + "."):
            return MODULES[old] + module[len(old):]
    return None


def rewrite_python(source: str) -> str:
    """`source` with its import statements rewritten: `from M import ...` gets ours for M,
    `import M` becomes `import <ours> as M` (the name the program uses stays). Raises
    ValueError on an import form the table does not cover (`import grpc_helper.x`)."""
    lines = source.splitlines(keepends=True)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            new = _our_module(node.module)
            if new is None:
                continue
            line = lines[node.lineno - 1]
            pattern = re.compile(r"^(\s*from\s+)" + re.escape(node.module) + r"(\s+import\b)")
            if not pattern.match(line):
                raise ValueError(f"line {node.lineno}: cannot rewrite {line!r}")
            lines[node.lineno - 1] = pattern.sub(lambda m: m.group(1) + new + m.group(2), line, count=1)
        elif isinstance(node, ast.Import):
            mapped = [(a, _our_module(a.name)) for a in node.names]
            if not any(new for _, new in mapped):
                continue
            if len(node.names) != 1 or "." in node.names[0].name:
                raise ValueError(f"line {node.lineno}: write `import M` alone on its line")
            alias, new = mapped[0]
            line = lines[node.lineno - 1]
            pattern = re.compile(r"^(\s*import\s+)" + re.escape(alias.name) + r"\b(\s+as\s+\w+)?")
            if not pattern.match(line):
                raise ValueError(f"line {node.lineno}: cannot rewrite {line!r}")
            lines[node.lineno - 1] = pattern.sub(
                lambda m: m.group(1) + new + (m.group(2) or " as " + alias.name), line, count=1)
    return "".join(lines)


def rewrite_proto(source: str) -> str:
    return "".join(PROTO_IMPORT.sub(r"\1grpchelper/api/\2\3", line)
                   for line in source.splitlines(keepends=True))


def import_lines_python(source: str) -> set:
    """Line numbers (1-based) that start an import statement."""
    return {n.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.Import, ast.ImportFrom))}


def import_lines_proto(source: str) -> set:
    return {i + 1 for i, line in enumerate(source.splitlines()) if re.match(r'\s*import\s+"', line)}


def changed_lines(before: str, after: str) -> set:
    """Line numbers of `before` that differ in `after` (same number of lines required)."""
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b), "the rewrite added or removed lines"
    return {i + 1 for i, (x, y) in enumerate(zip(a, b)) if x != y}


# ---------------------------------------------------------------------------------------------
# Generated code and runs

def generate(dest: Path, flavor: str, target: Path) -> Path:
    """Python code for every migration/protos/*.proto into `dest`: as written (against the
    original's folder, which ships grpc_helper_api/*.proto) or rewritten for ours (against
    our_proto_include())."""
    src = dest / "_proto"
    src.mkdir(parents=True)
    for proto in sorted(PROTOS.glob("*.proto")):
        text = proto.read_text()
        (src / proto.name).write_text(text if flavor == "original" else rewrite_proto(text))
    include = target if flavor == "original" else our_proto_include()
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{src}", f"-I{include}",
           f"--python_out={dest}", f"--grpc_python_out={dest}",
           *sorted(str(p) for p in src.glob("*.proto"))]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    shutil.rmtree(src)
    return dest


class Run:
    """One program on one side, in a child process, in its own temporary folder."""

    def __init__(self, program: str, flavor: str, env: dict, base: Path):
        self.program, self.flavor, self.env = program, flavor, env
        self.folder = Path(tempfile.mkdtemp(prefix=f"{flavor}-{Path(program).stem}-", dir=base))
        source = (MIGRATION / program).read_text()
        script = self.folder / program
        script.write_text(source if flavor == "original" else rewrite_python(source))
        self.script = script
        self.proc = None

    def start(self):
        attempt = len(getattr(self, "_ports", []))
        root = self.folder / f"try{attempt}"
        port = original.free_port()
        self._ports = getattr(self, "_ports", []) + [port]
        argv = [sys.executable, str(self.script), "-p", str(port), "-w", str(root / "workspace"),
                "--system", str(root / "system"), "--user", str(root / "user")]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=self.env,
                                     cwd=str(self.folder))

    def finish(self):
        """Waits for the child (killed after RUN_TIMEOUT); runs it again on another port
        while it answers BUSY. Returns its stdout lines."""
        for _ in range(ATTEMPTS):
            try:
                out, err = self.proc.communicate(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate()
                raise AssertionError(f"{self.flavor} {self.program} timed out; stdout:\n{out}\n"
                                     f"stderr:\n{err[-4000:]}")
            if self.proc.returncode != BUSY:
                break
            self.start()
        assert self.proc.returncode == 0, (f"{self.flavor} {self.program} failed ({self.proc.returncode}); "
                                           f"stdout:\n{out}\nstderr:\n{err[-4000:]}")
        self.stderr = err
        return out.splitlines()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture(scope="module")
def sides(original_target, workdir):
    """{"original": env, "ours": env}: generated code for both, removed at the end."""
    base = Path(tempfile.mkdtemp(prefix="migration-gen-", dir=workdir))
    try:
        theirs = generate(base / "original", "original", original_target)
        ours = generate(base / "ours", "ours", original_target)
        yield {"original": original.child_env(original_target, theirs), "ours": our_env(ours)}
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def runs(workdir):
    """Starts a program on both sides at once; returns (original lines, our lines)."""
    base = Path(tempfile.mkdtemp(prefix="migration-run-", dir=workdir))
    started = []

    def run(program, sides):
        pair = [Run(program, flavor, sides[flavor], base) for flavor in ("original", "ours")]
        started.extend(pair)
        for r in pair:
            r.start()
        return tuple(r.finish() for r in pair)

    yield run
    for r in started:
        r.stop()
    shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# What still differs (MIGRATING.md's list, by id)

@dataclass(frozen=True)
class Difference:
    """A known difference: `rules` rewrite the lines of one side ("original" or "ours") to a
    common text (`re.sub(pattern, replacement, line)`; replacement None drops the line).
    Each rule that matches counts; a difference not `in_flux` must match in each of its
    `programs` (else it is gone: take it off MIGRATING.md and here)."""
    id: str
    programs: tuple
    rules: tuple
    in_flux: bool = False


CLIENT_TARGET = r"\(on /[\w./]+ @ [^\s)]+\)"    # ours: "(on /pkg.Service/method @ host:port)"

DIFFERENCES = [
    Difference("versions", ("helper_service.py", "helper_retry.py"), (
        ("original", r"grpc-helper:2\.3\.1", "<built-in version>"),
        ("ours", r"grpchelper:\d+\.\d+\.\d+", "<built-in version>"),
    )),
    Difference("client-messages", ("helper_service.py",), (
        ("original", r"RPC error \(on \[RPC\] .*\): <_InactiveRpcError of RPC that terminated with: "
                     r"status = StatusCode\.(\w+) .*>$", r"RPC error: \1"),
        ("ours", r"RPC error " + CLIENT_TARGET + r": (\w+): .*$", r"RPC error: \1"),
    )),
    Difference("library-error-texts", ("helper_service.py",), (
        # The original names the current version where it means the supported one
        ("original", r"(is too old for server supported API version) \(3\)", r"\1 (<version>)"),
        ("ours", r"(is too old for server supported API version) \(2\)", r"\1 (<version>)"),
    )),
    Difference("config-reset", ("helper_config.py",), (
        ("original", r'^(workspace config\.json after reset:) \{"cfg-color": "blue", "cfg-hard": "changed"\}$',
         r"\1 <file>"),
        ("ours", r'^(workspace config\.json after reset:) \{"cfg-color": "blue"\}$', r"\1 <file>"),
        ("original", r"^(restarted after reset, cfg-hard:) changed ", r"\1 <value> "),
        ("ours", r"^(restarted after reset, cfg-hard:) hard ", r"\1 <value> "),
    )),
    Difference("time-remaining", ("grpcio_route.py",), (
        ("original", r"\('x-deadline', 'True'\)", "('x-deadline', <without a deadline>)"),
        ("ours", r"\('x-deadline', 'False'\)", "('x-deadline', <without a deadline>)"),
    )),
]


def canonical(lines: list, side: str, seen: dict) -> list:
    """`lines` with DIFFERENCES' rules of `side` applied; counts the matches in `seen`."""
    out = []
    for line in lines:
        for d in DIFFERENCES:
            for rule_side, pattern, replacement in d.rules:
                if line is None or rule_side != side or not re.search(pattern, line):
                    continue
                seen[d.id] = seen.get(d.id, 0) + 1
                line = None if replacement is None else re.sub(pattern, replacement, line)
        if line is not None:
            out.append(line)
    return out


def documented() -> tuple:
    """MIGRATING.md: the module table (original -> ours) and the ids of "What still
    differs" (its `[id]` items), "(in flux)" marked."""
    text = MIGRATING_MD.read_text()
    table = dict(re.findall(r"^\| `([\w.]+)` \| `([\w.]+)`(?: as `\w+`)? \|", text, re.M))
    section = text.split("## What still differs", 1)[1].split("\n## ", 1)[0]
    ids = {m.group(1): bool(m.group(2)) for m in re.finditer(r"^- \*\*\[([\w-]+)\]\*\*( \(in flux\))?", section, re.M)}
    return table, ids


# ---------------------------------------------------------------------------------------------
# The tests

PROGRAMS = ["helper_service.py", "helper_config.py", "helper_retry.py", "grpcio_route.py"]


@pytest.mark.parametrize("program", PROGRAMS)
def test_the_rewrite_changes_import_lines_only(program):
    source = (MIGRATION / program).read_text()
    ours = rewrite_python(source)
    changed = changed_lines(source, ours)
    assert changed, "the program imports nothing of the original"
    assert changed <= import_lines_python(source), sorted(changed - import_lines_python(source))
    assert not re.search(r"^\s*(from|import)\s+grpc(_helper(_api)?)?\b", ours, re.M)
    compile(ours, program, "exec")


def test_the_rewrite_of_protos_and_the_table():
    changed = {}
    for proto in sorted(PROTOS.glob("*.proto")):
        source = proto.read_text()
        ours = rewrite_proto(source)
        changed[proto.name] = changed_lines(source, ours)
        assert changed[proto.name] <= import_lines_proto(source), proto.name
        assert "grpc_helper_api/" not in ours
    assert changed["inventory.proto"], "inventory.proto imports grpc-helper-api's common.proto"
    # Every row of the module table is used by a program, and MIGRATING.md shows the same table
    used = set()
    for program in PROGRAMS:
        for node in ast.walk(ast.parse((MIGRATION / program).read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                best = [old for old in MODULES if name == old or name.startswith(old + ".")]
                if best:
                    used.add(max(best, key=len))
    assert used == set(MODULES)
    table, _ = documented()
    assert table == MODULES


def test_the_list_of_differences_is_migratings():
    _, ids = documented()
    assert ids == {d.id: d.in_flux for d in DIFFERENCES}


@pytest.mark.parametrize("program", PROGRAMS)
def test_same_transcript(program, sides, runs):
    theirs, ours = runs(program, sides)
    assert len(theirs) > 5 and len(ours) > 5
    seen_theirs, seen_ours = {}, {}
    a, b = canonical(theirs, "original", seen_theirs), canonical(ours, "ours", seen_ours)
    diff = "\n".join(difflib.unified_diff(a, b, "original", "ours", lineterm=""))
    assert a == b, "transcripts differ beyond MIGRATING.md's list:\n" + diff
    # Each difference still shows where it is said to (on our side when it has rules for
    # ours: that is the side that changes), and nowhere else
    for d in DIFFERENCES:
        side, seen = ("ours", seen_ours) if any(r[0] == "ours" for r in d.rules) else ("original", seen_theirs)
        if program in d.programs and not d.in_flux:
            assert seen.get(d.id), f"[{d.id}] no longer shows on the {side} side of {program}: " \
                                   "take it off MIGRATING.md's list and DIFFERENCES"
        if program not in d.programs:
            assert not (seen_ours.get(d.id) or seen_theirs.get(d.id)), \
                f"[{d.id}] shows in {program} too: add it to its programs"


def test_ours_cannot_import_the_original(sides):
    r = subprocess.run([sys.executable, "-c", "import grpc_helper"], env=sides["ours"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "No module named 'grpc_helper'" in r.stderr
