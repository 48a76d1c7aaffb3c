#!/usr/bin/env bash
# DTLS handshake benchmark: provisions PSK, RPK and X.509 devices, runs bench_dtls against a fresh
# lwm2md for full and resumed handshakes and for held sessions (RSS per session); prints medians.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run_dtls.sh [--build DIR] [--count N] [--rounds R] [--concurrency C]
                         [--modes LIST] [--keep-sessions K] [--psk-devices D]
                         [--max-seconds S]

Makes certificates with DIR/lwm2md certs generate and provisions D PSK devices
(default 2000), one RPK and one X.509 device with DIR/lwm2md device add. Then,
R times (default 3) for each mode in LIST (default psk,rpk,x509):
  - starts DIR/lwm2md serve (default DIR: build) with server credentials and the
    CA trust store on 127.0.0.1 (ports chosen by the kernel), runs N (default
    2000) full handshakes and then N resumed handshakes with DIR/bench/bench_dtls,
    reading the daemon's CPU time around each, and stops it;
  - starts a fresh daemon, runs 100 handshakes to warm it up, reads its VmRSS,
    opens K sessions (default 2000; 0 skips this) and holds them, reads VmRSS
    again, releases them and stops the daemon with SIGTERM.
Prints each round and the median of each figure per mode.
Builds nothing: build DIR first (a RelWithDebInfo build, not a sanitizer one).
EOF
}

build=build
count=2000
rounds=3
concurrency=32
modes=psk,rpk,x509
keep_sessions=2000
psk_devices=2000
max_seconds=600
warm_up_count=100

PROG=run_dtls
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    --build | --count | --rounds | --concurrency | --modes | --keep-sessions | --psk-devices | \
        --max-seconds)
        [[ $# -ge 2 ]] || die "missing value after $1"
        case "$1" in
        --build) build=$2 ;;
        --count) need_number "$1" "$2" && count=$2 ;;
        --rounds) need_number "$1" "$2" && rounds=$2 ;;
        --concurrency) need_number "$1" "$2" && concurrency=$2 ;;
        --modes) modes=$2 ;;
        --keep-sessions)
            [[ "$2" =~ ^(0|[1-9][0-9]*)$ ]] || die "$1 needs a number (got '$2')"
            keep_sessions=$2
            ;;
        --psk-devices) need_number "$1" "$2" && psk_devices=$2 ;;
        --max-seconds) need_number "$1" "$2" && max_seconds=$2 ;;
        esac
        shift 2
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
done

IFS=, read -r -a mode_list <<<"$modes"
[[ ${#mode_list[@]} -gt 0 ]] || die "--modes needs psk, rpk and/or x509"
for mode in "${mode_list[@]}"; do
    [[ "$mode" =~ ^(psk|rpk|x509)$ ]] || die "unknown mode '$mode' in --modes (psk, rpk, x509)"
done

daemon=$build/lwm2md
bench=$build/bench/bench_dtls
[[ -x "$daemon" ]] || die "$daemon not found: build it first (cmake --build $build)"
[[ -x "$bench" ]] || die "$bench not found: build it first (cmake --build $build)"

work=$(mktemp -d "${TMPDIR:-/tmp}/lwm2md-bench-dtls.XXXXXX")
daemon_pid=""
bench_pid=""

cleanup() {
    local pid
    for pid in "$bench_pid" "$daemon_pid"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

certs=$work/certs
template=$work/data-template
psk_key=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')

# Certificates for the server (its name is the address the clients use) and the two devices.
make_credentials() {
    "$daemon" certs generate --out "$certs" --server-name 127.0.0.1 \
        --client bench-x509-0 --client bench-rpk-0 >/dev/null ||
        die "lwm2md certs generate failed"
}

# D PSK devices sharing one random key, an RPK device and an X.509 device (CA trust, CN).
provision() {
    mkdir -p "$template"
    export LWM2MD_DATA_DIR=$template
    for i in $(seq 0 $((psk_devices - 1))); do
        "$daemon" device add "bench-psk-$i" --psk "bench-psk-$i:$psk_key" >/dev/null ||
            die "cannot provision bench-psk-$i"
    done
    "$daemon" device add bench-rpk-0 --rpk "$certs/bench-rpk-0_rpk_pub.pem" >/dev/null ||
        die "cannot provision bench-rpk-0"
    "$daemon" device add bench-x509-0 --x509 >/dev/null || die "cannot provision bench-x509-0"
    unset LWM2MD_DATA_DIR
}

# Starts the daemon on a copy of the provisioned store, its log in $1/log; sets daemon_pid,
# server (the DTLS HOST:PORT) and workers.
start_daemon() {
    local dir=$1
    mkdir -p "$dir"
    cp -a "$template" "$dir/data"
    # LIBC_FATAL_STDERR_: glibc's own fatal messages (heap corruption) go to the log, not a tty.
    env -i PATH="$PATH" LIBC_FATAL_STDERR_=1 \
        LWM2M_BIND_ADDRESS=127.0.0.1 LWM2M_BIND_PORT=0 \
        LWM2M_SECURITY_BIND_ADDRESS=127.0.0.1 LWM2M_SECURITY_BIND_PORT=0 \
        LWM2M_ENABLED_BS=false \
        LWM2M_SERVER_CREDENTIALS_ENABLED=true LWM2M_SERVER_CREDENTIALS_TYPE=PEM \
        LWM2M_SERVER_PEM_CERT="$certs/server_chain.pem" \
        LWM2M_SERVER_PEM_KEY="$certs/server_key.pem" \
        LWM2M_TRUST_CREDENTIALS_ENABLED=true LWM2M_TRUST_CREDENTIALS_TYPE=PEM \
        LWM2M_TRUST_PEM_CERT="$certs/ca.pem" \
        LWM2MD_DATA_DIR="$dir/data" LWM2MD_LOG_LEVEL=info \
        "$daemon" serve >"$dir/stdout" 2>"$dir/log" &
    daemon_pid=$!

    await_start "$daemon_pid" "$dir/log"
    server=$(sed -n 's/.*, coaps=\([^,]*\),.*/\1/p' <<<"$started_line")
    [[ "$server" =~ :[1-9][0-9]*$ ]] || die "cannot read the DTLS port from: $started_line"
}

# SIGTERM, then SIGKILL after 10 s. A daemon that does not exit with status 0 fails the run.
stop_daemon() {
    stop_pid "$daemon_pid"
    local status=$stop_status
    daemon_pid=""
    if [[ $status -ne 0 ]]; then
        echo "run_dtls: the daemon exited with status $status (> 128: killed by signal" \
            "$((status - 128))); the end of its log:" >&2
        tail -5 "$dir/log" >&2
        failed_runs=$((failed_runs + 1))
    fi
}

# CPU time (user + system) a process has used, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || die "the daemon (pid $1) has exited"
}
clk_tck=$(getconf CLK_TCK)

# Milliseconds of CPU per handshake: ticks, handshakes, and ms to deduct first.
cpu_ms_per() {
    awk -v t="$1" -v n="$2" -v minus="${3:-0}" -v hz="$clk_tck" \
        'BEGIN { if (n > 0) printf "%.3f", (t * 1000 / hz - minus) / n; else print "n/a" }'
}

# The mode's credential options for bench_dtls.
mode_args() {
    case "$1" in
    psk)
        echo "--psk-identity-prefix bench-psk- --psk-devices $psk_devices --psk-key $psk_key"
        ;;
    rpk)
        echo "--key $certs/bench-rpk-0_rpk_key.pem --cert $certs/bench-rpk-0_rpk_pub.pem"
        ;;
    x509)
        echo "--key $certs/bench-x509-0_key.pem --cert $certs/bench-x509-0.pem --ca $certs/ca.pem"
        ;;
    esac
}

failed_runs=0

# Runs bench_dtls to completion; $1 is the output file, the rest its options. Sets result.
run_bench() {
    local out=$1
    shift
    local status=0
    timeout --kill-after=5 $((max_seconds + 30)) "$bench" --server "$server" \
        --max-seconds "$max_seconds" "$@" >"$out" 2>&1 || status=$?
    if [[ $status -ne 0 && $status -ne 1 ]]; then
        cat "$out" >&2
        die "bench_dtls failed (exit status $status)"
    fi
    result=$(grep '^RESULT ' "$out")
    if [[ $status -ne 0 ]]; then
        failed_runs=$((failed_runs + 1))
        sed -n '/^failed /,/^latency /p' "$out" | grep -v '^latency ' >&2
        grep ' warn ' "$dir/log" | tail -5 >&2 || true
    fi
}

# Full, then resumed handshakes against one daemon. Appends to the per-mode lists.
measure_rates() {
    local mode=$1 round=$2
    dir=$work/round-$round-$mode-rates
    start_daemon "$dir"
    local ticks0 ticks1 ticks2
    ticks0=$(cpu_ticks "$daemon_pid")
    # shellcheck disable=SC2046 # mode_args holds separate words
    run_bench "$dir/full.out" --mode "$mode" $(mode_args "$mode") --count "$count" \
        --concurrency "$concurrency"
    local full=$result
    ticks1=$(cpu_ticks "$daemon_pid")
    # shellcheck disable=SC2046
    run_bench "$dir/resumed.out" --mode "$mode" $(mode_args "$mode") --count "$count" \
        --concurrency "$concurrency" --resume
    local resumed=$result
    ticks2=$(cpu_ticks "$daemon_pid")
    stop_daemon

    # The daemon's CPU per handshake; the resumed run first made one full handshake per slot.
    local cpu_full cpu_resumed
    cpu_full=$(cpu_ms_per $((ticks1 - ticks0)) "$(field "done" "$full")")
    cpu_resumed=$(cpu_ms_per $((ticks2 - ticks1)) "$(field "done" "$resumed")" \
        "$(awk -v c="$concurrency" -v f="$cpu_full" 'BEGIN { print c * f }')")
    if [[ "$(field resumed "$resumed")" != "$(field "done" "$resumed")" ]]; then
        echo "run_dtls: round $round $mode: only $(field resumed "$resumed") of" \
            "$(field "done" "$resumed") handshakes were resumed" >&2
        failed_runs=$((failed_runs + 1))
    fi

    suite[$mode]=$(sed -n 's/^done .*handshakes\/s (\(.*\))$/\1/p' "$dir/full.out")
    echo "round $round $mode: full $(field rate "$full")/s" \
        "(done $(field "done" "$full")/$count, p50 $(field p50_ms "$full") ms," \
        "p99 $(field p99_ms "$full") ms, server CPU $cpu_full ms);" \
        "resumed $(field rate "$resumed")/s" \
        "(done $(field "done" "$resumed")/$count, $(field resumed "$resumed") resumed," \
        "p50 $(field p50_ms "$resumed") ms, p99 $(field p99_ms "$resumed") ms," \
        "server CPU $cpu_resumed ms)"
    full_rate[$mode]+="$(field rate "$full") "
    full_p50[$mode]+="$(field p50_ms "$full") "
    full_p99[$mode]+="$(field p99_ms "$full") "
    res_rate[$mode]+="$(field rate "$resumed") "
    res_p50[$mode]+="$(field p50_ms "$resumed") "
    res_p99[$mode]+="$(field p99_ms "$resumed") "
    full_cpu[$mode]+="$cpu_full "
    res_cpu[$mode]+="$cpu_resumed "
}

# Waits until bench_dtls says it holds its sessions (or has exited).
wait_for_hold() {
    local out=$1
    for _ in $(seq $((max_seconds * 10))); do
        grep -qs "^holding " "$out" && return 0
        kill -0 "$bench_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# RSS of a warmed-up daemon before and while it holds K sessions of the mode.
measure_memory() {
    local mode=$1 round=$2
    dir=$work/round-$round-$mode-memory
    start_daemon "$dir"
    # shellcheck disable=SC2046
    run_bench "$dir/warm.out" --mode "$mode" $(mode_args "$mode") --count "$warm_up_count" \
        --concurrency "$concurrency"
    sleep 1
    local before
    before=$(rss_kb "$daemon_pid")

    # shellcheck disable=SC2046
    "$bench" --server "$server" --mode "$mode" $(mode_args "$mode") --count "$keep_sessions" \
        --concurrency "$concurrency" --keep --hold-seconds "$max_seconds" \
        --max-seconds "$max_seconds" >"$dir/keep.out" 2>&1 &
    bench_pid=$!
    if ! wait_for_hold "$dir/keep.out"; then
        cat "$dir/keep.out" >&2
        die "bench_dtls --keep did not reach its hold"
    fi
    local after held
    after=$(settled_rss_kb "$daemon_pid")
    held=$(field "done" "$(grep '^RESULT ' "$dir/keep.out")")
    kill -TERM "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
    bench_pid=""
    stop_daemon

    local bytes
    bytes=$(awk -v a="$after" -v b="$before" -v n="$held" \
        'BEGIN { if (n > 0) printf "%.0f", (a - b) * 1024 / n; else print "n/a" }')
    echo "round $round $mode: $held/$keep_sessions sessions held," \
        "RSS $before kB -> $after kB, $bytes B/session ($workers workers)"
    [[ "$held" == "$keep_sessions" ]] || failed_runs=$((failed_runs + 1))
    per_session[$mode]+="$bytes "
}

echo "DTLS handshake benchmark: modes $modes, $count handshakes per run, $rounds rounds," \
    "concurrency $concurrency, $keep_sessions held sessions, $psk_devices PSK devices"
echo "date $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), kernel $(uname -r)," \
    "cpu $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
source_dir=$(cd "$(dirname "$0")/.." && pwd)
echo "daemon $daemon ($("$daemon" --version)," \
    "source $(git -C "$source_dir" describe --always --dirty 2>/dev/null || echo unknown))"

make_credentials
provision

declare -A suite full_rate full_p50 full_p99 full_cpu res_rate res_p50 res_p99 res_cpu per_session
for round in $(seq "$rounds"); do
    for mode in "${mode_list[@]}"; do
        measure_rates "$mode" "$round"
        if [[ $keep_sessions -gt 0 ]]; then
            measure_memory "$mode" "$round"
        fi
    done
done

med() {
    tr ' ' '\n' <<<"$1" | grep -v '^$' | median
}

echo "median of $rounds rounds:"
for mode in "${mode_list[@]}"; do
    memory="n/a"
    if [[ $keep_sessions -gt 0 ]]; then
        memory="$(med "${per_session[$mode]}") B RSS/session"
    fi
    echo "  $mode (${suite[$mode]}): full $(med "${full_rate[$mode]}") handshakes/s," \
        "p50 $(med "${full_p50[$mode]}") ms, p99 $(med "${full_p99[$mode]}") ms," \
        "server CPU $(med "${full_cpu[$mode]}") ms;" \
        "resumed $(med "${res_rate[$mode]}") handshakes/s," \
        "p50 $(med "${res_p50[$mode]}") ms, p99 $(med "${res_p99[$mode]}") ms," \
        "server CPU $(med "${res_cpu[$mode]}") ms; $memory"
done
if [[ $failed_runs -gt 0 ]]; then
    echo "run_dtls: $failed_runs runs had failed or unfinished handshakes (see above)" >&2
    exit 1
fi
