#!/bin/sh
# Runs an RpcServer / RpcClient sample pair (Swift, C or Python: same command lines)
# end to end:   run_rpc_sample.sh WORK_DIR "SERVER COMMAND" "CLIENT COMMAND"
# The server command gets "-p 0 -w W --system S --user U" and must print "serving on
# port N"; the client command gets "-p N --name X --value Y [--shutdown]" and prints the
# items ("a=1 b=2") or "error <code>: <message>" (exit 1). Checks: updates accumulate,
# an empty name is refused with ERROR_PARAM_MISSING (20), srv.shutdown by the client
# ends the server (exit 0), the manager's log file holds its records (at the INFO level
# the user layer's loggers.json gives the manager's logger: a Python host's root logger is
# at WARNING, as Python's).
set -u
WORK=$1
SERVER=$2
CLIENT=$3
rm -rf "$WORK"
mkdir -p "$WORK/sys" "$WORK/usr"
echo '{"MySampleManager": "INFO"}' >"$WORK/usr/loggers.json"
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- server output" >&2
    cat "$WORK/server.out" >&2
    exit 1
}

# shellcheck disable=SC2086
$SERVER -p 0 -w "$WORK/wks" --system "$WORK/sys" --user "$WORK/usr" >"$WORK/server.out" 2>&1 &
pid=$!
port=""
i=0
while [ $i -lt 300 ]; do
    port=$(sed -n 's/^serving on port \([0-9]*\)$/\1/p' "$WORK/server.out")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "server exited early"
    sleep 0.05
    i=$((i + 1))
done
[ -n "$port" ] || fail "server did not start"

# shellcheck disable=SC2086
out=$($CLIENT -p "$port" --name a --value 1) || fail "first call: $out"
[ "$out" = "a=1" ] || fail "first call printed '$out'"
# shellcheck disable=SC2086
out=$($CLIENT -p "$port" --name b --value 2) || fail "second call: $out"
[ "$out" = "a=1 b=2" ] || fail "second call printed '$out'"
# shellcheck disable=SC2086
out=$($CLIENT -p "$port" --name "" --value x)
rc=$?
[ $rc = 1 ] || fail "empty name: exit $rc"
case "$out" in "error 20: "*"empty name"*) ;; *) fail "empty name printed '$out'" ;; esac
# shellcheck disable=SC2086
out=$($CLIENT -p "$port" --name c --value 3 --shutdown) || fail "last call: $out"
[ "$out" = "a=1 b=2 c=3" ] || fail "last call printed '$out'"
wait "$pid"
rc=$?
pid=""
[ $rc = 0 ] || fail "server exit status $rc"
grep -q "b = 2" "$WORK/wks/logs/MySampleManager/MySampleManager.log" || fail "no manager log"
echo "rpc sample OK: $SERVER / $CLIENT"
