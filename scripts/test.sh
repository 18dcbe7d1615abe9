#!/usr/bin/env bash
# README command (2): set up, build, and run every test suite.
#   Swift unit + integration tests (debug build, swift test)
#   C tests through the public header (CMake release build of libgrpchelper.so, ctest)
#   interop with grpcio, both directions (pytest)
#   the Python binding: the grpcio equivalence matrix and the binding's own tests (pytest)
#   the helper services against the original grpc-helper 2.3.1 (pytest; pip-installed once
#   into ~/.cache/libgrpchelper)
#   the main job (scripts/main.sh), end to end
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== swift build (debug, with tests)"
swift build --build-tests
echo "== swift test"
# One test at a time: many tests block their thread on RPCs whose servers run async handlers
# (built-in services, events, proxies) on Swift's global concurrency pool (one thread per
# core); run side by side, blocked tests can take the whole pool and stall those handlers
# until their timeouts (seen with --parallel: listeners not served for 10-15 s).
swift test --skip-build --no-parallel
echo "== swift test: leak check (alone: it counts live objects process-wide)"
GH_LEAK_TESTS=1 swift test --skip-build --filter LeakTests

echo "== Swift helper-layer example (examples/swift/HelperHost)"
sh examples/run_helper_host.sh 64 "${TMPDIR:-/tmp}/gh-swift-helper-example-$$" .build/debug/helper-host
echo "== Swift RpcServer / RpcClient example (examples/swift/RpcSample)"
sh examples/run_rpc_sample.sh "${TMPDIR:-/tmp}/gh-swift-rpc-sample-$$" ".build/debug/rpc-sample serve" ".build/debug/rpc-sample call"
echo "== Swift events example (examples/swift/EventsExample)"
sh examples/run_events_example.sh "${TMPDIR:-/tmp}/gh-swift-events-$$" ".build/debug/events-example serve" \
    ".build/debug/events-example listen" ".build/debug/events-example send"

echo "== cmake (release libgrpchelper.so, C examples and tests)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGH_BUILD_TESTS=ON >/dev/null
cmake --build build
echo "== ctest"
ctest --test-dir build --output-on-failure

echo "== pytest (interop with grpcio)"
python3 -m pytest -q Tests/interop

echo "== pytest (Python binding: equivalence matrix with grpcio, binding tests)"
python3 -m pytest -q bindings/python/tests

echo "== pytest (wire interop with the original grpc-helper 2.3.1, both directions)"
GRPCHELPER_REQUIRE_ORIGINAL=1 python3 -m pytest -q Tests/interop_helper

echo "== the main job (README command 1: everything is built, it only runs)"
GH_MAIN_BUILT=1 bash scripts/main.sh
