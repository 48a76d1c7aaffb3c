# shellcheck shell=bash
# Shell helpers the benchmark runners share. Source it after setting
# PROG (the runner's name, for messages).
# shellcheck disable=SC2034  # started_line, workers and stop_status are read by the runners

die() {
    echo "$PROG: $*" >&2
    exit 2
}

need_number() {
    [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer (got '$2')"
}

# VmRSS of a live process, in kB; fails when it has exited (a zombie has none).
rss_kb() {
    local kb
    kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)
    [[ -n "$kb" ]] || die "the daemon (pid $1) has exited; see its log above"
    echo "$kb"
}

# VmRSS once it stopped growing: readings 1 s apart, at most 10.
settled_rss_kb() {
    local last now
    last=$(rss_kb "$1")
    now=$last
    for _ in $(seq 10); do
        sleep 1
        now=$(rss_kb "$1")
        [[ "$now" -le "$last" ]] && break
        last=$now
    done
    echo "$now"
}

median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) { print v[(NR + 1) / 2] } else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 }
    }'
}

# The value of KEY=... in a RESULT line.
field() {
    sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"
}

# await_start PID LOG: waits up to 10 s for the daemon's start-up line; sets
# started_line, and sets workers from it. Dies with the log if it never comes.
await_start() {
    local pid=$1 log=$2
    started_line=""
    for _ in $(seq 100); do
        started_line=$(grep -s -m1 ' started (coap=' "$log" || true)
        [[ -n "$started_line" ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$started_line" ]]; then
        cat "$log" >&2
        die "the daemon did not start within 10 s"
    fi
    workers=$(sed -n 's/.*, \([0-9]*\) workers,.*/\1/p' <<<"$started_line")
}

# stop_pid PID: SIGTERM, then SIGKILL after 10 s; sets stop_status to its exit status.
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$PROG: the daemon ignored SIGTERM for 10 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    stop_status=0
    wait "$pid" 2>/dev/null || stop_status=$?
}
