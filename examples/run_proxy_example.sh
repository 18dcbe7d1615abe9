#!/bin/sh
# Runs the proxied-services example end to end:
#   run_proxy_example.sh WORK_DIR "MAIN COMMAND" "BACKEND COMMAND" "CLIENT COMMAND"
# The main and backend commands get "-p 0 -w W --system S --user U [-c NAME=VALUE]..." and
# print "serving on port N" (the backend once it registered with the main server). The
# client command is run_rpc_sample.sh's ("-p N --name X --value Y [--shutdown]", printing
# "a=1 b=2" or "error <code>: <message>"). Checks: calls made on the main server reach the
# backend (the same items as direct calls); once the
# backend stopped (SIGTERM: it forgets itself), a call on the main server answers
# ERROR_PROXY_UNREGISTERED (14) after rpc-client-timeout; a new backend registers and calls
# work again; the main server stops on srv.shutdown (exit 0) and kept proxy.json.
set -u
WORK=$1
MAIN=$2
BACKEND=$3
CLIENT=$4
rm -rf "$WORK"
mkdir -p "$WORK/sys" "$WORK/usr"
mpid=""
bpid=""
cleanup() {
    [ -n "$mpid" ] && kill -KILL "$mpid" 2>/dev/null
    [ -n "$bpid" ] && kill -KILL "$bpid" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in main.out backend.out backend2.out; do
        [ -f "$WORK/$f" ] && { echo "--- $f" >&2; cat "$WORK/$f" >&2; }
    done
    exit 1
}
wait_port() {   # file pid → port
    i=0
    while [ $i -lt 400 ]; do
        p=$(sed -n "s/^serving on port \([0-9]*\)$/\1/p" "$1" 2>/dev/null)
        [ -n "$p" ] && { echo "$p"; return 0; }
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

# shellcheck disable=SC2086
$MAIN -p 0 -w "$WORK/main" --system "$WORK/sys" --user "$WORK/usr" -c rpc-client-timeout=1 >"$WORK/main.out" 2>&1 &
mpid=$!
main=$(wait_port "$WORK/main.out" "$mpid") || fail "main server did not start"

# shellcheck disable=SC2086
$BACKEND -p 0 -w "$WORK/backend" --system "$WORK/sys" --user "$WORK/usr" \
    -c rpc-main-host=127.0.0.1 -c "rpc-main-port=$main" >"$WORK/backend.out" 2>&1 &
bpid=$!
backend=$(wait_port "$WORK/backend.out" "$bpid") || fail "backend did not start"

# shellcheck disable=SC2086
out=$($CLIENT -p "$main" --name a --value 1) || fail "call through the main server: $out"
[ "$out" = "a=1" ] || fail "through the main server: '$out'"
# shellcheck disable=SC2086
out=$($CLIENT -p "$backend" --name b --value 2) || fail "direct call: $out"
[ "$out" = "a=1 b=2" ] || fail "direct: '$out'"
# shellcheck disable=SC2086
out=$($CLIENT -p "$main" --name "" --value x)
[ $? = 1 ] || fail "empty name through the main server succeeded"
case "$out" in "error 20: "*"empty name"*) ;; *) fail "empty name printed '$out'" ;; esac

# The backend stops (and forgets itself): the main server has nowhere to forward.
kill -TERM "$bpid"
wait "$bpid"
rc=$?
bpid=""
[ $rc = 0 ] || fail "backend exit status $rc"
# shellcheck disable=SC2086
out=$($CLIENT -p "$main" --name c --value 3)
[ $? = 1 ] || fail "call without a backend succeeded: '$out'"
case "$out" in "error 14: "*"Proxy didn't registered in time"*) ;; *) fail "without a backend: '$out'" ;; esac

# A new backend (a new port) registers: calls work again (its items start empty).
# shellcheck disable=SC2086
$BACKEND -p 0 -w "$WORK/backend" --system "$WORK/sys" --user "$WORK/usr" \
    -c rpc-main-host=127.0.0.1 -c "rpc-main-port=$main" >"$WORK/backend2.out" 2>&1 &
bpid=$!
wait_port "$WORK/backend2.out" "$bpid" >/dev/null || fail "second backend did not start"
# shellcheck disable=SC2086
out=$($CLIENT -p "$main" --name d --value 4 --shutdown) || fail "after re-registration: $out"
[ "$out" = "d=4" ] || fail "after re-registration: '$out'"
wait "$mpid"
rc=$?
mpid=""
[ $rc = 0 ] || fail "main server exit status $rc"
[ -f "$WORK/main/proxy.json" ] || fail "no proxy.json"
kill -TERM "$bpid"
wait "$bpid"
bpid=""
echo "proxy example OK: $MAIN / $BACKEND / $CLIENT"
