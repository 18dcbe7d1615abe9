"""A slow backend holds a fast caller back through the proxy, and the proxy's memory stays
bounded: the upload direction of test_proxy_load's slow-caller test (the proxy forwards on
its event loop; while its call to the backend has a full send buffer, it stops reading the
caller's stream, and HTTP/2 flow control stops the caller)."""

import time

import grpc

from test_proxy_load import (AHEAD_MAX_MIB, BOUND, CHUNK, FLOOD, FLOOD_PAD, OWN_CONNECTION,  # noqa: F401
                             PAUSE_EVERY, RSS_GROWTH_MAX_MIB, backend_descriptor, children, folder, pb,
                             proc_status, register, servers, wait_stopped)


def test_a_slow_backend_holds_the_caller_back_and_the_proxy_memory_is_bounded(pb, children, servers):
    """240 MiB of requests from a caller (its sent count read as it goes) through a proxy in
    a child process (its RSS alone) to a backend whose `collect` reads 4 MiB at a time and,
    every 20 MiB, pauses until the caller has stopped: the caller is never more than a few
    windows ahead of the backend, and the proxy does not keep what the backend has not read."""
    sent = [0]
    received = [0]
    ahead = []

    Response = pb.Response

    class SlowCollect(pb.Backend):
        def collect(self, request_iterator) -> Response:
            n = 0
            for r in request_iterator:
                assert r.count == n and len(r.name) == FLOOD_PAD
                n += 1
                received[0] = n
                if n % CHUNK == 0:
                    ahead.append((n, sent[0] - n))
                    if n // CHUNK % PAUSE_EVERY == 0 and n < total[0]:
                        stopped = wait_stopped(lambda: sent[0])
                        ahead.append((n, stopped - n))
            return pb.Response(text="%d" % n)

    total = [0]
    proxy = children("proxy", "proxy").started()
    backend = servers("backend", [backend_descriptor(pb, SlowCollect())])
    register(proxy.port, backend.port)

    def requests(count):
        pad = "u" * FLOOD_PAD
        for i in range(count):
            yield pb.Request(name=pad, count=i)
            sent[0] = i + 1

    mib = 1 / 1024
    with grpc.insecure_channel("127.0.0.1:%d" % proxy.port, options=OWN_CONNECTION) as ch:
        stub = pb.Stub(ch)
        # Warm-up: the proxy's channel to the backend, its buffers and allocator arenas.
        total[0] = CHUNK
        warm = stub.collect(requests(CHUNK), timeout=BOUND)
        assert warm.text == "%d" % CHUNK, warm
        baseline = proc_status(proxy.pid, "VmRSS")
        sent[0], received[0], total[0] = 0, 0, FLOOD
        del ahead[:]
        t0 = time.monotonic()
        reply = stub.collect(requests(FLOOD), timeout=4 * BOUND)
        took = time.monotonic() - t0
    assert reply.text == "%d" % FLOOD
    peak = proc_status(proxy.pid, "VmHWM")
    worst = max(ahead, key=lambda a: a[1])
    summary = ("%d requests of %d B (%.0f MiB) in %.1f s; the caller ahead of the backend: at "
               "most %.1f MiB (after %d read); the proxy's RSS: %.1f MiB baseline, %.1f MiB peak"
               % (FLOOD, FLOOD_PAD, FLOOD * FLOOD_PAD / 2**20, took,
                  worst[1] * FLOOD_PAD / 2**20, worst[0], baseline * mib, peak * mib))
    print("\n" + summary)
    # The pauses were seen: the backend read in bursts while the caller waited.
    assert len(ahead) >= FLOOD // (CHUNK * PAUSE_EVERY), summary
    # The caller was held back: never more than a few windows ahead of the backend...
    assert worst[1] * FLOOD_PAD / 2**20 < AHEAD_MAX_MIB, summary
    # ...and the proxy did not keep what the backend had not read.
    assert (peak - baseline) * mib < RSS_GROWTH_MAX_MIB, summary
