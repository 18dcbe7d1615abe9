"""Records of proxied calls in a Python host: a proxied call is served on its connection's
event loop, and its records ("<RPC> <<", errors) are written from a queue of their own — a
Python logging handler never runs on an event loop (where it would hold every other call of
that loop while it writes)."""

import logging
import threading

from grpchelper import Folders, RpcServiceDescriptor

from test_proxy import backend_manager, proxied
from test_rpc_server import clients, dirs, pb, sample_client, servers  # noqa: F401

BOUND = 10


class Where(logging.Handler):
    """Keeps (message, kernel name of the emitting thread) of every record."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.seen = []
        self.cond = threading.Condition()

    def emit(self, record):
        with open("/proc/self/task/%d/comm" % threading.get_native_id()) as f:
            comm = f.read().strip()
        with self.cond:
            self.seen.append((record.getMessage(), comm))
            self.cond.notify_all()

    def wait_for(self, prefix, n):
        """The threads of the first n records whose message starts with prefix."""
        def found():
            return [c for m, c in self.seen if m.startswith(prefix)]
        with self.cond:
            assert self.cond.wait_for(lambda: len(found()) >= n, BOUND), self.seen
            return found()


def test_records_of_proxied_calls_are_written_off_the_event_loops(pb, servers, clients, tmp_path):
    where = Where()
    logger = logging.getLogger("RpcServer")
    logger.addHandler(where)
    before = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        main = servers(proxied(pb), cli_config={"rpc-client-timeout": "5"})
        servers(RpcServiceDescriptor(pb.module, "sample", pb.Version, backend_manager(pb), pb.add, pb.Stub),
                folders=Folders(workspace=tmp_path / "backend"),
                cli_config={"rpc-main-host": "127.0.0.1", "rpc-main-port": str(main.port)})
        c = sample_client(clients, pb, main)
        for i in range(5):
            assert c.sample.hello(pb.Request(name="r%d" % i)).text == "backend r%d" % i
        threads = where.wait_for("<RPC> << /sample.SampleService/hello", 5)
        assert not [t for t in threads if t.startswith("NIO-ELT")], threads
    finally:
        logger.setLevel(before)
        logger.removeHandler(where)
