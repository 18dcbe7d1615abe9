"""No silent drift between the package's ctypes declarations and the C header.

`parse_header` reads Sources/CGRPCHelper/include/grpchelper.h and the parts it includes
(grpchelper/*.h): comments stripped, a small preprocessor (#include "...", #define of
integers, #if/#ifdef/#ifndef/#else/#endif), then every `typedef enum {...} name;`,
anonymous `enum {...};`, opaque and struct typedefs, function-pointer typedefs and
function prototypes. `check_declarations` compares the package's declarations with it and
returns one line per problem:

- a GH_* integer constant of the package that differs from the header's value, or that the
  header does not have;
- a declared function the header lacks, or whose restype / argtypes do not match the
  prototype (int → c_int, unsigned → c_uint, size_t → c_size_t, int64_t → c_int64,
  double → c_double, void → None, an enum type → c_int, `const char *` → c_char_p, any
  pointer → c_void_p, `T *` → POINTER(<T's type>), a function-pointer typedef → a
  CFUNCTYPE with matching return and argument types);
- a callback type (CFUNCTYPE) named after a header typedef that does not match it, or a
  ctypes.Structure whose fields do not match the header's struct;
- the package's version (pyproject.toml, grpchelper.__version__) differing from the
  header's GH_VERSION_MAJOR.MINOR.PATCH, or its minimum library version above it.

`test_the_package_matches_the_header` runs it on the real declarations;
`test_the_checker_reports_planted_mismatches` shows that it fails when it should.
"""

import ast
import ctypes
import os
import re
import sys

import pytest

import grpchelper
from grpchelper._native import ffi

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)                          # bindings/python
REPO = os.path.dirname(os.path.dirname(PKG_ROOT))
HEADER = os.path.join(REPO, "Sources", "CGRPCHelper", "include", "grpchelper.h")


# --- reading the header -------------------------------------------------------------

class Header:
    """What a header declares: `constants` {name: int} (enum values and integer
    #defines), `enums` (typedef names of enums), `opaque` (handle typedefs), `structs`
    {typedef name: [field types]}, `callbacks` {typedef name: (return type, [parameter
    types])} and `functions` {name: (return type, [parameter types])}. C types are
    strings such as "const char *"."""

    def __init__(self):
        self.constants = {}
        self.enums = set()
        self.opaque = set()
        self.structs = {}
        self.callbacks = {}
        self.functions = {}
        self.files = []


def _strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: " " + "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _evaluate(expression, constants):
    """An integer constant expression (numbers, names of known constants, + - * << >> |
    & ~ and parentheses); None when it is not one."""
    expression = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b", r"\1", expression.strip())
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return None
    operators = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
                 ast.Mult: lambda a, b: a * b, ast.LShift: lambda a, b: a << b,
                 ast.RShift: lambda a, b: a >> b, ast.BitOr: lambda a, b: a | b,
                 ast.BitAnd: lambda a, b: a & b}

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in constants:
            return constants[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Invert)):
            v = value(node.operand)
            return {ast.USub: -v, ast.UAdd: v, ast.Invert: ~v}[type(node.op)]
        if isinstance(node, ast.BinOp) and type(node.op) in operators:
            return operators[type(node.op)](value(node.left), value(node.right))
        raise ValueError(ast.dump(node))

    try:
        return value(tree.body)
    except ValueError:
        return None


def _preprocess(path, header, defined, seen):
    """The C text of `path` with its #include "..." files inlined, directives applied."""
    path = os.path.normpath(path)
    if path in seen:
        return ""
    seen.add(path)
    header.files.append(path)
    with open(path, encoding="utf-8") as f:
        text = _strip_comments(f.read()).replace("\\\n", " ")
    out = []
    active = [True]          # one entry per open #if; the top one says if lines count
    for line in text.split("\n"):
        directive = re.match(r"\s*#\s*(\w+)\s*(.*)", line)
        if not directive:
            if all(active):
                out.append(line)
            continue
        word, rest = directive.group(1), directive.group(2).strip()
        if word in ("ifdef", "ifndef"):
            known = rest in defined
            active.append(known if word == "ifdef" else not known)
        elif word == "if":
            active.append(True)              # #if defined(__GNUC__) ...: the first branch
        elif word == "else":
            active[-1] = not active[-1]
        elif word == "endif":
            active.pop()
        elif not all(active):
            continue
        elif word == "define":
            m = re.match(r"(\w+)(\([^)]*\))?\s*(.*)", rest)
            defined.add(m.group(1))
            if m.group(2) is None and m.group(1).startswith("GH_"):
                value = _evaluate(m.group(3), header.constants)
                if value is not None:
                    header.constants[m.group(1)] = value
        elif word == "include":
            local = re.match(r'"([^"]+)"', rest)
            if local:
                out.append(_preprocess(os.path.join(os.path.dirname(path), local.group(1)),
                                       header, defined, seen))
        elif word not in ("pragma", "error", "undef"):
            raise ValueError("%s: unexpected directive #%s" % (path, word))
    return "\n".join(out)


def _statements(text):
    """The top-level statements (text up to each ';' outside braces and parentheses)."""
    text = re.sub(r'extern\s+"C"\s*\{', "", text)
    statements, depth, current = [], 0, []
    for ch in text:
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        if ch == ";" and depth == 0:
            statements.append(" ".join("".join(current).split()))
            current = []
        else:
            current.append(ch)
    rest = "".join(current).strip()
    if rest:
        raise ValueError("text after the last declaration: %r" % rest[:80])
    return [s for s in statements if s]


def _split_params(params):
    params = params.strip()
    if params in ("", "void"):
        return []
    parts, depth, current = [], 0, []
    for ch in params:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [_param_type(p) for p in parts]


_TYPE_WORDS = {"const", "unsigned", "signed", "int", "char", "void", "double", "long", "short",
               "float", "struct"}


def _param_type(param):
    """The type of one parameter declaration ("const char *const *argv" → "const char
    *const *"): a trailing identifier is its name, unless it is the only type word."""
    tokens = re.findall(r"\w+|\*", param)
    words = [t for t in tokens if t != "*" and t != "const"]
    if tokens and tokens[-1] != "*" and len(words) > 1 and tokens[-1] not in _TYPE_WORDS:
        tokens = tokens[:-1]
    return _type_text(tokens)


def _type_text(tokens):
    return " ".join(tokens).replace("* ", "*")


def _enum_body(body, header):
    value = -1
    for item in body.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, expression = item.partition("=")
        name = name.strip()
        if expression:
            value = _evaluate(expression, header.constants)
            if value is None:
                raise ValueError("enum %s: cannot evaluate %r" % (name, expression))
        else:
            value += 1
        header.constants[name] = value


def parse_header(path=HEADER):
    header = Header()
    text = _preprocess(path, header, set(), set())
    for s in _statements(text):
        s = re.sub(r"\bGH_DEPRECATED\s*\([^)]*\)", "", s).strip()
        m = re.fullmatch(r"(typedef\s+)?enum\s*\{(.*)\}\s*(\w*)", s)
        if m:
            _enum_body(m.group(2), header)
            if m.group(3):
                header.enums.add(m.group(3))
            continue
        m = re.fullmatch(r"typedef\s+struct\s+(\w+)\s+(\w+)", s)
        if m:
            header.opaque.add(m.group(2))
            continue
        m = re.fullmatch(r"typedef\s+struct\s*\w*\s*\{(.*)\}\s*(\w+)", s)
        if m:
            header.structs[m.group(2)] = [_param_type(f) for f in m.group(1).split(";") if f.strip()]
            continue
        m = re.fullmatch(r"typedef\s+(.+?)\(\s*\*\s*(\w+)\s*\)\s*\((.*)\)", s)
        if m:
            header.callbacks[m.group(2)] = (_param_type(m.group(1)), _split_params(m.group(3)))
            continue
        m = re.fullmatch(r"(.+?)\b(\w+)\s*\((.*)\)", s)
        if m and not s.startswith("typedef"):
            header.functions[m.group(2)] = (_param_type(m.group(1)), _split_params(m.group(3)))
            continue
        raise ValueError("cannot read this declaration of the header: %r" % s)
    return header


# --- comparing ------------------------------------------------------------------------

_SCALARS = {
    "int": ctypes.c_int, "unsigned": ctypes.c_uint, "unsigned int": ctypes.c_uint,
    "size_t": ctypes.c_size_t, "int64_t": ctypes.c_int64, "uint64_t": ctypes.c_uint64,
    "int32_t": ctypes.c_int32, "uint32_t": ctypes.c_uint32, "uint8_t": ctypes.c_uint8,
    "double": ctypes.c_double, "char": ctypes.c_char,
}


def _split_type(c_type):
    """("char", 1) for "const char *": the base type without const, and the pointer depth."""
    stars = c_type.count("*")
    base = " ".join(w for w in re.findall(r"\w+", c_type) if w != "const")
    return base, stars


def _name(py):
    return "None" if py is None else getattr(py, "__name__", repr(py))


def type_problem(c_type, py, header):
    """Why the ctypes type `py` does not stand for the C type `c_type` (None if it does)."""
    base, stars = _split_type(c_type)
    wrong = "%s is not %s" % (_name(py), c_type)
    if stars == 0:
        if base == "void":
            return None if py is None else wrong
        if base in header.callbacks:
            if not (isinstance(py, type) and issubclass(py, ctypes._CFuncPtr)):
                return "%s is not a CFUNCTYPE for %s" % (_name(py), base)
            return callback_problem(base, py, header)
        if base in header.enums:
            return None if py is ctypes.c_int else "%s is not c_int (enum %s)" % (_name(py), base)
        if base in header.structs:
            ok = isinstance(py, type) and issubclass(py, ctypes.Structure) and py.__name__ == base
            return None if ok else wrong
        if base in _SCALARS:
            return None if py is _SCALARS[base] else wrong
        return "unknown C type %s" % c_type
    if py is ctypes.c_void_p:                        # any pointer, as an address
        return None
    if stars == 1 and base in ("char", "uint8_t") and py is ctypes.c_char_p:
        return None                                  # text, or bytes given as bytes
    if isinstance(py, type) and issubclass(py, ctypes._Pointer):
        inner = c_type[:c_type.rindex("*")].rstrip()
        return type_problem(inner, py._type_, header) and wrong
    return wrong


def callback_problem(typedef, functype, header):
    ret, params = header.callbacks[typedef]
    problems = []
    if type_problem(ret, functype._restype_, header):
        problems.append("%s returns %s, not %s" % (typedef, _name(functype._restype_), ret))
    argtypes = list(functype._argtypes_)
    if len(argtypes) != len(params):
        problems.append("%s has %d arguments, the header %d" % (typedef, len(argtypes), len(params)))
    else:
        for i, (c, py) in enumerate(zip(params, argtypes)):
            p = type_problem(c, py, header)
            if p:
                problems.append("%s argument %d: %s" % (typedef, i + 1, p))
    return "; ".join(problems) or None


def check_declarations(header, decl):
    """Problems (a list of lines) between a parsed header and the package's declarations:
    `decl` is a dict with `constants` {name: value}, `functions` {name: (restype,
    argtypes, errcheck)}, `callbacks` {typedef name: CFUNCTYPE}, `structs` {typedef
    name: ctypes.Structure}, `versions` {where:
    "x.y.z"} and `min_version` (0xXXYYZZ)."""
    problems = []
    for name, value in sorted(decl["constants"].items()):
        if name not in header.constants:
            problems.append("constant %s = %r: not in the header" % (name, value))
        elif header.constants[name] != value:
            problems.append("constant %s = %r: the header says %r"
                            % (name, value, header.constants[name]))
    for name, (restype, argtypes, _errcheck) in sorted(decl["functions"].items()):
        if name not in header.functions:
            problems.append("function %s: not in the header" % name)
            continue
        ret, params = header.functions[name]
        p = type_problem(ret, restype, header)
        if p:
            problems.append("function %s: restype %s" % (name, p))
        if len(argtypes) != len(params):
            problems.append("function %s: %d argtypes, the prototype has %d parameters"
                            % (name, len(argtypes), len(params)))
            continue
        for i, (c, py) in enumerate(zip(params, argtypes)):
            p = type_problem(c, py, header)
            if p:
                problems.append("function %s: argument %d: %s" % (name, i + 1, p))
    for typedef, structure in sorted(decl["structs"].items()):
        if typedef not in header.structs:
            problems.append("structure %s: not in the header" % typedef)
            continue
        fields = [f[1] for f in structure._fields_]
        if len(fields) != len(header.structs[typedef]) or any(
                type_problem(c, py, header) for c, py in zip(header.structs[typedef], fields)):
            problems.append("structure %s: fields %s, the header has %s"
                            % (typedef, [_name(f) for f in fields], header.structs[typedef]))
    for typedef, functype in sorted(decl["callbacks"].items()):
        if typedef not in header.callbacks:
            problems.append("callback type %s: not in the header" % typedef)
            continue
        p = callback_problem(typedef, functype, header)
        if p:
            problems.append("callback type %s" % p)
    c = header.constants
    version = "%d.%d.%d" % (c["GH_VERSION_MAJOR"], c["GH_VERSION_MINOR"], c["GH_VERSION_PATCH"])
    for where, v in sorted(decl["versions"].items()):
        if v != version:
            problems.append("version %s in %s: the header says %s" % (v, where, version))
    number = (c["GH_VERSION_MAJOR"] << 16) | (c["GH_VERSION_MINOR"] << 8) | c["GH_VERSION_PATCH"]
    if decl["min_version"] > number:
        problems.append("minimum library version %06x is above the header's %06x"
                        % (decl["min_version"], number))
    return problems


def package_declarations():
    """The package's declarations: every GH_* integer of every grpchelper module loaded,
    the ffi table and callback types, and its versions."""
    constants = {}
    for module_name, module in sorted(sys.modules.items()):
        if module is None or not (module_name == "grpchelper" or module_name.startswith("grpchelper.")):
            continue
        for name, value in vars(module).items():
            if name.startswith("GH_") and isinstance(value, int) and not isinstance(value, bool):
                if constants.setdefault(name, value) != value:
                    raise AssertionError("%s has two values in the package" % name)
    with open(os.path.join(PKG_ROOT, "pyproject.toml"), encoding="utf-8") as f:
        project = f.read().split("[project]", 1)[1].split("\n[", 1)[0]
    pyproject_version = re.search(r'^version\s*=\s*"([^"]*)"', project, re.M).group(1)
    return {
        "constants": constants,
        "functions": dict(ffi.FUNCTIONS),
        "callbacks": dict(ffi.CALLBACK_TYPES),
        "structs": {"gh_info": ffi.gh_info},
        "versions": {"pyproject.toml": pyproject_version,
                     "grpchelper.__version__": grpchelper.__version__},
        "min_version": ffi.MIN_LIBRARY_VERSION,
    }


# --- the tests --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def header():
    return parse_header()


def test_the_header_is_read_whole(header):
    """The parser sees every part and what the package relies on (a parser that reads
    nothing would make the next test pass)."""
    names = {os.path.basename(p) for p in header.files}
    assert names >= {"grpchelper.h", "version.h", "errors.h", "types.h", "metadata.h",
                     "server.h", "channel.h", "config.h", "cli.h", "logs.h", "rpc.h", "events.h"}
    assert len(header.functions) > 130
    assert header.functions["gh_server_set_int"] == ("int", ["gh_server *", "gh_opt", "int64_t"])
    assert header.functions["gh_cli_parse"][1][1] == "const char *const *"
    assert header.functions["gh_strdup"] == ("char *", ["const char *"])
    assert header.functions["gh_config_static_items"][1] == ["gh_config ***", "size_t *"]
    assert header.callbacks["gh_rpc_dump_fn"] == ("char *", ["void *"])
    assert header.callbacks["gh_event_fn"] == ("void", ["const gh_event *", "void *"])
    assert header.constants["GH_OPT_USER_AGENT_PREFIX"] == 10001      # GH_OPTTYPE_STR + 1
    assert header.constants["GH_COMPRESSION_DEFAULT"] == -1
    assert header.constants["GH_ERR_INTERNAL"] == -902
    assert header.constants["GH_RPC_DEBUG_SIGNAL"] == 2
    assert {"gh_opt", "gh_cardinality", "gh_error"} <= header.enums
    assert "gh_server" in header.opaque and "gh_info" in header.structs


def test_the_package_matches_the_header(header):
    decl = package_declarations()
    # Every function the package reached through the library object is in the table.
    reached = {n for n in vars(ffi.lib) if n.startswith("gh_")}
    assert reached <= set(decl["functions"]), sorted(reached - set(decl["functions"]))
    assert "gh_strdup" in decl["functions"]
    problems = check_declarations(header, decl)
    assert not problems, "the package's declarations differ from the header:\n" + "\n".join(problems)


def test_the_checker_reports_planted_mismatches(header):
    decl = package_declarations()
    functions = decl["functions"]
    functions["gh_server_set_int"] = (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int], None)
    functions["gh_call_set_timeout"] = (ctypes.c_int, [ctypes.c_void_p], None)
    functions["gh_config_value"] = (ctypes.c_int, [ctypes.c_void_p], None)
    functions["gh_metadata_get"] = (functions["gh_metadata_get"][0],
                                    functions["gh_metadata_get"][1][:2]
                                    + [ctypes.POINTER(ctypes.c_int)]
                                    + functions["gh_metadata_get"][1][3:], None)
    functions["gh_no_such_function"] = (ctypes.c_int, [], None)
    functions["gh_rpc_service_add_method"] = (
        ctypes.c_int, functions["gh_rpc_service_add_method"][1][:3]
        + [ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)]
        + functions["gh_rpc_service_add_method"][1][4:], None)
    decl["constants"]["GH_ERR_CLOSED"] = -504
    decl["constants"]["GH_OPT_NOT_IN_HEADER"] = 42
    decl["callbacks"]["gh_done_fn"] = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_double,
                                                       ctypes.c_void_p)
    class gh_info(ctypes.Structure):
        _fields_ = [("age", ctypes.c_int), ("version_str", ctypes.c_char_p)]
    decl["structs"]["gh_info"] = gh_info
    decl["versions"]["pyproject.toml"] = "9.9.9"
    decl["min_version"] = 0x7f0000
    problems = check_declarations(header, decl)
    expected = [
        "function gh_server_set_int: argument 3: c_int is not int64_t",
        "function gh_call_set_timeout: 1 argtypes, the prototype has 2 parameters",
        "function gh_config_value: restype c_int is not char *",
        "function gh_metadata_get: argument 3: LP_c_int is not const char **",
        "function gh_no_such_function: not in the header",
        "function gh_rpc_service_add_method: argument 4: gh_rpc_handler_fn returns None, "
        "not int",
        "constant GH_ERR_CLOSED = -504: the header says -503",
        "constant GH_OPT_NOT_IN_HEADER = 42: not in the header",
        "callback type gh_done_fn argument 2: c_double is not int",
        "structure gh_info: fields ['c_int', 'c_char_p'], the header has "
        "['int', 'int', 'const char *']",
        "version 9.9.9 in pyproject.toml: the header says %s" % grpchelper.__version__,
        "minimum library version 7f0000 is above the header's %06x"
        % ffi.gh_version(0).contents.version_num,
    ]
    for line in expected:
        assert line in problems, "\n".join(problems)
    assert len(problems) == len(expected), "\n".join(problems)
