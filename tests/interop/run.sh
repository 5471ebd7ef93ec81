#!/usr/bin/env bash
# The interop suite: the examples driven by clients nobody here wrote. Each script installs what
# it needs on a fresh machine (pip into target/interop, apt-get after apt-get update) and exits
# non-zero on failure. .ci/run calls this after `cargo test`; run it alone the same way:
#   bash tests/interop/run.sh            # every suite
#   bash tests/interop/run.sh mqtt tls   # some
set -uo pipefail
cd "$(dirname "$0")"
suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then
  suites=(SUITES_PLACEHOLDER)
fi
passed=0
failed=0
for s in "${suites[@]}"; do
  echo "== interop: $s"
  start=$(date +%s)
  if timeout 900 bash "./$s.sh"; then
    passed=$((passed + 1))
    echo "== interop: $s passed in $(( $(date +%s) - start )) s"
  else
    failed=$((failed + 1))
    echo "== interop: $s FAILED after $(( $(date +%s) - start )) s"
  fi
done
echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
