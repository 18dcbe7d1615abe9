"""What the grpchelper tool prints: tables for people, JSON for scripts, errors with their
ResultCode name, and a note on stderr when something takes a while."""

import contextlib
import json
import sys
import threading

# Exit statuses: 0 success; 1 an error answered by the server (or a failed call); 2 bad usage
# (argparse's); 3 the server could not be reached.
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

# How long a wait goes before the tool says it is waiting (seconds).
WAIT_NOTE_AFTER = 0.5


class ToolError(Exception):
    """An error the tool reports as "<NAME>: <message>" with exit status `code`."""

    def __init__(self, name, message, code=EXIT_ERROR):
        super().__init__("%s: %s" % (name, message))
        self.name = name
        self.message = message
        self.code = code


def table(headers, rows, out=None):
    """Prints rows (sequences of values) under headers, columns aligned."""
    out = out or sys.stdout
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, r in enumerate(cells):
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


def print_json(value, out=None):
    out = out or sys.stdout
    out.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


def print_json_line(value, out=None):
    out = out or sys.stdout
    out.write(json.dumps(value, sort_keys=False) + "\n")
    out.flush()


@contextlib.contextmanager
def waiting(what, err=None):
    """Around a wait that may be long: after WAIT_NOTE_AFTER seconds it prints "waiting
    for <what>..." on stderr (once), so that a person sees the tool is not stuck. Nothing
    is printed for a short wait."""
    err = err or sys.stderr
    done = threading.Event()

    def note():
        if not done.wait(WAIT_NOTE_AFTER):
            err.write("waiting for %s...\n" % what)
            err.flush()

    t = threading.Thread(target=note, daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()
