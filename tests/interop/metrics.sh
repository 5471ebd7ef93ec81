#!/usr/bin/env bash
# Prometheus metrics and drain against a parser nobody here wrote (prometheus_client from PyPI,
# installed into target/interop/py). Builds the `server` example, runs it with
# `--metrics 127.0.0.1:0`, scrapes `GET /metrics` while raw JSON clients ping and one sends
# garbage, and checks names, types and that the counters move; then SIGTERM drains and every
# client gets `{"goaway":N}`. Bounded: about 5 s once built.
#
#   bash tests/interop/metrics.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
deps=target/interop/py
if ! PYTHONPATH=$deps python3 -c 'import prometheus_client.parser' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$deps" 'prometheus_client>=0.20,<1'
fi
cargo build --quiet --locked -p wheelbeat-heartbeat --example server
PYTHONPATH=$deps exec python3 tests/interop/metrics.py "${CARGO_TARGET_DIR:-target}/debug/examples/server"
