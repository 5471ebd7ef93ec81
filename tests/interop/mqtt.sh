#!/usr/bin/env bash
# MQTT keep-alive against a client library nobody here wrote (Eclipse paho-mqtt from PyPI).
# Installs paho into a local folder, builds the `mqtt` example, and runs tests/interop/mqtt.py:
# 50 clients with keep-alive 1 s publish and subscribe for 20 s and none is dropped; clients
# stopped with SIGSTOP are closed 1.5 s after their last packet (never earlier, at most one tick
# plus the loop's measured lateness later); a client sending garbage is closed alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
deps=target/interop/py
if ! PYTHONPATH=$deps python3 -c 'import paho.mqtt.client' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$deps" 'paho-mqtt>=2,<3'
fi
cargo build --quiet --locked -p wheelbeat-heartbeat --example mqtt
PYTHONPATH=$deps exec python3 tests/interop/mqtt.py "${CARGO_TARGET_DIR:-target}/debug/examples/mqtt"
