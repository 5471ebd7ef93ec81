#!/usr/bin/env bash
# A/B of connect pacing under CPU contention: `run.sh` with the loaders paced
# (--connect-rate 1000 each) and unpaced, interleaved, ROUNDS times, each run
# with two CPU hogs (busy shell loops) on the machine.
#
#   CARGO_TARGET_DIR=... NO_BUILD=1 benches/scale/ab_contention.sh
#
# Environment: ROUNDS=2, DURATION=20s, and everything run.sh takes. Each
# run's log is $OUT_BASE-{paced,unpaced}-N.log (OUT_BASE=/tmp/wheelbeat-ab).
# Exit status 0; read the summary lines at the end.
set -uo pipefail

ROUNDS=${ROUNDS:-2}
OUT_BASE=${OUT_BASE:-/tmp/wheelbeat-ab}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOGS=()
stop_hogs() {
    (( ${#HOGS[@]} )) && kill "${HOGS[@]}" 2>/dev/null
    HOGS=()
}
trap stop_hogs EXIT

for (( round = 1; round <= ROUNDS; round++ )); do
    for mode in paced unpaced; do
        flags=""
        [[ $mode == paced ]] && flags="--connect-rate 1000"
        for _ in 1 2; do
            ( while :; do :; done ) &
            HOGS+=($!)
        done
        log=$OUT_BASE-$mode-$round.log
        DURATION=${DURATION:-20s} OUT=$OUT_BASE-$mode-$round LOAD_FLAGS="$flags" \
            "$HERE/run.sh" >"$log" 2>&1
        rc=$?
        stop_hogs
        verdicts=$(grep -h 'false positives\|dead verdicts so far' "$log" | tail -1)
        echo "ab: $mode round $round: exit $rc; ${verdicts:-see $log}"
        sleep 5
    done
done
