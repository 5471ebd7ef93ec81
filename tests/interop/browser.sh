#!/usr/bin/env bash
# A real browser against the heartbeat shell's WebSocket server: headless Chromium opens
# `server --ws --web`'s page with N WebSockets (default 200) and
#   1. every connection heartbeats: the server records an RTT (RFC 6455 ping answered by the
#      browser's own pong, no JavaScript) for all N;
#   2. the browser's whole process group is frozen with SIGSTOP (sockets open, nothing
#      answers: a hung machine, not a closed tab): the server declares all N dead, none
#      before the freeze, each within the detection bound plus the loop's measured timer
#      lateness L (the STATS line's timer_lateness_max_us) after it: bound + 2 L + one tick,
#      the allowance of tests/tests/load_attack.rs (a turn late by L delays a verdict by L,
#      and the retry that follows it sits on the tick grid, so L again rounded up to a tick);
#   3. a fresh page (?close=1) closes its N WebSockets cleanly once each has an RTT: the
#      server sees N peer closes and no other close.
#
#   bash tests/interop/browser.sh          # N=200
#   N=50 bash tests/interop/browser.sh
#
# Installs Chromium (Debian package `chromium`, after apt-get update) if it is missing,
# builds the example in release mode, prints a summary and exits non-zero on any failure.
# Everything stays on 127.0.0.1; the checks are bounded (under 3 minutes after the install).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
n=${N:-200}
# Heartbeat settings of the server, and the bound they give:
# interval x (1 + jitter) + max_missed x timeout + tick (10 ms).
interval_ms=500 timeout_ms=250 max_missed=2 jitter=0.1
bound_us=$(python3 -c "print(int($interval_ms*1000*(1+$jitter) + $max_missed*$timeout_ms*1000 + 10000))")
start=$(date +%s)

if ! command -v chromium > /dev/null; then
    echo "browser: installing chromium"
    (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium) \
        > /tmp/browser-apt.log 2>&1 || { tail -20 /tmp/browser-apt.log; exit 2; }
fi
(cd "$root" && cargo build --release --locked -p wheelbeat-heartbeat --example server)

work=$(mktemp -d)
server_pid= browser_pid=
stop_browser() {
    if [ -n "$browser_pid" ]; then
        # The whole group: chromium's renderer and network processes with it. SIGCONT after
        # SIGKILL is harmless and wakes a stopped group so it can die.
        kill -KILL -- "-$browser_pid" 2>/dev/null || true
        kill -CONT -- "-$browser_pid" 2>/dev/null || true
        wait "$browser_pid" 2>/dev/null || true
        browser_pid=
    fi
}
cleanup() {
    stop_browser
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

RUST_LOG=warn "$target/release/examples/server" --listen 127.0.0.1:0 --ws --web --events \
    --interval ${interval_ms}ms --timeout ${timeout_ms}ms --max-missed $max_missed \
    --jitter $jitter --stats-every 200ms > "$work/events" 2> "$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
    grep -q '^listening on ' "$work/events" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err"; exit 2; }
    sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$work/events")
[ -n "$addr" ] || { echo "browser: server did not start" >&2; exit 2; }
echo "browser: server --ws --web on $addr, $n connections, bound $((bound_us / 1000)) ms"

# Starts headless Chromium on the page, in its own process group (its pid is the group's).
open_page() {
    setsid chromium --headless=new --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage \
        --user-data-dir="$(mktemp -d -p "$work")" "http://$addr/?n=$n$1" \
        > "$work/chromium.log" 2>&1 &
    browser_pid=$!
}

# Counts distinct WebSocket connections (conn ids with an RTT after `since`, a line number of
# the events file) with an EVENT of `kind` after `since`; extra awk condition in $3. Other
# connections (the page's GET, Chromium's speculative preconnects, which never send a request
# and are closed as silent) are not the page's WebSockets.
count() {
    awk -v since="$2" -v kind="$1" "NR > since && \$2 == \"rtt\" { ws[\$3 \" \" \$4] = 1 }
        NR > since && \$1 == \"EVENT\" && \$2 == kind $3 { seen[\$3 \" \" \$4] = 1 }
        END { for (c in seen) if (c in ws) k++; print k + 0 }" "$work/events"
}
wait_count() { # kind since condition target seconds
    local deadline=$(( $(date +%s) + $5 )) got
    while :; do
        got=$(count "$1" "$2" "$3")
        [ "$got" -ge "$4" ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] && { echo "browser: only $got of $4 '$1' events within $5 s" >&2; return 1; }
        sleep 0.2
    done
}
fail() { echo "browser: FAILED: $*" >&2; tail -5 "$work/server.err" >&2; exit 1; }

# 1. Every connection heartbeats.
mark=$(wc -l < "$work/events")
open_page ""
wait_count rtt "$mark" "" "$n" 60 || fail "not every connection heartbeats"
rtts=$(awk -v since="$mark" 'NR > since && $2 == "rtt" { n++ } END { print n }' "$work/events")
echo "browser: 1. all $n connections heartbeat ($rtts server-side RTTs so far)"
# A few more rounds, then freeze: nobody may die before.
sleep 1
pre_dead=$(count dead "$mark" "")
[ "$pre_dead" -eq 0 ] || fail "$pre_dead connections declared dead before the freeze"

# 2. Freeze the browser: all N dead, none before the freeze, each within bound + lateness.
freeze_mark=$(wc -l < "$work/events")
t0=$(date +%s%6N)
kill -STOP -- "-$browser_pid"
t1=$(date +%s%6N)
wait_count dead "$mark" "" "$n" 20 || fail "not every frozen connection declared dead"
sleep 0.5 # let the next STATS line carry the lateness of these verdicts
lateness_us=$(grep '^STATS ' "$work/server.err" | tail -1 | sed 's/^STATS //' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["timer_lateness_max_us"])')
read -r early late min_us max_us < <(awk -v since="$mark" -v t0="$t0" -v t1="$t1" \
    -v limit=$((bound_us + 2 * lateness_us + 10000)) '
    NR > since && $2 == "rtt" { ws[$3 " " $4] = 1 }
    NR > since && $2 == "dead" && ($3 " " $4) in ws {
        t = substr($5, 6) + 0
        if (t < t0) early++
        d = t - t1; if (d > limit) late++
        if (min == "" || d < min) min = d; if (d > max) max = d
    }
    END { print early + 0, late + 0, min + 0, max + 0 }' "$work/events")
[ "$early" -eq 0 ] || fail "$early connections declared dead before the freeze"
summary="dead $((min_us / 1000))-$((max_us / 1000)) ms after the freeze (bound $((bound_us / 1000)) ms, loop lateness L $((lateness_us / 1000)) ms, allowed bound + 2 L + 10 ms tick)"
[ "$late" -eq 0 ] || fail "$late connections declared dead too late: $summary"
echo "browser: 2. all $n frozen connections $summary, none before"
stop_browser

# 3. A fresh page closes its connections cleanly: N peer closes, nothing else.
mark=$(wc -l < "$work/events")
open_page "&close=1"
wait_count close "$mark" '&& $NF == "reason=peer_closed"' "$n" 60 || fail "not every clean close seen"
others=$(count close "$mark" '&& $NF != "reason=peer_closed"')
[ "$others" -eq 0 ] || fail "$others connections closed otherwise"
dead3=$(count dead "$mark" "")
[ "$dead3" -eq 0 ] || fail "$dead3 connections of the fresh page declared dead"
echo "browser: 3. the fresh page's $n clean closes seen as $n peer closes"
stop_browser
echo "browser: passed in $(( $(date +%s) - start )) s"
