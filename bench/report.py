"""Helpers for bench/run.sh (standard library only).

    python3 report.py body N OUT
        Writes the h2load request body: a gRPC frame (flag 0, big-endian length)
        holding an EchoMessage whose field 1 (bytes) is N bytes of 'x'.
    python3 report.py cell SERVER PAYLOAD CONNS STREAMS H2LOAD_OUT LOG_FILE HWM_KB ALIVE
        Parses one h2load run (its stdout and --log-file) and prints one
        tab-separated result row (see COLUMNS).
    python3 report.py table RESULTS_TSV
        Prints the comparison table from the rows gathered by `cell`.
"""
import math
import re
import sys

COLUMNS = ["server", "payload", "conns", "streams", "rps", "p99_ms", "rss_mib",
           "requests", "failed", "non2xx", "note"]
SERVERS = ["ours", "cpp-sync", "cpp-callback", "grpcio"]
PEERS = ["cpp-sync", "cpp-callback", "grpcio"]


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def body(n: int, path: str) -> None:
    message = b"\x0a" + varint(n) + b"x" * n          # EchoMessage{data: N bytes}
    frame = b"\x00" + len(message).to_bytes(4, "big") + message
    with open(path, "wb") as f:
        f.write(frame)


def percentile(sorted_values, q):
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def cell(server, payload, conns, streams, out_path, log_path, hwm_kb, alive):
    text = open(out_path, errors="replace").read()
    notes = []
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
    rps = float(m.group(1)) if m else float("nan")
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    done = succeeded = failed = 0
    if m:
        done, succeeded, failed = int(m.group(3)), int(m.group(4)), int(m.group(5))
    else:
        notes.append("h2load-output-unparsed")
    m = re.search(r"status codes: (\d+) 2xx", text)
    ok2xx = int(m.group(1)) if m else 0
    non2xx = max(0, done - ok2xx)
    latencies = []
    try:
        with open(log_path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3 and parts[1].startswith("2"):
                    latencies.append(int(parts[2]))
    except OSError:
        notes.append("no-log-file")
    latencies.sort()
    p99_ms = percentile(latencies, 99) / 1000 if latencies else float("nan")
    rss = int(hwm_kb) / 1024 if hwm_kb.isdigit() else float("nan")
    if failed:
        notes.append(f"{failed}-failed")
    if non2xx:
        notes.append(f"{non2xx}-non-2xx")
    if alive != "1":
        notes.append("server-died")
    if succeeded == 0:
        notes.append("no-successful-request")
    row = [server, payload, conns, streams, f"{rps:.1f}", f"{p99_ms:.3f}", f"{rss:.1f}",
           str(succeeded), str(failed), str(non2xx), ",".join(notes) or "-"]
    print("\t".join(row))


def fmt(value, digits=0):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}".replace(",", " ") if digits == 0 else f"{value:.{digits}f}"


def table(path):
    rows = {}
    order = []
    servers_seen = set()
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(COLUMNS) or parts[0] == "server":
                continue
            r = dict(zip(COLUMNS, parts))
            key = (int(r["payload"]), int(r["conns"]), int(r["streams"]))
            if key not in order:
                order.append(key)
            rows[(key, r["server"])] = r
            servers_seen.add(r["server"])
    servers = [s for s in SERVERS if s in servers_seen]
    ratios = [p for p in PEERS if "ours" in servers_seen and p in servers_seen]

    def num(r, k):
        try:
            return float(r[k])
        except (KeyError, TypeError, ValueError):
            return float("nan")

    # Column layout: fixed-width groups per server, then ratio columns.
    group_w = 24
    head1 = f"{'payload':>7} {'C×M':>6} "
    head2 = f"{'':>7} {'':>6} "
    for s in servers:
        head1 += f"| {s:^{group_w - 2}} "
        head2 += f"| {'req/s':>8} {'p99 ms':>6} {'MiB':>6} "
    widths = {p: len("ours/" + p) for p in ratios}
    if ratios:
        head1 += "| " + " ".join(f"{'ours/' + p:>{widths[p]}}" for p in ratios)
        head2 += "| " + " ".join(f"{'req/s':>{widths[p]}}" for p in ratios)
    print(head1.rstrip())
    print(head2.rstrip())
    print("-" * len(head1.rstrip()))
    notes = []
    for key in order:
        payload, c, m = key
        label = "1 KiB" if payload == 1024 else f"{payload} B"
        line = f"{label:>7} {f'{c}×{m}':>6} "
        for s in servers:
            r = rows.get((key, s))
            if r is None:
                line += f"| {'-':>8} {'-':>6} {'-':>6} "
                continue
            flag = "" if r["note"] == "-" else "!"
            line += (f"| {fmt(num(r, 'rps')) + flag:>8} {fmt(num(r, 'p99_ms'), 2):>6} "
                     f"{fmt(num(r, 'rss_mib'), 1):>6} ")
            if flag:
                notes.append(f"{label} {c}×{m} {s}: {r['note']}")
        if ratios:
            cells = []
            ours = rows.get((key, "ours"))
            for p in ratios:
                peer = rows.get((key, p))
                if ours is None or peer is None or not num(peer, "rps") > 0:
                    cells.append(f"{'-':>{widths[p]}}")
                else:
                    cells.append(f"{num(ours, 'rps') / num(peer, 'rps'):>{widths[p]}.2f}")
            line += "| " + " ".join(cells)
        print(line.rstrip())
    for n in notes:
        print(f"  ! {n}")


def main(argv):
    if len(argv) >= 3 and argv[0] == "body":
        body(int(argv[1]), argv[2])
    elif len(argv) == 9 and argv[0] == "cell":
        cell(*argv[1:])
    elif len(argv) == 2 and argv[0] == "table":
        table(argv[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
