#!/usr/bin/env bash
# README command (1): set up, build, and run the main job: start the example C echo
# server and run the example C and Swift clients against it, printing what they exchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

swift build --product echo-client
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGH_BUILD_TESTS=OFF >/dev/null
cmake --build build

log=$(mktemp)
build/examples/c/echo_server 0 >"$log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "listening on port" "$log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$log")
[ -n "$port" ] || { echo "the echo server did not start"; cat "$log"; exit 1; }
echo "== C echo server listening on port $port"
echo "== C client"
build/examples/c/echo_client "127.0.0.1:$port"
echo "== Swift client"
.build/debug/echo-client "127.0.0.1:$port"
