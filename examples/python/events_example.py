#!/usr/bin/env python3
"""Events with grpc-helper's API, run on grpchelper (twins in C and Swift; checked by
examples/run_events_example.sh):

    events_example.py serve -p 0 -w /tmp/wks       # RpcServer with events, pushing "tick"s
    events_example.py listen -p PORT --names greeting --count 2
    events_example.py send -p PORT --name greeting --prop who=alice [--shutdown]

    PYTHONPATH=bindings/python python3 examples/python/events_example.py serve -p 12345
"""
import argparse
import sys
import threading

from grpchelper import RpcCliParser, RpcClient, RpcException, RpcServer
from grpchelper.api import Event, EventApiVersion, EventProperty, EventServiceStub
from grpchelper.api import ServerApiVersion, ShutdownRequest
from grpchelper.api.server_pb2_grpc import RpcServerServiceStub
from grpchelper.events import EventsListener


def serve(argv):
    args = RpcCliParser("Events sample", "1.0.0").with_rpc_args(12345, "/etc/events-sample",
                                                               "~/.config/events-sample",
                                                               "events-sample-wks").parse(argv)
    srv = RpcServer(args.port, [], args.folders, args.config, with_events=True)
    srv.handle_exit_signals()
    print(f"serving on port {srv.port}", flush=True)

    # Unsolicited events from the host itself: in-process, no network round trip
    stop = threading.Event()

    def tick():
        n = 0
        while not stop.wait(0.1):
            n += 1
            srv.send_event(Event(name="tick", properties=[EventProperty(name="n", value=str(n))]))

    ticker = threading.Thread(target=tick, name="ticker")
    ticker.start()
    srv.wait_shutdown()
    stop.set()
    ticker.join()


def client(port):
    return RpcClient("127.0.0.1", port, {"events": (EventServiceStub, EventApiVersion.EVENT_API_CURRENT),
                                         "srv": (RpcServerServiceStub, ServerApiVersion.SERVER_API_CURRENT)},
                     name="events-sample", timeout=10)


class Printer(EventsListener):
    """Prints each event; done once it has `count` of them."""

    def __init__(self, client, names, count):
        self.left = count
        self.done = threading.Event()
        self.started = threading.Event()   # "ready" printed: events may be printed
        super().__init__(client, names)

    def on_event(self, event):
        self.started.wait(30)
        props = "".join(f" {p.name}={p.value}" for p in event.properties)
        print(f"{event.name}{props}", flush=True)
        self.left -= 1
        if self.left == 0:
            self.done.set()


def listen(argv):
    p = argparse.ArgumentParser(prog="events_example.py listen")
    p.add_argument("-p", "--port", type=int, default=12345)
    p.add_argument("--names", default="")
    p.add_argument("--count", type=int, default=1)
    args = p.parse_args(argv)
    listener = Printer(client(args.port), [n for n in args.names.split(",") if n], args.count)
    if not listener.ready.wait(30):
        raise SystemExit("not ready")
    print(f"ready {listener.client_id}", flush=True)
    listener.started.set()
    ok = listener.done.wait(30)
    listener.interrupt()
    raise SystemExit(0 if ok else 1)


def send(argv):
    p = argparse.ArgumentParser(prog="events_example.py send")
    p.add_argument("-p", "--port", type=int, default=12345)
    p.add_argument("--name")
    p.add_argument("--prop", action="append", default=[])
    p.add_argument("--shutdown", action="store_true")
    args = p.parse_args(argv)
    c = client(args.port)
    if args.name is not None:
        props = [EventProperty(name=k, value=v) for k, v in (s.split("=", 1) for s in args.prop)]
        c.events.send(Event(name=args.name, properties=props))
        print("sent")
    if args.shutdown:
        c.srv.shutdown(ShutdownRequest(timeout=-1))


if __name__ == "__main__":
    commands = {"serve": serve, "listen": listen, "send": send}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        raise SystemExit(f"usage: {sys.argv[0]} serve|listen|send ...")
    try:
        commands[sys.argv[1]](sys.argv[2:])
    except RpcException as e:
        print(f"error {e.rc}: {e}")
        raise SystemExit(1)
