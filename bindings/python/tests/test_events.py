"""The events service with the package's EventsListener (grpc-helper's API, grpchelper.events):
real events only (never keep-alives), the name filter, its client_id, a new queue when the
server does not know the id, resume across a server restart, interrupt()."""

import socket
import threading

import pytest

from grpchelper import Folders, RpcClient, RpcServer
from grpchelper.api import Empty, Event, EventApiVersion, EventServiceStub
from grpchelper.events import EventsListener

BOUND = 20


class Collector(EventsListener):
    def __init__(self, client, names, client_id=None, want=1):
        self.got = []
        self.want = want
        self.enough = threading.Event()
        super().__init__(client, names, client_id)

    def on_event(self, event):
        self.got.append(event.name)
        if len(self.got) >= self.want:
            self.enough.set()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def events_server(tmp_path):
    made = []

    def start(port=0, keepalive="60"):
        srv = RpcServer(port, [], Folders(workspace=tmp_path / "wks"),
                        {"rpc-shutdown-grace": "1", "rpc-event-keepalive-timeout": keepalive},
                        with_events=True)
        made.append(srv)
        return srv

    yield start
    for srv in made:
        srv.shutdown()


def client_of(srv, port=None):
    return RpcClient("127.0.0.1", port or srv.port,
                     {"events": (EventServiceStub, EventApiVersion.EVENT_API_CURRENT)}, timeout=BOUND)


def test_listener_gets_real_events_of_its_names(events_server):
    srv = events_server(keepalive="1")                 # keep-alives flow, never handed over
    c = client_of(srv)
    only_a = Collector(c, ["a"], want=2)
    everything = Collector(c, [], want=3)
    try:
        assert only_a.ready.wait(BOUND) and everything.ready.wait(BOUND)
        assert sorted([only_a.client_id, everything.client_id]) == [1, 2]
        for name in ("a", "b", "a"):
            c.events.send(Event(name=name))
        assert only_a.enough.wait(BOUND) and everything.enough.wait(BOUND)
        assert only_a.got == ["a", "a"] and everything.got == ["a", "b", "a"]
    finally:
        only_a.interrupt()
        everything.interrupt()
    assert not only_a.listening_t.is_alive() and not everything.listening_t.is_alive()


def test_in_process_send(events_server, tmp_path):
    from grpchelper import RpcException
    from grpchelper.api import EventProperty, ResultCode
    srv = events_server()
    listener = Collector(client_of(srv), ["pushed"])
    try:
        assert listener.ready.wait(BOUND)
        srv.send_event(Event(name="pushed", properties=[EventProperty(name="k", value="v")]))
        assert listener.enough.wait(BOUND) and listener.got == ["pushed"]
        with pytest.raises(RpcException) as e:
            srv.send_event(Event(name=""))
        assert e.value.rc == ResultCode.ERROR_PARAM_MISSING
    finally:
        listener.interrupt()
    plain = RpcServer(0, [], Folders(workspace=tmp_path / "plain"), {"rpc-shutdown-grace": "1"})
    try:
        with pytest.raises(RpcException) as e:
            plain.send_event(Event(name="x"))
        assert e.value.rc == ResultCode.ERROR_STATE_UNEXPECTED
    finally:
        plain.shutdown()


def test_an_unknown_id_starts_a_new_queue(events_server):
    srv = events_server()
    c = client_of(srv)
    listener = Collector(c, [], client_id=42)
    try:
        assert listener.ready.wait(BOUND) and listener.client_id == 1
        c.events.send(Event(name="x"))
        assert listener.enough.wait(BOUND) and listener.got == ["x"]
    finally:
        listener.interrupt()


def test_resume_across_a_server_restart(events_server):
    port = free_port()
    first = events_server(port)
    c = client_of(first, port)
    listener = Collector(c, [], want=2)
    try:
        assert listener.ready.wait(BOUND) and listener.client_id == 1
        c.events.send(Event(name="before"))
        first.shutdown()                                # the listener: "event service restarting"
        second = events_server(port)                    # queue 1 restored, interrupted
        c.events.send(Event(name="after"))
        assert listener.enough.wait(BOUND), listener.got
        assert listener.got == ["before", "after"] and listener.client_id == 1
        assert list(c.events.inspect(Empty()).client_ids) == [1]
        assert second.is_running
    finally:
        listener.interrupt()
