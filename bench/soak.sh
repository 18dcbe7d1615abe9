#!/usr/bin/env bash
# Soak run: the C echo server (build/examples/c/echo_server, release build) at saturation
# for a long time, under a mix of the four gRPC call patterns, watching its memory.
#
#   bash bench/soak.sh [SECONDS] [soak.py options]      (default 600 s)
#
#   e.g. bash bench/soak.sh 40                # a short check
#        bash bench/soak.sh 1800 --procs 6    # options after SECONDS go to bench/soak.py
#
# Starts the server on 127.0.0.1, port 0 (the port is read from its "listening on port N"
# line), then bench/soak.py drives it from 4 client processes (grpcio) x 3 threads, each
# thread on a channel of its own looping over unary, client-streaming, server-streaming
# and bidi calls on the echo methods with varied message sizes (0 B .. 1 MiB) and checking
# every response (bytes, message count, echoed metadata, status); a few calls are
# cancelled or invalid on purpose and must end in exactly that error. Every 10 s it prints
# the server's VmRSS, Threads, open fds and CPU, and the calls completed and failed so far
# (plus one sample before the clients connect and one 10 s after they stop); at the end a
# summary and a table of RSS and threads over time to paste into
# bench/RESULTS.md (also in bench/.out/soak-report.md). Then the server is stopped with
# SIGTERM and must exit 0 within 20 s, having printed nothing unexpected.
#
# Exit status 0 only if: no call failed, RSS at the end is at most max(16 MiB, 20 %) above
# RSS at the first sample after the warm-up (60 s, or 10 % of shorter runs), the server
# stayed up and stopped cleanly. 130 when interrupted. Server output: bench/.out/soak-server.log
#
# Builds nothing: run `bash scripts/test.sh` or the README's cmake build first. Needs
# python3 with grpcio (PYTHON=... to choose the interpreter).
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
OUT=$BENCH/.out
PY=${PYTHON:-python3}
SERVER_BIN=$ROOT/build/examples/c/echo_server

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }
DURATION=600
if (($#)); then
    case "$1" in
        -h|--help) usage; exit 0 ;;
        -*) ;;
        *) DURATION=$1; shift ;;
    esac
fi
[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || { echo "soak.sh: SECONDS must be a positive integer, not '$DURATION'" >&2; exit 2; }

if [ ! -x "$SERVER_BIN" ]; then
    echo "soak.sh: $SERVER_BIN is missing; build it first with \`bash scripts/test.sh\`" >&2
    echo "         or the README's build command (cmake -S . -B build -G Ninja && cmake --build build)" >&2
    exit 1
fi
if ! "$PY" -c 'import grpc' 2>/dev/null; then
    echo "soak.sh: $PY cannot import grpc; install grpcio (python3 -m pip install grpcio)" >&2
    exit 1
fi

mkdir -p "$OUT"
SERVER_LOG=$OUT/soak-server.log
TMP=$(mktemp -d "${TMPDIR:-/tmp}/soak.XXXXXX")
SERVER_PID=
DRAIN_PID=
PY_PID=
SERVER_RC=

# Waits up to $2 seconds for process $1 (a child of this shell) to exit; 1 on timeout.
wait_exit() { timeout "$2" tail --pid="$1" -s 0.1 -f /dev/null 2>/dev/null; }

stop_server() {   # SIGTERM, up to 20 s for the graceful stop (5 s grace), then SIGKILL
    [ -n "$SERVER_PID" ] || return 0
    local pid=$SERVER_PID
    SERVER_PID=
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_exit "$pid" 20; then
        echo "soak.sh: the server (pid $pid) did not exit within 20 s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    SERVER_RC=0
    wait "$pid" 2>/dev/null || SERVER_RC=$?
    if [ -n "$DRAIN_PID" ]; then wait "$DRAIN_PID" 2>/dev/null || true; DRAIN_PID=; fi
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$PY_PID" ]; then   # soak.py stops its client processes on SIGTERM
        kill -TERM "$PY_PID" 2>/dev/null || true
        wait_exit "$PY_PID" 60 || kill -KILL "$PY_PID" 2>/dev/null || true
        wait "$PY_PID" 2>/dev/null || true
        PY_PID=
    fi
    stop_server
    if [ -n "$DRAIN_PID" ]; then kill "$DRAIN_PID" 2>/dev/null || true; wait "$DRAIN_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- server, port 0
# Its output goes through a FIFO: the shell reads up to the "listening on port N" line
# (blocking read, no polling), then `cat` copies the rest to the log until it exits.
# setsid: a Ctrl-C in the terminal reaches this shell (whose trap stops the clients first,
# then the server) but not the server, which would otherwise start its shutdown under load
# (it blocks SIGINT for sigwait, so the background job's SIG_IGN does not protect it).
# setsid execs in place here (a background job of a shell without job control is no
# process group leader), so $! is the server's pid; checked below.
mkfifo "$TMP/server.out"
setsid "$SERVER_BIN" 0 127.0.0.1 >"$TMP/server.out" 2>&1 &
SERVER_PID=$!
exec 3<"$TMP/server.out"
: >"$SERVER_LOG"
PORT=
while IFS= read -r -t 30 -u 3 line; do
    printf '%s\n' "$line" >>"$SERVER_LOG"
    if [[ $line =~ listening\ on\ port\ ([0-9]+) ]]; then PORT=${BASH_REMATCH[1]}; break; fi
done
if [ -z "$PORT" ]; then
    exec 3<&-
    echo "soak.sh: the server did not print \"listening on port N\" within 30 s; its output:" >&2
    sed 's/^/    /' "$SERVER_LOG" >&2
    exit 1
fi
cat <&3 >>"$SERVER_LOG" &
DRAIN_PID=$!
exec 3<&-
if [ "$(readlink "/proc/$SERVER_PID/exe" 2>/dev/null)" != "$(readlink -f "$SERVER_BIN")" ]; then
    echo "soak.sh: pid $SERVER_PID is not the server ($(readlink "/proc/$SERVER_PID/exe" 2>/dev/null || echo gone))" >&2
    exit 1
fi

echo "soak: $(date -u '+%Y-%m-%d %H:%M UTC'), machine nproc $(nproc), $(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), load avg $(cut -d' ' -f1-3 /proc/loadavg), libgrpchelper $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), Python $("$PY" -c 'import platform; print(platform.python_version())')"

# ---------------------------------------------------------------- load and samples
PY_RC=0
"$PY" "$BENCH/soak.py" --port "$PORT" --server-pid "$SERVER_PID" --seconds "$DURATION" \
    --server-label "examples/c/echo_server (release)" "$@" &
PY_PID=$!
wait "$PY_PID" || PY_RC=$?
PY_PID=

# ---------------------------------------------------------------- stop the server
echo
stop_server
unexpected=$(grep -v -e '^listening on port [0-9]*$' -e '^received signal 15, shutting down$' "$SERVER_LOG" || true)
echo "server stop : SIGTERM -> exit status $SERVER_RC; output: $(wc -l <"$SERVER_LOG") lines in ${SERVER_LOG#"$ROOT"/}"
rc=$PY_RC
if [ "$SERVER_RC" != 0 ]; then
    echo "problem     : the server did not stop cleanly (exit status $SERVER_RC)"
    ((rc)) || rc=1
fi
if [ -n "$unexpected" ]; then
    echo "problem     : unexpected server output (first 20 lines):"
    printf '%s\n' "$unexpected" | head -20 | sed 's/^/    /'
    ((rc)) || rc=1
fi
if ((rc == 0)); then echo "soak: PASS"; elif ((rc == 130)); then echo "soak: interrupted"; else echo "soak: FAIL"; fi
exit "$rc"
