#!/usr/bin/env bash
# RSS per idle WebSocket connection in the heartbeat shell's server process.
#
#   bash benches/scale/ws_idle_rss.sh          # N=5000
#
# Starts `server --ws` (release), reads its VmRSS, opens N WebSocket connections from
# `load --ws` in another process (heartbeat interval 60 s: the connections stay idle after the
# upgrade), reads the server's VmRSS again 6 s later, after the 5 s handshake timeout, so every
# connection counted by `ss` has completed its upgrade, and prints the difference per
# established connection. This counts everything the server holds per connection in user
# space (driver slot, WebSocket session, endpoint entry, monitor entry and timer, table
# growth, allocator overhead), not the kernel's socket buffers.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
n=${N:-5000}
(cd "$root" && cargo build --release --locked -p wheelbeat-heartbeat --example server --example load)
b=$target/release/examples
work=$(mktemp -d)
spid= lpid=
cleanup() {
    [ -n "$lpid" ] && kill "$lpid" 2>/dev/null || true
    [ -n "$spid" ] && kill "$spid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
RUST_LOG=warn "$b/server" --listen 127.0.0.1:0 --ws --interval 60s --timeout 10s > "$work/out" 2> /dev/null &
spid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$work/out" 2> /dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$work/out")
rss() { awk '/VmRSS/ {print $2}' "/proc/$spid/status"; }
r0=$(rss)
RUST_LOG=warn "$b/load" --connect "$addr" --conns "$n" --ws --interval 60s --timeout 10s \
    --duration 8s > "$work/load" 2>&1 &
lpid=$!
sleep 6 # a measurement point, not synchronisation: the count below is what is measured
r1=$(rss)
conns=$(ss -Htn state established "( sport = :${addr##*:} )" | wc -l)
wait "$lpid"; lpid=
[ "$conns" -gt 0 ] || { echo "no connections established" >&2; exit 1; }
echo "server VmRSS ${r0} KiB before, ${r1} KiB with $conns idle upgraded WebSocket connections:" \
    "$(( (r1 - r0) * 1024 / conns )) bytes per connection"
