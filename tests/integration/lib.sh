# Shared helpers for the integration tests: start the real daemon on
# ephemeral loopback ports, drive it with libcoap's clients, stop it.
# Sourced by tests/integration/test_*.sh; CTest sets LWM2MD (the daemon)
# and TEST_DATA (tests/data).

set -u

: "${LWM2MD:?LWM2MD must name the lwm2md binary}"
TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/lwm2md-test.XXXXXX")
DATA_DIR="$TEST_DIR/data"
DAEMON_LOG="$TEST_DIR/daemon.log"
DAEMON_PID=""
COAP_PORT=""
COAPS_PORT=""
FAILURES=0
PASSES=0

# LeakSanitizer reports at exit; a test fails if the daemon leaked.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

cleanup() {
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -KILL "$DAEMON_PID" 2>/dev/null
    fi
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

pass() {
    PASSES=$((PASSES + 1))
    echo "ok - $1"
}

fail() {
    FAILURES=$((FAILURES + 1))
    echo "FAIL - $1"
    if [ -f "$DAEMON_LOG" ]; then
        echo "--- daemon log (last 30 lines) ---"
        tail -n 30 "$DAEMON_LOG"
        echo "---"
    fi
}

# check NAME COMMAND...: passes when the command succeeds.
check() {
    local name=$1
    shift
    if "$@"; then
        pass "$name"
    else
        fail "$name"
    fi
}

# Runs the CLI against the test's data dir.
lwm2md_cli() {
    LWM2MD_DATA_DIR="$DATA_DIR" "$LWM2MD" "$@"
}

# start_daemon [ENV=VALUE]...: starts the daemon on ephemeral ports on
# 127.0.0.1 and waits (bounded) for its start-up line.
start_daemon() {
    : >"$DAEMON_LOG"
    env LWM2MD_DATA_DIR="$DATA_DIR" \
        LWM2M_BIND_ADDRESS=127.0.0.1 LWM2M_BIND_PORT=0 \
        LWM2M_SECURITY_BIND_ADDRESS=127.0.0.1 LWM2M_SECURITY_BIND_PORT=0 \
        LWM2MD_WORKERS=2 LWM2M_CLEAN_PERIOD_IN_SEC=1 LWM2MD_LOG_LEVEL=debug \
        "$@" "$LWM2MD" serve >>"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    local i
    for i in $(seq 1 100); do
        if grep -q ' started (' "$DAEMON_LOG"; then
            COAP_PORT=$(sed -n 's/.* started (coap=[^ ]*:\([0-9]*\), coaps=.*/\1/p' "$DAEMON_LOG" | head -n 1)
            COAPS_PORT=$(sed -n 's/.* coaps=[^ ]*:\([0-9]*\), data dir.*/\1/p' "$DAEMON_LOG" | head -n 1)
            return 0
        fi
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            echo "daemon exited during start-up:"
            cat "$DAEMON_LOG"
            DAEMON_PID=""
            return 1
        fi
        sleep 0.1
    done
    echo "daemon did not start within 10 s"
    cat "$DAEMON_LOG"
    return 1
}

# stop_daemon: SIGTERM, bounded wait; fails on a non-zero exit or a
# sanitizer report (leaks included).
stop_daemon() {
    [ -n "$DAEMON_PID" ] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null
    local i status=0
    for i in $(seq 1 100); do
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
        fail "daemon stops within 10 s of SIGTERM"
        kill -KILL "$DAEMON_PID"
    fi
    wait "$DAEMON_PID" || status=$?
    DAEMON_PID=""
    if [ "$status" -ne 0 ]; then
        fail "daemon exits 0 on SIGTERM (exit $status)"
    elif grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$DAEMON_LOG"; then
        fail "daemon ran without sanitizer reports"
    else
        pass "daemon stopped cleanly"
    fi
}

# wait_log PATTERN [SECONDS]: waits (bounded) until the daemon log matches.
wait_log() {
    local pattern=$1 limit=${2:-10} i
    for i in $(seq 1 $((limit * 10))); do
        grep -qE "$pattern" "$DAEMON_LOG" && return 0
        sleep 0.1
    done
    return 1
}

# listed PATTERN [SECONDS]: waits (bounded) until `lwm2md device list`
# has a line matching PATTERN; the server saves registrations off its
# event loops, a moment after it answers.
listed() {
    local pattern=$1 limit=${2:-10} i
    for i in $(seq 1 $((limit * 5))); do
        lwm2md_cli device list >"$TEST_DIR/list.out" 2>&1
        grep -qE "$pattern" "$TEST_DIR/list.out" && return 0
        sleep 0.2
    done
    cat "$TEST_DIR/list.out"
    return 1
}

# coap METHOD URI [client options...]: runs coap-client-notls (bounded),
# leaves its verbose output in $COAP_OUT.
COAP_OUT="$TEST_DIR/coap.out"
coap() {
    local method=$1 uri=$2
    shift 2
    timeout 20 coap-client-notls -v 6 -B 5 -m "$method" "$@" "$uri" >"$COAP_OUT" 2>&1
}

# The response code of the last coap call ("2.01", "4.03", ...).
coap_code() {
    grep -oE 'v:1 t:(ACK|CON|NON) c:[0-9]\.[0-9]{2}' "$COAP_OUT" | tail -n 1 | sed 's/.*c://'
}

# finish: prints the summary line CTest's log shows and exits.
finish() {
    stop_daemon
    echo "$PASSES passed, $FAILURES failed"
    [ "$FAILURES" -eq 0 ]
    exit $?
}
