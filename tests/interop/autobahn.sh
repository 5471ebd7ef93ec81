#!/usr/bin/env bash
# Autobahn|Testsuite (fuzzingclient mode) against the heartbeat shell's `server --ws` example
# (wheelbeat-heartbeat; WebSocket through the shell's loop, echoing messages in their kind).
#
#   bash tests/interop/autobahn.sh            # cases 1-10 (9.* with 16 MiB caps)
#   CASES='1.*,5.*' bash tests/interop/autobahn.sh
#
# On a fresh machine it installs autobahntestsuite from PyPI with pyenv's Python 2.7 into a
# local folder (pip --target; loaded with site.addsitedir so its namespace packages resolve),
# builds the example in release mode, runs the suite, prints the counts per verdict and exits
# non-zero if any case FAILED (or the suite did not run). Everything stays on 127.0.0.1.
#
# Environment: PYTHON27 (default /root/.pyenv/versions/2.7.18/bin/python), AUTOBAHN_DIR (the
# install folder, default target/autobahn), CASES (comma-separated, default 1-10),
# AUTOBAHN_TIMEOUT (seconds for the suite, default 480), AUTOBAHN_REPORTS (a folder to keep
# the suite's JSON and HTML reports in; by default they are deleted).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/tests/interop"
py=${PYTHON27:-/root/.pyenv/versions/2.7.18/bin/python}
target=${CARGO_TARGET_DIR:-$root/target}
abdir=${AUTOBAHN_DIR:-$target/autobahn}
cases=${CASES:-1.*,2.*,3.*,4.*,5.*,6.*,7.*,8.*,9.*,10.*}
limit=$((16 * 1024 * 1024))
start=$(date +%s)

if [ ! -x "$py" ]; then
    echo "autobahn: no Python 2.7 at $py (pyenv install 2.7.18)" >&2
    exit 2
fi
if [ ! -d "$abdir/site/autobahntestsuite" ]; then
    echo "autobahn: installing autobahntestsuite into $abdir/site"
    mkdir -p "$abdir"
    "$py" -m pip install --disable-pip-version-check --no-warn-script-location \
        --target "$abdir/site" autobahntestsuite > "$abdir/pip.log" 2>&1 ||
        { tail -20 "$abdir/pip.log"; exit 2; }
fi

(cd "$root" && cargo build --release --locked -p wheelbeat-heartbeat --example server)
work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Caps raised for 9.* (16 MiB messages; the write queue holds one echo, the loop's memory
# budget a few). The ping interval is longer than any case, so the suite sees only the
# frames it asked for; heartbeats over WebSocket are tested in tests/ and browser.sh.
RUST_LOG=warn "$target/release/examples/server" --listen 127.0.0.1:0 --ws \
    --max-frame-len "$limit" --max-message-len "$limit" --write-cap $((2 * limit)) \
    --memory-budget $((8 * limit)) --interval 60s --timeout 10s \
    > "$work/server.out" 2> "$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
    grep -q '^listening on ' "$work/server.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err"; exit 2; }
    sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$work/server.out")
[ -n "$addr" ] || { echo "autobahn: server did not start" >&2; exit 2; }
echo "autobahn: server --ws on $addr (frame and message caps $limit bytes), cases $cases"

case_list=$(echo "$cases" | sed 's/,/", "/g')
sed -e "s|@OUTDIR@|$work/reports|" -e "s|@URL@|ws://$addr|" -e "s|@CASES@|$case_list|" \
    "$here/fuzzingclient.json" > "$work/spec.json"
(cd "$work" && timeout "${AUTOBAHN_TIMEOUT:-480}" "$py" -c '
import site, sys
site.addsitedir(sys.argv[1])
sys.argv = ["wstest", "-m", "fuzzingclient", "-s", sys.argv[2]]
from autobahntestsuite.wstest import run
sys.exit(run())
' "$abdir/site" "$work/spec.json" > "$work/wstest.log" 2>&1) ||
    { tail -20 "$work/wstest.log"; echo "autobahn: wstest failed or timed out" >&2; exit 1; }

status=0
python3 "$here/autobahn_summary.py" "$work/reports/index.json" || status=$?
if [ -n "${AUTOBAHN_REPORTS:-}" ]; then
    mkdir -p "$AUTOBAHN_REPORTS" && cp -r "$work/reports/." "$AUTOBAHN_REPORTS/"
fi
echo "autobahn: $(( $(date +%s) - start )) s in all"
exit $status
