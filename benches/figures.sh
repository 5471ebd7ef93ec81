#!/usr/bin/env bash
# Reruns the quick version of every benchmark a README quotes and rewrites the generated
# figure regions (`<!-- figures:NAME -->` ... `<!-- /figures:NAME -->`) of the READMEs and
# benches/RESULTS.md from what they printed, stamped with the date, the commit and a machine
# line. A few minutes in all. Options (see benches/figures.py):
#
#   benches/figures.sh                       # everything
#   benches/figures.sh --only compare,demo   # some sources; the other regions stay as they are
#   benches/figures.sh --from-logs DIR       # re-render from a previous run's logs
#   benches/figures.sh --dry-run | --list
#
# Honours CARGO_TARGET_DIR (logs go to $CARGO_TARGET_DIR/figures/<UTC time>/). Run it on a
# machine doing nothing else if you can: the stamp records the load average at each start.
# Then `python3 .ci/figures_check.py` checks the READMEs against benches/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 benches/figures.py "$@"
