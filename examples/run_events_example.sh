#!/bin/sh
# Runs an events example (Swift, C or Python: same command lines) end to end:
#   run_events_example.sh WORK_DIR "SERVER COMMAND" "LISTEN COMMAND" "SEND COMMAND"
# The server command gets "-p 0 -w W --system S --user U", serves an RpcServer made with
# events, pushes a "tick" event (property n = 1, 2, ...) in-process every 0.1 s, and
# prints "serving on port N". The listen command gets "-p N --names A,B --count K": it
# prints "ready <client_id>", then each event it receives as "name k=v ..." until it has K,
# then interrupts its listener and exits 0. The send command gets "-p N --name X
# [--prop k=v]... [--shutdown]" and prints "sent", or "error <code>: <message>" (exit 1);
# --shutdown alone asks the server to stop (srv.shutdown).
# Checks: a listener gets the events sent by RPC in order with their properties and only
# those it filters; the server's in-process ticks reach a listener; an empty name is
# refused with ERROR_PARAM_MISSING (20); the server stops on srv.shutdown (exit 0) and
# leaves its queues in <workspace>/queues.json.
set -u
WORK=$1
SERVER=$2
LISTEN=$3
SEND=$4
rm -rf "$WORK"
mkdir -p "$WORK/sys" "$WORK/usr"
pid=""
lpid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    [ -n "$lpid" ] && kill -KILL "$lpid" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in server.out listen1.out listen1.err; do
        [ -f "$WORK/$f" ] && { echo "--- $f" >&2; cat "$WORK/$f" >&2; }
    done
    exit 1
}

# Waits (up to 15 s) for a line matching the sed pattern in a file written by process $2;
# prints the first group.
wait_line() {
    i=0
    while [ $i -lt 300 ]; do
        v=$(sed -n "$3" "$1" | head -n 1)
        [ -n "$v" ] && { echo "$v"; return 0; }
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

# shellcheck disable=SC2086
$SERVER -p 0 -w "$WORK/wks" --system "$WORK/sys" --user "$WORK/usr" >"$WORK/server.out" 2>&1 &
pid=$!
port=$(wait_line "$WORK/server.out" "$pid" 's/^serving on port \([0-9]*\)$/\1/p') || fail "server did not start"

# A listener of "greeting" events, in the background until it has two.
# shellcheck disable=SC2086
$LISTEN -p "$port" --names greeting --count 2 >"$WORK/listen1.out" 2>"$WORK/listen1.err" &
lpid=$!
wait_line "$WORK/listen1.out" "$lpid" 's/^ready \([0-9]*\)$/\1/p' >/dev/null || fail "listener not ready"
# shellcheck disable=SC2086
out=$($SEND -p "$port" --name other) || fail "send other: $out"
# shellcheck disable=SC2086
out=$($SEND -p "$port" --name greeting --prop who=alice) || fail "send: $out"
[ "$out" = "sent" ] || fail "send printed '$out'"
# shellcheck disable=SC2086
out=$($SEND -p "$port" --name greeting --prop who=bob --prop lang=en) || fail "send: $out"
wait "$lpid"
rc=$?
lpid=""
[ $rc = 0 ] || fail "listener exit status $rc"
got=$(sed -n '2,$p' "$WORK/listen1.out")
want="greeting who=alice
greeting who=bob lang=en"
[ "$got" = "$want" ] || fail "listener printed '$got'"

# The server's own (in-process) ticks.
# shellcheck disable=SC2086
out=$($LISTEN -p "$port" --names tick --count 2) || fail "tick listener: $out"
case "$out" in
    "ready "[0-9]*"
tick n="[0-9]*"
tick n="[0-9]*) ;;
    *) fail "tick listener printed '$out'" ;;
esac

# An empty name is refused.
# shellcheck disable=SC2086
out=$($SEND -p "$port" --name "")
rc=$?
[ $rc = 1 ] || fail "empty name: exit $rc"
case "$out" in "error 20: "*"Empty event name"*) ;; *) fail "empty name printed '$out'" ;; esac

# shellcheck disable=SC2086
out=$($SEND -p "$port" --shutdown) || fail "shutdown: $out"
wait "$pid"
rc=$?
pid=""
[ $rc = 0 ] || fail "server exit status $rc"
[ -f "$WORK/wks/queues.json" ] || fail "no queues.json"
echo "events example OK: $SERVER / $LISTEN / $SEND"
