#!/usr/bin/env bash
# README command (1): set up, build, and run the main job — the framework end to end, with
# the project's own examples and tool:
#   1. `grpchelper serve` as the main server of a proxied system (the sample service MyService
#      declared proxied), and `grpchelper events listen` on it;
#   2. the sample's Python backend (examples/python/proxy_example.py backend), whose
#      RpcProxiedManager registers it with the main server;
#   3. calls through the main server from the C, Swift and Python sample clients
#      (examples/c/rpc_client, rpc-sample call, examples/python/rpc_client.py);
#   4. the tool on the main server: info, reflection (list, call), health, a config item of
#      the backend changed through the main server's merged config service, a logger level
#      of the backend, an event;
#   5. shutdowns by the tool: the backend forgets itself, the main server stops, the
#      listener ends; the events it printed.
# Every step prints what it sent and what came back. Exit status 0 when all went as expected.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup.sh

if [ -n "${GH_MAIN_BUILT:-}" ]; then
    # scripts/test.sh has built all of it (the Swift build with tests differs from a
    # plain one: building rpc-sample alone here would compile everything again)
    echo "== built by the test command: the Swift sample client, libgrpchelper.so, the C examples"
else
    echo "== build: the Swift sample client, libgrpchelper.so and the C examples"
    swift build --product rpc-sample
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/grpchelper-main.XXXXXX")
mkdir -p "$WORK/sys" "$WORK/usr"
export PYTHONPATH="$ROOT/bindings/python:$ROOT/examples/python"
# the library just built, whatever else the machine has installed
export GRPCHELPER_LIBRARY="$ROOT/build/lib/libgrpchelper.so.1"
GH=(python3 -m grpchelper)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "FAILED: $*" >&2
    for f in main.out backend.out events.out events.err; do
        [ -f "$WORK/$f" ] && { echo "--- $f" >&2; cat "$WORK/$f" >&2; }
    done
    exit 1
}
wait_line() {   # FILE PATTERN PID: waits (bounded) for a line matching PATTERN
    for _ in $(seq 400); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
port_of() { sed -n 's/^serving on port \([0-9]*\)$/\1/p' "$1"; }
wait_exit() {   # PID WHAT: waits (bounded) for the process to end; fails unless it exits 0
    for _ in $(seq 600); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$1" 2>/dev/null && fail "$2 did not stop within 30 s"
    wait "$1" || fail "$2 exited $?"
}
expect_in() {   # TEXT COMMAND...: runs a command (printing it and its output), checks TEXT is in it
    want=$1
    shift
    printf '$ %s\n' "$*"
    got=$("$@") || fail "$* (exit $?): $got"
    echo "$got"
    case "$got" in *"$want"*) ;; *) fail "$*: '$want' not in its output" ;; esac
}
step() { printf '\n== %s\n' "$*"; }
show() {        # runs a command, printing it and its output
    printf '$ %s\n' "$*"
    "$@" || fail "$* (exit $?)"
}

step "1. the main server: grpchelper serve --proxy my=sample.my_pb2_grpc"
"${GH[@]}" serve -p 0 -w "$WORK/main" --system "$WORK/sys" --user "$WORK/usr" \
    -c rpc-shutdown-grace=2 --proxy my=sample.my_pb2_grpc >"$WORK/main.out" 2>&1 &
main_pid=$!
pids+=("$main_pid")
wait_line "$WORK/main.out" "^serving on port" "$main_pid" || fail "the main server did not start"
MAIN=$(port_of "$WORK/main.out")
echo "main server on port $MAIN"
"${GH[@]}" events listen -p "$MAIN" --json >"$WORK/events.out" 2>"$WORK/events.err" &
listen_pid=$!
pids+=("$listen_pid")
wait_line "$WORK/events.err" "^listening to the events" "$listen_pid" || fail "the listener did not start"
cat "$WORK/events.err"

step "2. the backend registers itself with the main server (RpcProxiedManager)"
python3 examples/python/proxy_example.py backend -p 0 -w "$WORK/backend" --system "$WORK/sys" \
    --user "$WORK/usr" -c rpc-main-host=127.0.0.1 -c "rpc-main-port=$MAIN" >"$WORK/backend.out" 2>&1 &
backend_pid=$!
pids+=("$backend_pid")
wait_line "$WORK/backend.out" "^serving on port" "$backend_pid" || fail "the backend did not start"
BACKEND=$(port_of "$WORK/backend.out")
echo "backend on port $BACKEND"
expect_in "127.0.0.1:$BACKEND" "${GH[@]}" info -p "$MAIN"

step "3. MyService through the main server, from three languages"
expect() {      # EXPECTED COMMAND...: runs a sample client, checks what it printed
    want=$1
    shift
    printf '$ %s\n' "$*"
    got=$("$@") || fail "$* (exit $?): $got"
    echo "$got"
    [ "$got" = "$want" ] || fail "$*: expected '$want'"
}
expect "from-c=1" build/examples/c/rpc_client -p "$MAIN" --name from-c --value 1
expect "from-c=1 from-swift=2" .build/debug/rpc-sample call -p "$MAIN" --name from-swift --value 2
expect "from-c=1 from-python=3 from-swift=2" python3 examples/python/rpc_client.py -p "$MAIN" \
    --name from-python --value 3

step "4. the tool: reflection, health, config, logs, events"
expect_in "MyService" "${GH[@]}" list "127.0.0.1:$MAIN"
expect_in "/MyService/update  unary  MyConfig -> MyStatus" "${GH[@]}" list "127.0.0.1:$MAIN" MyService
expect_in '"name": "from-swift"' "${GH[@]}" call "127.0.0.1:$MAIN" /MyService/list '{}'
expect_in '"status": "SERVING"' "${GH[@]}" call "127.0.0.1:$MAIN" /grpc.health.v1.Health/Check \
    '{"service": "MyService"}'
echo "-- a logger level of the backend (its manager then logs each list at DEBUG):"
show "${GH[@]}" log set -p "$BACKEND" MyBackendManager=debug
echo "-- the backend's config item, through the main server's merged config service:"
expect_in "my-prefix" "${GH[@]}" config get -p "$MAIN"
expect_in "demo-" "${GH[@]}" config set -p "$MAIN" my-prefix=demo-
expect "demo-from-c=1 demo-from-python=3 demo-from-swift=2" python3 examples/python/rpc_client.py \
    -p "$MAIN" --name from-python --value 3
show "${GH[@]}" events send -p "$MAIN" demo.step step=4 by=main.sh

step "5. shutdowns"
show "${GH[@]}" shutdown -p "$BACKEND"
wait_exit "$backend_pid" "the backend"
echo "the backend stopped (and forgot itself)"
expect_in "not registered" "${GH[@]}" proxy list -p "$MAIN"
show "${GH[@]}" shutdown -p "$MAIN"
wait_exit "$main_pid" "the main server"
echo "the main server stopped"
wait_exit "$listen_pid" "the listener"
echo "-- what the listener printed (one JSON event a line):"
cat "$WORK/events.out"
for e in RPC_PROXY_REGISTER demo.step RPC_PROXY_FORGET; do
    grep -q "\"name\": \"$e\"" "$WORK/events.out" || fail "the listener did not see $e"
done
grep -q "prefix 'demo-'" "$WORK/backend/logs/MyBackendManager/MyBackendManager.log" ||
    fail "the backend's manager did not log at DEBUG"
pids=()
echo
echo "main job OK"
