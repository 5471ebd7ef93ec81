#!/usr/bin/env bash
# Scale run (issue 5 item 4a): one heartbeat `server` process holding CONNS
# connections from LOADERS `load` processes, on loopback, for DURATION at
# --interval INTERVAL (default timeout / max-missed).
#
#   benches/scale/run.sh                       # 19,000 conns, 60 s, 2 loaders
#   CONNS=5000 DURATION=20s LOADERS=1 benches/scale/run.sh
#
# What it measures, and how:
# - server CPU: utime+stime from /proc/PID/stat (all threads) over the steady
#   window, as % of one core. The window opens once every connection is up
#   (the connect ramp is reported on its own) and lasts DURATION.
# - server RSS: VmRSS from /proc/PID/status before the clients connect and at
#   the end of the window; per connection = delta / CONNS. VmHWM is the peak.
# - RTT p50/p99/max: from each loader's final `done:` line (client-measured
#   ping -> pong through the server). The server does not print its own RTT
#   percentiles (see RESULTS.md).
# - false positives: dead verdicts on either side, which must be 0: the
#   loaders' `done:` lines, the server's `dead (` warnings and its exit line.
#
# Environment (all optional):
#   CONNS=19000 DURATION=60s LOADERS=2 INTERVAL=1s LOOPS=1
#   RAMP_BUDGET=60s   longest the connect ramp may take before the run fails
#   OUT=DIR           where logs go (default: a fresh /tmp/wheelbeat-scale.*)
#   CARGO_TARGET_DIR  honoured, as cargo does
#   NO_BUILD=1        skip the cargo build (binaries must exist)
#   HB_FLAGS="--timeout 2s"  extra heartbeat flags for server and loaders
#   LOAD_FLAGS="--connect-rate 1000"  flags for each loader only; this is the
#                     default (each loader ramps at 1,000 connects/s); LOAD_FLAGS=
#                     (empty) connects as fast as 256 in flight allow
#   STAGGER=1         start each loader once the previous one is fully connected
#   RUST_LOG=info     the server's log filter (info logs every connect / close)
#
# Every wait is bounded; the trap stops whatever the script started, by PID.
# Exit status: 0 if every connection came up and nothing was declared dead,
# 1 otherwise, 2 on a setup error.
set -euo pipefail

CONNS=${CONNS:-19000}
DURATION=${DURATION:-60s}
LOADERS=${LOADERS:-2}
INTERVAL=${INTERVAL:-1s}
LOOPS=${LOOPS:-1}
RAMP_BUDGET=${RAMP_BUDGET:-60s}
# Extra heartbeat flags for both sides (e.g. "--timeout 2s"); empty = defaults.
HB_FLAGS=${HB_FLAGS:-}
# Flags for the loaders only. Real clients do not all connect in the same
# millisecond; pacing the ramp is what keeps it safe on a busy machine (see
# RESULTS.md, "connect pacing").
LOAD_FLAGS=${LOAD_FLAGS---connect-rate 1000}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$(mktemp -d /tmp/wheelbeat-scale.XXXXXX)}
mkdir -p "$OUT"

die() {
    echo "scale: error: $*" >&2
    exit 2
}

# Seconds in a humantime-ish duration: 60, 60s, 2m, 1500ms (whole seconds).
secs() {
    case $1 in
        *ms) echo $(( ${1%ms} / 1000 )) ;;
        *s) echo "${1%s}" ;;
        *m) echo $(( ${1%m} * 60 )) ;;
        *[0-9]) echo "$1" ;;
        *) die "cannot read duration '$1' (use 60, 60s, 2m or 1500ms)" ;;
    esac
}

DUR_S=$(secs "$DURATION")
RAMP_S=$(secs "$RAMP_BUDGET")
[[ $CONNS =~ ^[0-9]+$ && $CONNS -gt 0 ]] || die "CONNS must be a positive integer"
[[ $LOADERS =~ ^[0-9]+$ && $LOADERS -gt 0 ]] || die "LOADERS must be a positive integer"
[[ $DUR_S -gt 0 ]] || die "DURATION must be at least 1 s"

# ---- processes we start, and their cleanup ---------------------------------
SERVER_PID=""
LOAD_PIDS=()

alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }

# Waits up to $2 seconds for PID $1 to exit; returns 1 on timeout.
wait_exit() {
    local pid=$1 deadline=$(( SECONDS + $2 ))
    while alive "$pid"; do
        (( SECONDS < deadline )) || return 1
        sleep 0.2
    done
}

cleanup() {
    local pid
    for pid in "${LOAD_PIDS[@]}"; do
        alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    done
    if alive "$SERVER_PID"; then
        kill -INT "$SERVER_PID" 2>/dev/null || true
        wait_exit "$SERVER_PID" 10 || kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- /proc readers ----------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)

# utime + stime of PID, in clock ticks (fields 14 and 15; the command name in
# field 2 may hold spaces, so count from the last ')').
cpu_ticks() {
    local stat rest
    stat=$(< "/proc/$1/stat")
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo $(( ${12} + ${13} ))
}

# A `Vm...:` field of /proc/PID/status, in kB.
vm_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

open_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

now_ms() { date +%s%3N; }

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- build ------------------------------------------------------------------
if [[ -z ${NO_BUILD:-} ]]; then
    echo "scale: building the examples (release)..."
    (cd "$ROOT" && cargo build --release --locked -p wheelbeat-heartbeat --examples) \
        >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log" >&2; die "build failed (log: $OUT/build.log)"; }
fi
SERVER_BIN=$TARGET/release/examples/server
LOAD_BIN=$TARGET/release/examples/load
[[ -x $SERVER_BIN && -x $LOAD_BIN ]] || die "missing $SERVER_BIN or $LOAD_BIN"

HARD_FDS=$(ulimit -Hn)
if [[ $HARD_FDS != unlimited ]] && (( CONNS + 64 > HARD_FDS )); then
    echo "scale: warning: CONNS=$CONNS needs about $(( CONNS + 64 )) descriptors in the server," \
        "the hard limit is $HARD_FDS" >&2
fi

LOAD_AT_START=$(loadavg)
STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# ---- server -------------------------------------------------------------------
# Created here, not by the background job's redirection, so the poll below
# never races the child to the file.
: >"$OUT/server.out"
RUST_LOG=${RUST_LOG:-info} "$SERVER_BIN" --listen 127.0.0.1:0 --interval "$INTERVAL" \
    --loops "$LOOPS" $HB_FLAGS >"$OUT/server.out" 2>"$OUT/server.err" &
SERVER_PID=$!

ADDR=""
deadline=$(( SECONDS + 30 ))
while [[ -z $ADDR ]]; do
    ADDR=$(sed -n 's/^listening on \(.*\)$/\1/p' "$OUT/server.out" | head -1 || true)
    [[ -n $ADDR ]] && break
    alive "$SERVER_PID" || { cat "$OUT/server.err" >&2; die "the server exited before listening"; }
    (( SECONDS < deadline )) || die "no 'listening on' line from the server within 30 s"
    sleep 0.1
done
echo "scale: server pid $SERVER_PID listening on $ADDR; logs in $OUT"

RSS_BEFORE=$(vm_kb "$SERVER_PID" VmRSS)
FDS_BEFORE=$(open_fds "$SERVER_PID")

# ---- loaders ------------------------------------------------------------------
# They run for the ramp budget plus the window plus a margin, and print their
# cumulative `done:` line on their own; the window is timed by this script.
LOAD_DUR=$(( RAMP_S + DUR_S + 5 ))
per=$(( CONNS / LOADERS ))
extra=$(( CONNS % LOADERS ))
RAMP_T0=$(now_ms)
CPU_T0=$(cpu_ticks "$SERVER_PID")
deadline=$(( SECONDS + RAMP_S ))
want=0
for (( i = 0; i < LOADERS; i++ )); do
    n=$(( per + (i < extra ? 1 : 0) ))
    "$LOAD_BIN" --connect "$ADDR" --conns "$n" --interval "$INTERVAL" $HB_FLAGS $LOAD_FLAGS \
        --duration "${LOAD_DUR}s" >"$OUT/load$i.out" 2>"$OUT/load$i.err" &
    LOAD_PIDS+=($!)
    want=$(( want + n ))
    # STAGGER=1: the next loader starts once this one's connections are all
    # up, so the accept burst and the first synchronised pings are smaller.
    while [[ -n ${STAGGER:-} ]] && (( $(open_fds "$SERVER_PID") - FDS_BEFORE < want )) \
        && (( SECONDS < deadline )); do
        sleep 0.1
    done
done
echo "scale: ${LOADERS} loader(s) started (pids ${LOAD_PIDS[*]}), $CONNS connections in all"

# ---- ramp: wait until the server holds every connection ----------------------
held=0
while :; do
    held=$(( $(open_fds "$SERVER_PID") - FDS_BEFORE ))
    (( held >= CONNS )) && break
    alive "$SERVER_PID" || die "the server died during the ramp (see $OUT/server.err)"
    if (( SECONDS >= deadline )); then
        echo "scale: only $held of $CONNS connections after $RAMP_BUDGET; last loader lines:" >&2
        for (( i = 0; i < LOADERS; i++ )); do
            tail -1 "$OUT/load$i.out" >&2 || true
            tail -3 "$OUT/load$i.err" >&2 || true
        done
        grep -m5 -E 'WARN|ERROR' "$OUT/server.err" >&2 || true
        echo "scale: FAIL: ramp incomplete; server dead verdicts so far:" \
            "$(grep -c ': dead (' "$OUT/server.err" || true)" >&2
        exit 1
    fi
    sleep 0.2
done
RAMP_T1=$(now_ms)
RAMP_MS=$(( RAMP_T1 - RAMP_T0 ))

# ---- steady window -----------------------------------------------------------
CPU_W0=$(cpu_ticks "$SERVER_PID")
W0=$(now_ms)
dead_lines() { grep -c ': dead (' "$OUT/server.err" || true; }
stall_lines() { grep -hc 'stalled for' "$@" || true; }
DEAD_W0=$(dead_lines)
echo "scale: all $CONNS connected in $(( RAMP_MS / 1000 )).$(( RAMP_MS % 1000 / 100 )) s;" \
    "measuring for ${DUR_S} s"
# A slow poll, only to notice a dead server early; it synchronises nothing.
min_held=$held
while (( $(now_ms) - W0 < DUR_S * 1000 )); do
    alive "$SERVER_PID" || die "the server died during the window (see $OUT/server.err)"
    h=$(( $(open_fds "$SERVER_PID") - FDS_BEFORE ))
    (( h < min_held )) && min_held=$h
    left=$(( DUR_S * 1000 - ($(now_ms) - W0) ))
    (( left > 0 )) || break
    sleep "$(( left < 1000 ? left : 1000 ))e-3"
done
CPU_W1=$(cpu_ticks "$SERVER_PID")
W1=$(now_ms)
RSS_AFTER=$(vm_kb "$SERVER_PID" VmRSS)
HWM=$(vm_kb "$SERVER_PID" VmHWM)
HELD_END=$(( $(open_fds "$SERVER_PID") - FDS_BEFORE ))
DEAD_W1=$(dead_lines)
LOAD_AT_END=$(loadavg)
LOADER_CPU=()
for pid in "${LOAD_PIDS[@]}"; do
    LOADER_CPU+=("$(cpu_ticks "$pid" 2>/dev/null || echo 0)")
done

# ---- wind down: loaders finish on their own, then SIGINT the server ---------
for pid in "${LOAD_PIDS[@]}"; do
    wait_exit "$pid" $(( RAMP_S + 30 )) || { echo "scale: loader $pid did not finish; killing it" >&2; kill -KILL "$pid" 2>/dev/null || true; }
done
kill -INT "$SERVER_PID"
SERVER_CLEAN=yes
if wait_exit "$SERVER_PID" 30; then
    wait "$SERVER_PID" || SERVER_CLEAN="no (exit status $?)"
else
    SERVER_CLEAN="no (still running 30 s after SIGINT; killed)"
    kill -KILL "$SERVER_PID" 2>/dev/null || true
fi
SERVER_PID=""

# ---- figures ------------------------------------------------------------------
WIN_MS=$(( W1 - W0 ))
cpu_pct() { awk -v t="$1" -v hz="$CLK_TCK" -v ms="$2" 'BEGIN { printf "%.1f", t / hz * 100000 / ms }'; }
SERVER_CPU=$(cpu_pct $(( CPU_W1 - CPU_W0 )) "$WIN_MS")
RAMP_CPU=$(cpu_pct $(( CPU_W0 - CPU_T0 )) "$(( RAMP_MS > 0 ? RAMP_MS : 1 ))")
RSS_DELTA=$(( RSS_AFTER - RSS_BEFORE ))
RSS_PER=$(awk -v d="$RSS_DELTA" -v n="$CONNS" 'BEGIN { printf "%.0f", d * 1024 / n }')

# Loader `done:` lines: "done: C connected, P pings sent, Q pongs, M misses,
# D dead, rtt p50 A p99 B max C".
LOAD_DEAD=0
LOAD_MISSES=0
LOAD_OK=yes
LOAD_ROWS=""
for (( i = 0; i < LOADERS; i++ )); do
    line=$(grep '^done:' "$OUT/load$i.out" | tail -1 || true)
    if [[ -z $line ]]; then
        LOAD_OK=no
        LOAD_ROWS+="| load$i | (no done: line; see $OUT/load$i.*) |"$'\n'
        continue
    fi
    d=$(sed -n 's/.* \([0-9]*\) dead.*/\1/p' <<<"$line")
    m=$(sed -n 's/.* \([0-9]*\) misses.*/\1/p' <<<"$line")
    LOAD_DEAD=$(( LOAD_DEAD + ${d:-0} ))
    LOAD_MISSES=$(( LOAD_MISSES + ${m:-0} ))
    cpu=$(cpu_pct "${LOADER_CPU[$i]}" "$(( W1 - RAMP_T0 ))")
    LOAD_ROWS+="| load$i | ${line#done: } (cpu ${cpu}% of a core, ramp + window) |"$'\n'
done
# Worst p99 over the loaders (each line's "p99 X").
P99S=$(grep -h '^done:' "$OUT"/load*.out | sed -n 's/.* p99 \([^ ]*\) .*/\1/p' | paste -sd' ' -)

SERVER_DEAD_LINES=$(grep -c ': dead (' "$OUT/server.err" || true)
SERVER_MISS_LINES=$(grep -c 'unanswered' "$OUT/server.err" || true)
SERVER_EXIT_LINE=$(grep -o 'served .*' "$OUT/server.err" | tail -1 || true)
SERVER_EXIT_DEAD=$(sed -n 's/.* \([0-9]*\) dead.*/\1/p' <<<"$SERVER_EXIT_LINE")
SERVER_PROTO=$(sed -n 's/.* \([0-9]*\) protocol errors.*/\1/p' <<<"$SERVER_EXIT_LINE")
FALSE_POS=$(( LOAD_DEAD + SERVER_DEAD_LINES ))
# Longest "stalled for X" in the given logs, in ms.
longest() {
    sed -n 's/.*stalled for \([0-9.]*\)\(ms\|s\);.*/\1 \2/p' "$@" \
        | awk '{ v = ($2 == "s") ? $1 * 1000 : $1; if (v > m) m = v } END { printf "%d ms", m }'
}

tee "$OUT/report.md" <<EOF

wheelbeat scale run, $STARTED_AT
$CONNS connections, $LOADERS loader(s), interval $INTERVAL, extra flags '${HB_FLAGS}', loader flags '${LOAD_FLAGS}', \
server loops $LOOPS, stagger ${STAGGER:-no}, server RUST_LOG ${RUST_LOG:-info}
machine: $(nproc) cores ($(uname -srm)); load average at start $LOAD_AT_START, at end $LOAD_AT_END

| figure | value |
|---|---|
| connections held by the server (start / min / end of window) | $held / $min_held / $HELD_END of $CONNS |
| connect ramp | $(( RAMP_MS / 1000 )).$(( RAMP_MS % 1000 / 100 )) s (server CPU ${RAMP_CPU}% of a core) |
| steady window | $(( WIN_MS / 1000 )).$(( WIN_MS % 1000 / 100 )) s |
| server CPU over the window | ${SERVER_CPU}% of one core |
| server RSS before clients / end of window / peak | $(( RSS_BEFORE / 1024 )) MiB / $(( RSS_AFTER / 1024 )) MiB / $(( HWM / 1024 )) MiB |
| server RSS per connection | $RSS_PER bytes (delta $RSS_DELTA kB / $CONNS) |
| RTT p99 (client-measured, per loader) | ${P99S:-n/a} |
| false positives (dead verdicts: loaders + server) | $FALSE_POS ($LOAD_DEAD + $SERVER_DEAD_LINES), of which in the window: server $(( DEAD_W1 - DEAD_W0 )) |
| loop stalls > timeout (server / loaders, whole run) | $(stall_lines "$OUT/server.err") / $(cat "$OUT"/load*.err | grep -c 'stalled for' || true) |
| longest stall (server / loaders) | $(longest "$OUT/server.err") / $(longest "$OUT"/load*.err) |
| ping timeouts (loaders / server) | $LOAD_MISSES / $SERVER_MISS_LINES |
| server exit | clean: $SERVER_CLEAN; ${SERVER_EXIT_LINE:-no exit line} |

| loader | done line |
|---|---|
${LOAD_ROWS}
logs: $OUT (this report: $OUT/report.md)
EOF

if [[ $LOAD_OK != yes || $FALSE_POS -ne 0 || $held -lt $CONNS || $min_held -lt $CONNS \
    || ${SERVER_EXIT_DEAD:-0} -ne 0 || ${SERVER_PROTO:-0} -ne 0 || $SERVER_CLEAN != yes ]]; then
    echo "scale: FAIL (see above and $OUT)"
    exit 1
fi
echo "scale: OK"
