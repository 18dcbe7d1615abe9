"""The events service against the ORIGINAL grpc-helper 2.3.1, both ways: the original's
EventsListener (its thread, on_event, resume by client_id) and its raw EventService stub run
in a child process against OUR server (made with events) and report what they saw, the same
script as against the original's own server, and both reports must be equal; our
EventsListener against the original's server (names, an unknown id, resume after an
interrupt and after a restart of the original)."""
import json
import subprocess
import sys

import pytest

from . import original
from .test_cross import OurServers, our_gen  # noqa: F401 (fixture)

CHILD = r'''
import json, sys, threading
from grpc_helper import RpcClient, RpcException
from grpc_helper.events import EventsListener
from grpc_helper_api import Empty, Event, EventApiVersion, EventFilter, EventInterrupt, EventProperty, ResultCode
from grpc_helper_api.events_pb2_grpc import EventServiceStub

port = int(sys.argv[1])
client = RpcClient("127.0.0.1", port, {"events": (EventServiceStub, EventApiVersion.EVENT_API_CURRENT)}, timeout=5)
out = {"inspect_empty": list(client.events.inspect(Empty()).client_ids)}


class Collector(EventsListener):
    def __init__(self, names, want):
        self.got = []
        self.want = want
        self.done = threading.Event()
        super().__init__(client, names)

    def on_event(self, event):
        self.got.append([event.name, [[p.name, p.value] for p in event.properties]])
        if len(self.got) >= self.want:
            self.done.set()


everything = Collector([], 3)
only_b = Collector(["b"], 1)
assert everything.ready.wait(10) and only_b.ready.wait(10)
out["ids"] = sorted([everything.client_id, only_b.client_id])
out["inspect"] = list(client.events.inspect(Empty()).client_ids)
client.events.send(Event(name="a", properties=[EventProperty(name="k", value="v")]))
client.events.send(Event(name="b"))
client.events.send(Event(name="c"))
assert everything.done.wait(10) and only_b.done.wait(10)
out["everything"] = list(everything.got)
out["only_b"] = list(only_b.got)
only_b.interrupt()
out["only_b_alive_after_interrupt"] = only_b.listening_t.is_alive()
errors = {}
for what, call in [("again", lambda: client.events.interrupt(EventInterrupt(client_id=only_b.client_id))),
                   ("unknown", lambda: client.events.interrupt(EventInterrupt(client_id=99))),
                   ("empty_send", lambda: client.events.send(Event(name=""))),
                   ("bad_send", lambda: client.events.send(Event(name="a b"))),
                   ("bad_listen", lambda: next(client.events.listen(EventFilter(names=["x y"])))),
                   ("unknown_listen", lambda: next(client.events.listen(EventFilter(client_id=77))))]:
    try:
        call()
        errors[what] = None
    except RpcException as e:
        errors[what] = [ResultCode.Name(e.rc), str(e)]
out["errors"] = errors
# Sent while interrupted: collected, delivered on resume (raw stub).
client.events.send(Event(name="b"))
stream = client.events.listen(EventFilter(client_id=only_b.client_id, names=["b"]))
first = next(stream)
out["resumed_id_same"] = first.client_id == only_b.client_id
nxt = next(s for s in stream if s.event.name)
out["resumed_event"] = nxt.event.name
client.events.interrupt(EventInterrupt(client_id=only_b.client_id))
out["resumed_rest"] = [s.event.name for s in stream if s.event.name]
everything.interrupt()
print(json.dumps(out))
'''


def run(env, port):
    r = subprocess.run([sys.executable, "-c", CHILD, str(port)], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_the_originals_listener_against_our_server(original_target, sample_gen, our_gen, workdir,
                                                   start_original):
    env = original.child_env(original_target, sample_gen)
    theirs_srv = start_original(with_events=True)
    theirs = run(env, theirs_srv.port)
    servers = OurServers(our_gen, workdir)
    try:
        ours_srv = servers(with_events=True)
        ours = run(env, ours_srv.port)
    finally:
        assert servers.stop_all() == [0]
    assert theirs["ids"] == [1, 2] and theirs["everything"] == [["a", [["k", "v"]]], ["b", []], ["c", []]]
    assert theirs["errors"]["again"][0] == "ERROR_STATE_UNEXPECTED"
    assert theirs["resumed_event"] == "b" and theirs["resumed_rest"] == []
    for key in theirs:
        assert ours.get(key) == theirs[key], key
    assert ours == theirs


OURS = r'''
import json, sys, threading
from grpchelper import RpcClient
from grpchelper.api import Empty, Event, EventApiVersion, EventServiceStub
from grpchelper.events import EventsListener

port = int(sys.argv[1])
client = RpcClient("127.0.0.1", port, {"events": (EventServiceStub, EventApiVersion.EVENT_API_CURRENT)}, timeout=5)


class Collector(EventsListener):
    def __init__(self, names, want, client_id=None):
        self.got = []
        self.want = want
        self.done = threading.Event()
        super().__init__(client, names, client_id)

    def on_event(self, event):
        self.got.append(event.name)
        if len(self.got) >= self.want:
            self.done.set()


out = {}
a = Collector(["a"], 2)
unknown = Collector([], 1, client_id=41)
assert a.ready.wait(10) and unknown.ready.wait(10)
out["ids"] = sorted([a.client_id, unknown.client_id])
for name in ("a", "b", "a"):
    client.events.send(Event(name=name))
assert a.done.wait(10) and unknown.done.wait(10)
out["a"] = list(a.got)
out["unknown_first"] = unknown.got[0]
a.interrupt()
unknown.interrupt()
out["stopped"] = [a.listening_t.is_alive(), unknown.listening_t.is_alive()]
out["inspect"] = list(client.events.inspect(Empty()).client_ids)
print(json.dumps(out))
'''


def test_our_listener_against_the_originals_server(original_target, sample_gen, our_gen,
                                                    start_original):
    from .test_cross import our_env
    srv = start_original(with_events=True)
    r = subprocess.run([sys.executable, "-c", OURS, str(srv.port)], env=our_env(our_gen),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == {"ids": [1, 2], "a": ["a", "a"], "unknown_first": "a", "stopped": [False, False],
                   "inspect": [1, 2]}


RESUME = r'''
import json, sys, threading
from grpchelper import RpcClient
from grpchelper.api import Event, EventApiVersion, EventProperty, EventServiceStub
from grpchelper.events import EventsListener

port = int(sys.argv[1])
client = RpcClient("127.0.0.1", port, {"events": (EventServiceStub, EventApiVersion.EVENT_API_CURRENT)}, timeout=20)


class Collector(EventsListener):
    def __init__(self, client_id=None):
        self.got = []
        self.cond = threading.Condition()
        super().__init__(client, ["e"], client_id)

    def on_event(self, event):
        with self.cond:
            self.got.append(event.properties[0].value)
            self.cond.notify_all()

    def wait(self, n):
        with self.cond:
            return self.cond.wait_for(lambda: len(self.got) >= n, 30)


def send(n):
    client.events.send(Event(name="e", properties=[EventProperty(name="n", value=str(n))]))


out = {}
first = Collector()
assert first.ready.wait(10)
send(1)
assert first.wait(1)
first.interrupt()
send(2)                                       # kept by the interrupted queue
second = Collector(first.client_id)           # resumes it
assert second.ready.wait(10) and second.wait(1)
out["resumed_after_interrupt"] = [second.client_id == first.client_id, list(second.got)]
print("RESTART", flush=True)
assert sys.stdin.readline().strip() == "restarted"
send(3)                                       # to the restarted server's restored queue
ok = second.wait(2)
out["after_restart"] = [ok, list(second.got), second.client_id == first.client_id]
second.interrupt()
print(json.dumps(out), flush=True)
'''


def test_our_listener_resumes_on_the_originals_server_after_interrupt_and_restart(
        original_target, sample_gen, our_gen, start_original):
    """Our EventsListener against the ORIGINAL's server: a queue resumed by id after an
    interrupt gets what was sent meanwhile; across a restart of the original on the same
    port and workspace (it persists the queue ids), the listener reconnects to its queue and
    gets what is sent after."""
    from .test_cross import our_env
    srv = start_original(with_events=True)
    child = subprocess.Popen([sys.executable, "-c", RESUME, str(srv.port)], env=our_env(our_gen),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().strip()
        assert line == "RESTART", child.stderr.read()[-3000:] if child.poll() is not None else line
        assert srv.stop() == 0
        again = original.start_server(original_target, sample_gen, srv.workspace, port=srv.port,
                                      with_events=True)
        start_original.started.append(again)      # stopped at the end of the test
        child.stdin.write("restarted\n")
        child.stdin.flush()
        stdout, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, stderr[-3000:]
    got = json.loads(stdout.strip().splitlines()[-1])
    assert got == {"resumed_after_interrupt": [True, ["2"]], "after_restart": [True, ["2", "3"], True]}


@pytest.mark.parametrize("lang", ["c", "swift"])
def test_the_c_and_swift_listeners_against_the_originals_server(lang, original_target, sample_gen, start_original):
    """The C and Swift EventsListener (the events examples' `listen`) on the ORIGINAL's
    server: ready with its queue id, the filter, events in order with their properties."""
    import os
    root = str(original.ROOT)
    program = (os.path.join(root, "build", "examples", "c", "events_example") if lang == "c"
               else os.path.join(root, ".build", "debug", "events-example"))
    if not os.path.exists(program):
        pytest.skip("%s is not built (scripts/test.sh builds it)" % program)
    srv = start_original(with_events=True)
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    child = subprocess.Popen([program, "listen", "-p", str(srv.port), "--names", "greeting", "--count", "2"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = child.stdout.readline().strip()
        assert ready == "ready 1", child.stderr.read()[-3000:] if child.poll() is not None else ready
        sends = [("other", {}), ("greeting", {"who": "alice"}), ("greeting", {"who": "bob"})]
        calls = [original.call("events", "send", "Event",
                               {"name": n, "properties": [{"name": k, "value": v} for k, v in p.items()]})
                 for n, p in sends]
        results = original.run_client(original_target, srv.port, calls, stubs_map=original.stubs(events=2),
                                      gen_dir=sample_gen)
        assert all(r["ok"] for r in results), results
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, stderr[-3000:]
    assert stdout.splitlines() == ["greeting who=alice", "greeting who=bob"]
