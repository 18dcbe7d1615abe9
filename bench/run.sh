#!/usr/bin/env bash
# Unary gRPC benchmark: h2load against our example C echo server and, in the same run,
# against three peers serving the same method (/grpchelper.examples.Echo/Unary):
#   ours          build/examples/c/echo_server (libgrpchelper, C handler)
#   cpp-sync      C++ gRPC synchronous (thread-pool) server   (bench/cpp_echo_server.cc)
#   cpp-callback  C++ gRPC callback (reactor) server          (bench/cpp_echo_server.cc)
#   grpcio        grpcio sync server, ThreadPoolExecutor       (bench/grpcio_echo_server.py)
# for 10-byte and 1 KiB payloads at 1×1, 1×100 and 8×32 (connections × concurrent
# streams), printing req/s, p99 latency and peak RSS per server, and ours/peer ratios.
#
#   bash bench/run.sh [--duration S] [--quick] [--warmup S] [--only LIST]
#                     [--threads N] [--grpcio-workers N]
#
#   --duration S        measured seconds per cell (default 10)
#   --quick             2 s per cell, 1 s warm-up
#   --warmup S          h2load warm-up seconds per cell (default 2; 1 with --quick)
#   --only LIST         comma-separated subset of ours,grpcio,cpp-sync,cpp-callback
#   --threads N         h2load worker threads (default 1, capped at the connection count)
#   --grpcio-workers N  ThreadPoolExecutor max_workers of the grpcio server (default 16)
#
# Installs what is missing (apt-get, pip), builds into bench/.out/, and leaves raw
# results in bench/.out/results.tsv and per-cell h2load output in bench/.out/cells/.
#
# The Python binding (grpcio vs grpchelper servers and clients) has its own benchmark:
#   python3 bench/python_bench.py [--seconds S] [--repeat N] [--quick]   (see its --help)
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
OUT=$BENCH/.out
PY=${PYTHON:-python3}

DURATION=10
WARMUP=
THREADS=1
GRPCIO_WORKERS=16
ONLY=ours,cpp-sync,cpp-callback,grpcio
PAYLOADS=(10 1024)
SHAPES=(1x1 1x100 8x32)

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
    case "$1" in
        --duration) DURATION=${2:?--duration needs seconds}; shift 2 ;;
        --duration=*) DURATION=${1#*=}; shift ;;
        --quick) DURATION=2; WARMUP=${WARMUP:-1}; shift ;;
        --warmup) WARMUP=${2:?--warmup needs seconds}; shift 2 ;;
        --warmup=*) WARMUP=${1#*=}; shift ;;
        --only) ONLY=${2:?--only needs a list}; shift 2 ;;
        --only=*) ONLY=${1#*=}; shift ;;
        --threads) THREADS=${2:?--threads needs a number}; shift 2 ;;
        --threads=*) THREADS=${1#*=}; shift ;;
        --grpcio-workers) GRPCIO_WORKERS=${2:?--grpcio-workers needs a number}; shift 2 ;;
        --grpcio-workers=*) GRPCIO_WORKERS=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
WARMUP=${WARMUP:-2}
for v in "$DURATION" "$WARMUP" "$THREADS" "$GRPCIO_WORKERS"; do
    [[ $v =~ ^[0-9]+$ && $v -gt 0 ]] || { echo "run.sh: not a positive integer: $v" >&2; exit 2; }
done

# Servers in table order, filtered by --only.
SERVERS=()
IFS=, read -r -a wanted <<<"$ONLY"
for w in "${wanted[@]}"; do
    case "$w" in ours|cpp-sync|cpp-callback|grpcio) ;; *) echo "run.sh: unknown server '$w' (ours,grpcio,cpp-sync,cpp-callback)" >&2; exit 2 ;; esac
done
for s in ours cpp-sync cpp-callback grpcio; do
    for w in "${wanted[@]}"; do [ "$w" = "$s" ] && SERVERS+=("$s"); done
done
((${#SERVERS[@]})) || { echo "run.sh: --only selects no server" >&2; exit 2; }
want() { local s; for s in "${SERVERS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
want_cpp() { want cpp-sync || want cpp-callback; }

log() { echo "== $*" >&2; }

# ---------------------------------------------------------------- install (idempotent)
apt_pkgs=(nghttp2-client pkg-config)
want ours && apt_pkgs+=(cmake ninja-build libnghttp2-dev zlib1g-dev)
want_cpp && apt_pkgs+=(g++ libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc)
missing=()
for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# grpcio: for the grpcio peer and for the grpc-status check of every server.
if ! "$PY" -c "import grpc" 2>/dev/null; then
    log "pip installing grpcio"
    "$PY" -m pip install -q --disable-pip-version-check grpcio
fi
want ours && { command -v swift >/dev/null || { echo "run.sh: building ours needs the Swift toolchain (swift on PATH)" >&2; exit 1; }; }

# ---------------------------------------------------------------- build
mkdir -p "$OUT/cells"
if want ours; then
    log "building ours (cmake, Release; log: bench/.out/build-ours.log)"
    if ! (cd "$ROOT" && cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release &&
          cmake --build build) >"$OUT/build-ours.log" 2>&1; then
        tail -n 40 "$OUT/build-ours.log" >&2
        echo "run.sh: building ours failed" >&2
        exit 1
    fi
    [ -x "$ROOT/build/examples/c/echo_server" ] || { echo "run.sh: build/examples/c/echo_server missing after the build" >&2; exit 1; }
fi
if want_cpp; then
    CPP_BIN=$OUT/cpp_echo_server
    if [ ! -x "$CPP_BIN" ] || [ "$BENCH/echo.proto" -nt "$CPP_BIN" ] || [ "$BENCH/cpp_echo_server.cc" -nt "$CPP_BIN" ]; then
        log "building cpp_echo_server (g++ -O2, grpc++ $(pkg-config --modversion grpc++))"
        mkdir -p "$OUT/gen"
        protoc -I"$BENCH" --cpp_out="$OUT/gen" --grpc_out="$OUT/gen" \
            --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" "$BENCH/echo.proto"
        # shellcheck disable=SC2046
        g++ -O2 -std=c++17 -I"$OUT/gen" "$BENCH/cpp_echo_server.cc" "$OUT/gen/echo.pb.cc" \
            "$OUT/gen/echo.grpc.pb.cc" -o "$CPP_BIN.tmp" \
            $(pkg-config --cflags --libs grpc++ protobuf) -lpthread
        mv "$CPP_BIN.tmp" "$CPP_BIN"
    fi
fi
for n in "${PAYLOADS[@]}"; do "$PY" "$BENCH/report.py" body "$n" "$OUT/body-$n.bin"; done

# ---------------------------------------------------------------- servers
SERVER_PID=
SERVER_PORT=
server_cmd() {   # $1 = name; sets CMD
    case "$1" in
        ours) CMD=("$ROOT/build/examples/c/echo_server" 0 127.0.0.1) ;;
        cpp-sync) CMD=("$OUT/cpp_echo_server" sync 0 127.0.0.1) ;;
        cpp-callback) CMD=("$OUT/cpp_echo_server" callback 0 127.0.0.1) ;;
        grpcio) CMD=("$PY" "$BENCH/grpcio_echo_server.py" --port 0 --host 127.0.0.1 --workers "$GRPCIO_WORKERS") ;;
    esac
}
start_server() {   # $1 = name; sets SERVER_PID and SERVER_PORT
    local slog=$OUT/server-$1.log
    server_cmd "$1"
    "${CMD[@]}" >"$slog" 2>&1 &
    SERVER_PID=$!
    SERVER_PORT=
    local i
    for i in $(seq 200); do
        SERVER_PORT=$(sed -n 's/.*listening on port \([0-9][0-9]*\).*/\1/p' "$slog")
        [ -n "$SERVER_PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "run.sh: server $1 did not start:" >&2
    cat "$slog" >&2
    stop_server
    exit 1
}
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local i
    for i in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- header
grpcpp_v=$(pkg-config --modversion grpc++ 2>/dev/null || echo "not installed")
grpcio_v=$("$PY" -c 'import grpc; print(grpc.__version__)')
echo "libgrpchelper unary benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine : nproc $(nproc), kernel $(uname -r), $(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $(h2load --version | head -1), grpc++ $grpcpp_v (g++ $(g++ -dumpfullversion 2>/dev/null || echo '?')), grpcio $grpcio_v (Python $("$PY" -c 'import platform; print(platform.python_version())')), libgrpchelper $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
echo "load    : h2load -t $THREADS (capped at C) --warm-up-time ${WARMUP}s -D ${DURATION}s per cell, h2c to 127.0.0.1, POST of a gRPC frame"
echo "          holding EchoMessage{data: N bytes} (17 B frame for 10 B, 1032 B for 1 KiB); each server echoes it"
echo "note    : h2load runs on the same $(nproc) cores as the server, so the load generator competes with it for CPU;"
echo "          read the numbers as a comparison between servers on this machine, not as absolutes"
echo "servers : ${SERVERS[*]}; each is started fresh for every cell (payload × C×M), so peak RSS is that cell's"
echo "          VmHWM (incl. warm-up); ours = echo_server with library defaults (it has no worker option),"
echo "          grpcio max_workers=$GRPCIO_WORKERS, cpp-* gRPC defaults"
echo "p99     : nearest-rank over h2load --log-file latencies of the measured requests"
echo

# ---------------------------------------------------------------- verify grpc-status 0
for s in "${SERVERS[@]}"; do
    start_server "$s"
    if ! "$PY" "$BENCH/verify.py" "127.0.0.1:$SERVER_PORT" "$OUT/body-10.bin" "$OUT/body-1024.bin"; then
        echo "run.sh: server $s does not answer the bench request with grpc-status 0 and an echo" >&2
        exit 1
    fi
    stop_server
    log "verified $s: grpc-status 0 and the echoed message for both payloads"
done

# ---------------------------------------------------------------- measure
RESULTS=$OUT/results.tsv
printf 'server\tpayload\tconns\tstreams\trps\tp99_ms\trss_mib\trequests\tfailed\tnon2xx\tnote\n' >"$RESULTS"
cells=$((${#PAYLOADS[@]} * ${#SHAPES[@]} * ${#SERVERS[@]}))
per_cell=$((DURATION + WARMUP + 1))
log "measuring $cells cells, about $((cells * per_cell / 60 + 1)) min"
for n in "${PAYLOADS[@]}"; do
    for shape in "${SHAPES[@]}"; do
        c=${shape%x*}
        m=${shape#*x}
        t=$((THREADS < c ? THREADS : c))
        for s in "${SERVERS[@]}"; do
            cell=$OUT/cells/$s-$n-${c}x$m
            start_server "$s"
            rm -f "$cell.log"
            timeout $((DURATION + WARMUP + 60)) h2load -c "$c" -m "$m" -t "$t" \
                -D "$DURATION" --warm-up-time "$WARMUP" \
                -d "$OUT/body-$n.bin" \
                -H 'content-type: application/grpc' -H 'te: trailers' \
                --log-file "$cell.log" \
                "http://127.0.0.1:$SERVER_PORT/grpchelper.examples.Echo/Unary" >"$cell.out" 2>&1 || true
            # Peak RSS of the server process in this cell; a dead (zombie) server has no VmHWM.
            hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVER_PID/status" 2>/dev/null || true)
            alive=0
            [ -n "$hwm" ] && alive=1
            stop_server
            row=$("$PY" "$BENCH/report.py" cell "$s" "$n" "$c" "$m" "$cell.out" "$cell.log" "${hwm:-?}" "$alive")
            echo "$row" >>"$RESULTS"
            IFS=$'\t' read -r _ _ _ _ rps p99 rss _ _ _ note <<<"$row"
            log "$(printf '%-5s %-6s %-13s %10s req/s  p99 %7s ms  %6s MiB  %s' "${n}B" "${c}x$m" "$s" "$rps" "$p99" "$rss" "${note/#-/}")"
            rm -f "$cell.log"   # per-request logs are large; h2load's summary stays in $cell.out
        done
    done
done

echo
"$PY" "$BENCH/report.py" table "$RESULTS"
echo
echo "req/s: h2load's rate over the measured period; p99 ms: 99th-percentile request latency; MiB: server"
echo "peak RSS (VmHWM); ours/<peer>: ratio of req/s (>1 = ours faster); '!' marks a cell with failures (listed)."
echo "raw rows: bench/.out/results.tsv; h2load output per cell: bench/.out/cells/"
echo "load avg at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews cells unevenly)"
