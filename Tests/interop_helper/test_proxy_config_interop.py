"""The config service of a main server with a registered proxied server, against the ORIGINAL
grpc-helper 2.3.1 (its ConfigManager with proxies, grpc_helper/config/cfg_manager.py): a main
server declaring the sample service proxied, with the sample's user items (sample-int 12,
sample-str "abc") plus "main-int" 2, and a backend with the sample's items plus
"backend-int" 3, registered with srv.proxy_register. The same script of config calls (get,
set, reset, through the main server; the backend's own values asked directly after each
change; a conflict made on the backend) runs on

- the original's main server in front of the original's backend: the reference, whose
  behaviour is also asserted outright (merge by name, ERROR_ITEM_CONFLICT and its text,
  set / reset reaching the backend, names checked against the merged items);
- the original's main server in front of OUR backend;
- OUR main server in front of the original's backend;
- ours in front of ours;

and each gives the reference's answers: the same responses byte for byte, the same raised
codes and messages, the same values left on the backend (and in its config.json after a
set). Names asked twice included.

Two details checked on their own (see the end): with registered proxied servers, an empty
name is refused by the proxied server (grpc-helper's ConfigManager checks the names after
the merge: its text wrapped twice, "RPC returned error: RPC returned error: ..."); without
any, a name asked twice gives one item (it always merges by name).

All the clients are the original's (run_client, children); every child is stopped and
waited for, every folder removed (conftest's workdir).
"""
import json

import pytest

from .conftest import Servers
from .original import call
from .test_cross import our_gen  # noqa: F401 (fixture)
from .test_proxy_interop import register, run, start_ours  # noqa: F401 (fixture)

MAIN_ITEMS = {"main-int": "2"}
BACKEND_ITEMS = {"backend-int": "3"}


def get(names=(), ignore_unknown=False):
    request = {"names": list(names)}
    if ignore_unknown:
        request["ignore_unknown"] = True
    return call("config", "get", "Filter", request)


def reset(names=(), ignore_unknown=False):
    return dict(get(names, ignore_unknown), method="reset")


def set_(*pairs, ignore_unknown=False):
    request = {"items": [{"name": n, "value": v} for n, v in pairs]}
    if ignore_unknown:
        request["ignore_unknown"] = True
    return call("config", "set", "ConfigUpdate", request)


# The script: (where, calls), where "main" or "backend" (called directly)
SCRIPT = [
    ("main", [get(), get(["backend-int", "sample-str"]), get(["main-int"]), get(["nope"]),
              get(["backend-int", "nope"]), get(["nope", "backend-int"], ignore_unknown=True),
              get(["rpc-main-port"]), get(["sample-int", "sample-int"]),
              get(["backend-int", "backend-int"])]),
    # set: on both servers for the shared names, on the backend for its own one
    ("main", [set_(("sample-int", "13"), ("backend-int", "4"), ("main-int", "5"))]),
    ("backend", [get()]),
    ("main", [get()]),
    # refused: an invalid value for an item the main server holds (nothing changed
    # anywhere), one only the backend holds, an unknown name, an empty list
    ("main", [set_(("backend-int", "6"), ("sample-int", "not-an-int")),
              set_(("backend-int", "not-an-int")),
              set_(("backend-int", "6"), ("nope", "1")),
              set_()]),
    ("backend", [get()]),
    ("main", [set_(("nope", "1"), ("backend-int", "6"), ignore_unknown=True)]),
    ("backend", [get(["backend-int"])]),
    # one name twice: set in turn (the last value stays), one item answered
    ("main", [set_(("backend-int", "7"), ("backend-int", "8")), set_(("main-int", "7"), ("main-int", "5")),
              reset(["backend-int", "backend-int"])]),
    ("backend", [get(["backend-int"])]),
    ("main", [set_(("backend-int", "6"))]),
    # different values of one name: a conflict, out of a filter not named
    ("backend", [set_(("sample-str", "zzz"))]),
    ("main", [get(), get(["sample-str"]), get(["backend-int", "main-int"])]),
    # set through the main server: equal again
    ("main", [set_(("sample-str", "yyy")), get(["sample-str"])]),
    ("backend", [get(["sample-str"])]),
    # reset: on both servers; its checks
    ("main", [reset(["sample-int", "sample-str", "backend-int"]), reset(), reset(["nope"]),
              reset(["nope", "main-int"], ignore_unknown=True)]),
    ("backend", [get()]),
    ("main", [get()]),
]
AFTER_SET = 2           # the step after which the backend's config.json is read
# What each entry of a report is (for the messages of failed comparisons)
LABELS = []
for _n, (_where, _calls) in enumerate(SCRIPT):
    LABELS.append(f"step {_n}: {_where} " + ", ".join(c["method"] for c in _calls))
    if _n == AFTER_SET - 1:
        LABELS.append("the backend's config.json")


def report(t, g, main, backend) -> list:
    """The results of SCRIPT (the original client, raising) with `backend` registered with
    `main`; after the first set, the backend's config.json too."""
    register(t, g, main.port, backend.port)
    out = []
    for n, (where, calls) in enumerate(SCRIPT):
        out.append(run(t, g, (main if where == "main" else backend).port, calls))
        if n == AFTER_SET - 1:
            out.append(json.loads((backend.workspace / "config.json").read_text()))
    return out


def start_main(factory):
    return factory(options={"proxied": True, "extra_user_items": MAIN_ITEMS},
                   cli_config={"rpc-client-timeout": "5"})


def start_backend(factory):
    return factory(options={"extra_user_items": BACKEND_ITEMS})


@pytest.fixture(scope="module")
def reference(original_target, sample_gen, workdir):
    """The script's results with the original's main server and backend."""
    servers = Servers(original_target, sample_gen, workdir)
    try:
        main, backend = start_main(servers), start_backend(servers)
        return report(original_target, sample_gen, main, backend)
    finally:
        statuses = servers.stop_all()
        assert statuses == [0] * len(statuses)


def values(result) -> list:
    assert result["ok"], result
    return [(i["name"], i.get("value", "")) for i in result["response"].get("items", [])]


def raised(result) -> tuple:
    assert not result["ok"], result
    e = result["exception"]
    return e["rc_name"], e["message"]


def unknown(names):
    return "ERROR_ITEM_UNKNOWN", f"RPC returned error: Unknown config item names in filter request: {names}"


def conflict(name, v1, v2):
    return ("ERROR_ITEM_CONFLICT",
            f"RPC returned error: Proxied values conflict for config item {name}: {v1} != {v2}")


def test_the_originals_merged_config_service(reference):
    """grpc-helper 2.3.1's behaviour, asserted outright (what ours is compared with)."""
    (gets, (set1,), (b_after_set,), (m_after_set,), refused, (b_after_refused,), (set2,),
     (b_set2,), twice, (b_twice,), _, _, conflicts, (set3, get3), (b_set3,), resets, (b_after_reset,),
     (m_after_reset,)) = [r for r in reference if isinstance(r, list)]
    initial = [("sample-int", "12"), ("sample-str", "abc"), ("main-int", "2"), ("backend-int", "3")]
    assert values(gets[0]) == initial
    assert values(gets[1]) == [("sample-str", "abc"), ("backend-int", "3")]
    assert values(gets[2]) == [("main-int", "2")]
    assert raised(gets[3]) == unknown("nope")
    assert raised(gets[4]) == unknown("nope")
    assert values(gets[5]) == [("backend-int", "3")]
    assert raised(gets[6]) == unknown("rpc-main-port")
    assert values(gets[7]) == [("sample-int", "12")]
    assert values(gets[8]) == [("backend-int", "3")]

    assert values(set1) == [("sample-int", "13"), ("main-int", "5"), ("backend-int", "4")]
    assert values(b_after_set) == [("sample-int", "13"), ("sample-str", "abc"), ("backend-int", "4")]
    assert reference[AFTER_SET] == {"sample-int": "13", "backend-int": "4"}
    assert values(m_after_set) == [("sample-int", "13"), ("sample-str", "abc"), ("main-int", "5"),
                                   ("backend-int", "4")]
    assert raised(refused[0])[0] == "ERROR_PARAM_INVALID"
    assert raised(refused[1])[0] == "ERROR_PARAM_INVALID"
    assert raised(refused[2]) == unknown("nope")
    assert raised(refused[3]) == ("ERROR_PARAM_MISSING", "RPC returned error: Input request list is empty")
    assert values(b_after_refused) == values(b_after_set)           # nothing changed
    assert values(set2) == [("backend-int", "6")]
    assert values(b_set2) == [("backend-int", "6")]
    assert values(twice[0]) == [("backend-int", "8")]
    assert values(twice[1]) == [("main-int", "5")]
    assert values(twice[2]) == [("backend-int", "3")]
    assert values(b_twice) == [("backend-int", "3")]

    # the backend's value first, the main server's second
    assert raised(conflicts[0]) == conflict("sample-str", "zzz", "abc")
    assert raised(conflicts[1]) == conflict("sample-str", "zzz", "abc")
    assert values(conflicts[2]) == [("main-int", "5"), ("backend-int", "6")]
    assert values(set3) == values(get3) == values(b_set3) == [("sample-str", "yyy")]

    assert values(resets[0]) == [("sample-int", "12"), ("sample-str", "abc"), ("backend-int", "3")]
    assert raised(resets[1]) == ("ERROR_PARAM_MISSING", "RPC returned error: Input request list is empty")
    assert raised(resets[2]) == unknown("nope")
    assert values(resets[3]) == [("main-int", "2")]
    assert values(b_after_reset) == [("sample-int", "12"), ("sample-str", "abc"), ("backend-int", "3")]
    assert values(m_after_reset) == initial


@pytest.mark.parametrize("main_kind,backend_kind", [("original", "ours"), ("ours", "original"),
                                                    ("ours", "ours")])
def test_the_merged_config_service_answers_as_the_originals(
        main_kind, backend_kind, reference, original_target, sample_gen, start_original, start_ours):
    t, g = original_target, sample_gen
    main = start_main(start_original if main_kind == "original" else start_ours)
    backend = start_backend(start_original if backend_kind == "original" else start_ours)
    got = report(t, g, main, backend)
    assert len(got) == len(reference)
    for label, ours, theirs in zip(LABELS, got, reference):
        assert ours == theirs, label


# ---------------------------------------------------------------------------------------------
# Two details: the text of an empty name's refusal, a name asked twice

EMPTY_NAME = "RPC returned error: RPC returned error: At least one empty name found in input request"


@pytest.mark.parametrize("main_kind,backend_kind", [
    ("original", "original"), ("original", "ours"),
    ("ours", "original"), ("ours", "ours")])
def test_an_empty_name_is_refused_with_the_proxied_servers_text(
        main_kind, backend_kind, original_target, sample_gen, start_original, start_ours):
    """get, set and reset naming "" through a main server with a registered proxied server:
    ERROR_PARAM_MISSING, in grpc-helper's text (the proxied server's error, re-raised)."""
    t, g = original_target, sample_gen
    main = start_main(start_original if main_kind == "original" else start_ours)
    backend = start_backend(start_original if backend_kind == "original" else start_ours)
    register(t, g, main.port, backend.port)
    results = run(t, g, main.port, [get(["sample-int", ""]), set_(("", "1")), reset(["", "main-int"])])
    assert [raised(r) for r in results] == [("ERROR_PARAM_MISSING", EMPTY_NAME)] * 3


@pytest.mark.parametrize("kind", ["original", "ours"])
def test_a_name_twice_gives_one_item_without_proxied_servers(kind, original_target, sample_gen,
                                                             start_original, start_ours):
    t, g = original_target, sample_gen
    srv = start_main(start_original if kind == "original" else start_ours)
    results = run(t, g, srv.port, [get(["sample-int", "sample-int"]),
                                   set_(("main-int", "7"), ("main-int", "8")),
                                   reset(["main-int", "main-int"])])
    assert [values(r) for r in results] == [[("sample-int", "12")], [("main-int", "8")],
                                            [("main-int", "2")]]
