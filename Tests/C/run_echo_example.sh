#!/bin/sh
# Runs the C echo example end to end (ctest: c.echo_example):
#   run_echo_example.sh ECHO_SERVER ECHO_CLIENT WORK_DIR
# Starts echo_server on a free port (port 0, 127.0.0.1), waits for its
# "listening on port N" line, runs echo_client against it, then sends SIGTERM
# and expects the server to shut down and exit with status 0.
set -u

SERVER=$1
CLIENT=$2
WORK=$3
rm -rf "$WORK"
mkdir -p "$WORK"

: >"$WORK/server.out"
: >"$WORK/server.err"
"$SERVER" 0 127.0.0.1 >"$WORK/server.out" 2>"$WORK/server.err" &
pid=$!
cleanup() {
    kill -KILL "$pid" 2>/dev/null
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    echo "--- server stdout" >&2
    cat "$WORK/server.out" >&2
    echo "--- server stderr" >&2
    cat "$WORK/server.err" >&2
    exit 1
}

# Wait up to 30 s for the port.
port=
tries=0
while [ -z "$port" ]; do
    port=$(sed -n 's/^listening on port \([0-9][0-9]*\)$/\1/p' "$WORK/server.out")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "echo_server exited early"
    tries=$((tries + 1))
    [ "$tries" -le 300 ] || fail "echo_server did not report its port"
    sleep 0.1
done
echo "echo_server listening on port $port"

"$CLIENT" "127.0.0.1:$port"
client_rc=$?
[ "$client_rc" -eq 0 ] || fail "echo_client exited with $client_rc"

kill -TERM "$pid" || fail "cannot signal echo_server"
# The server has a 5 s grace period; allow 20 s before calling it hung.
tries=0
while kill -0 "$pid" 2>/dev/null; do
    tries=$((tries + 1))
    # A zombie still answers kill -0 until reaped; wait reaps it below.
    if [ "$tries" -gt 200 ]; then
        fail "echo_server still running 20 s after SIGTERM"
    fi
    if ! ps -p "$pid" -o stat= 2>/dev/null | grep -qv Z; then
        break
    fi
    sleep 0.1
done
wait "$pid"
server_rc=$?
trap - EXIT
[ "$server_rc" -eq 0 ] || fail "echo_server exited with $server_rc after SIGTERM"
grep -q 'shutting down' "$WORK/server.out" || fail "echo_server did not report the shutdown"
echo "echo example OK"
