#!/usr/bin/env bash
# Registration benchmark: a fresh lwm2md per round, bench_register against it,
# the daemon's resident memory before and after; prints the medians.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run_register.sh [--build DIR] [--count N] [--rounds R]
                             [--concurrency C] [--sockets K] [--max-seconds S]

Starts DIR/lwm2md serve (default DIR: build) with a temporary data dir on
127.0.0.1 (ports chosen by the kernel), registers N NoSec endpoints with
DIR/bench/bench_register, reads the daemon's VmRSS before and after, stops it
with SIGTERM. Repeats R times (default 3) and prints the median of each figure.
Builds nothing: build DIR first (a RelWithDebInfo build, not a sanitizer one).
EOF
}

build=build
count=10000
rounds=3
concurrency=64
sockets=16
max_seconds=600

PROG=run_register
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    --build | --count | --rounds | --concurrency | --sockets | --max-seconds)
        [[ $# -ge 2 ]] || die "missing value after $1"
        case "$1" in
        --build) build=$2 ;;
        --count) need_number "$1" "$2" && count=$2 ;;
        --rounds) need_number "$1" "$2" && rounds=$2 ;;
        --concurrency) need_number "$1" "$2" && concurrency=$2 ;;
        --sockets) need_number "$1" "$2" && sockets=$2 ;;
        --max-seconds) need_number "$1" "$2" && max_seconds=$2 ;;
        esac
        shift 2
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
done

daemon=$build/lwm2md
bench=$build/bench/bench_register
[[ -x "$daemon" ]] || die "$daemon not found: build it first (cmake --build $build)"
[[ -x "$bench" ]] || die "$bench not found: build it first (cmake --build $build)"

work=$(mktemp -d "${TMPDIR:-/tmp}/lwm2md-bench.XXXXXX")
daemon_pid=""

cleanup() {
    if [[ -n "$daemon_pid" ]] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -KILL "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts the daemon with its log in $1/log; sets daemon_pid and server (HOST:PORT).
# The port is only printed at log level info, so the daemon logs every
# registration too: writing those lines is part of the measured cost.
start_daemon() {
    local dir=$1
    mkdir -p "$dir/data"
    env -i PATH="$PATH" \
        LWM2MD_ALLOW_UNKNOWN_NOSEC=true \
        LWM2M_BIND_ADDRESS=127.0.0.1 LWM2M_BIND_PORT=0 \
        LWM2M_SECURITY_BIND_ADDRESS=127.0.0.1 LWM2M_SECURITY_BIND_PORT=0 \
        LWM2M_ENABLED_BS=false \
        LWM2MD_DATA_DIR="$dir/data" LWM2MD_LOG_LEVEL=info \
        "$daemon" serve >"$dir/stdout" 2>"$dir/log" &
    daemon_pid=$!

    await_start "$daemon_pid" "$dir/log"
    server=$(sed -n 's/.* started (coap=\([^,]*\),.*/\1/p' <<<"$started_line")
    [[ "$server" =~ :[1-9][0-9]*$ ]] || die "cannot read the CoAP port from: $started_line"
}

# SIGTERM, then SIGKILL after 10 s.
stop_daemon() {
    stop_pid "$daemon_pid"
    daemon_pid=""
}

echo "registration benchmark: $count NoSec endpoints, $rounds rounds," \
    "concurrency $concurrency, $sockets sockets"
echo "date $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), kernel $(uname -r)," \
    "cpu $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
source_dir=$(cd "$(dirname "$0")/.." && pwd)
echo "daemon $daemon ($("$daemon" --version)," \
    "source $(git -C "$source_dir" describe --always --dirty 2>/dev/null || echo unknown))"

rates=()
p50s=()
p99s=()
per_reg=()
failed_rounds=0
for round in $(seq "$rounds"); do
    dir=$work/round-$round
    start_daemon "$dir"
    sleep 1
    rss_before=$(rss_kb "$daemon_pid")

    status=0
    timeout --kill-after=5 $((max_seconds + 30)) "$bench" --server "$server" \
        --count "$count" --concurrency "$concurrency" --sockets "$sockets" \
        --max-seconds "$max_seconds" >"$dir/bench.out" || status=$?
    if [[ $status -ne 0 && $status -ne 1 ]]; then
        cat "$dir/bench.out" >&2
        die "bench_register failed (exit status $status)"
    fi

    if ! rss_after=$(settled_rss_kb "$daemon_pid"); then
        tail -20 "$dir/log" >&2
        exit 2
    fi
    logged=$(grep -c "': registered (id=" "$dir/log" || true)
    stop_daemon

    result=$(grep '^RESULT ' "$dir/bench.out")
    created=$(field created "$result")
    rate=$(field rate "$result")
    p50=$(field p50_ms "$result")
    p99=$(field p99_ms "$result")
    resent=$(field retransmissions "$result")
    bytes=$(awk -v a="$rss_after" -v b="$rss_before" -v n="$created" \
        'BEGIN { if (n > 0) printf "%.0f", (a - b) * 1024 / n; else print "n/a" }')
    echo "round $round: created $created/$count, $rate registrations/s," \
        "p50 $p50 ms, p99 $p99 ms, $resent retransmissions," \
        "RSS $rss_before kB -> $rss_after kB," \
        "$bytes B/registration ($workers workers, $logged registrations logged)"
    if [[ "$created" != "$count" ]]; then
        failed_rounds=$((failed_rounds + 1))
        sed -n '2,/^RESULT/p' "$dir/bench.out" | grep -v '^RESULT' >&2
        grep -v "': registered (id=" "$dir/log" | tail -5 >&2 || true
    fi
    rates+=("$rate")
    p50s+=("$p50")
    p99s+=("$p99")
    per_reg+=("$bytes")
done

echo "median of $rounds: $(printf '%s\n' "${rates[@]}" | median) registrations/s," \
    "p50 $(printf '%s\n' "${p50s[@]}" | median) ms," \
    "p99 $(printf '%s\n' "${p99s[@]}" | median) ms," \
    "$(printf '%s\n' "${per_reg[@]}" | median) B RSS/registration"
if [[ $failed_rounds -gt 0 ]]; then
    echo "run_register: $failed_rounds of $rounds rounds had failed registrations" >&2
    exit 1
fi
