#!/usr/bin/env bash
# Foreign-client TLS check: Python's `ssl` module (a TLS stack nobody here wrote) talks to the
# heartbeat `server` example (`--tls-cert ... --tls-key ...`) over loopback. Needs only the Rust toolchain, python3 and the
# openssl CLI (installed with apt-get if missing and we are root). Exits non-zero on failure;
# the whole run is bounded (about 10 s once built).
#
#   bash tests/interop/tls.sh
#
# What it checks, against one server process:
#   1. 20 clients in parallel, 50 `{"ping":N}` lines each, each answered `{"pong":N}` in order
#      (the server's own `{"ping":...}` heartbeats, if any come, are skipped);
#   2. ALPN-less TLS 1.3 with certificate and host name verified by Python (cafile, SNI);
#   3. garbage instead of a ClientHello is refused, and the next client is served;
#   4. a clean close: the client's close_notify is answered with the server's (ssl.unwrap()).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v openssl >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq openssl >/dev/null
    else
        echo "tls.sh: the openssl CLI is needed to make a throwaway certificate" >&2
        exit 1
    fi
fi

echo "== building the heartbeat server example (with TLS)"
cargo build --locked -q -p wheelbeat-heartbeat --features tls --example server
BIN="${CARGO_TARGET_DIR:-target}/debug/examples/server"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== throwaway certificate for localhost"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

# The server under test, in one variable (it must print `listening on IP:PORT` on stdout).
SERVER_CMD="$BIN --listen 127.0.0.1:0 --tls-cert $WORK/cert.pem --tls-key $WORK/key.pem"

echo "== starting: $SERVER_CMD"
RUST_LOG=info $SERVER_CMD >"$WORK/out" 2>"$WORK/err" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 1 200); do
    ADDR="$(sed -n 's/^listening on //p' "$WORK/out" | head -n1)"
    [ -n "$ADDR" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited:"; cat "$WORK/err"; exit 1; }
    sleep 0.1
done
[ -n "$ADDR" ] || { echo "server never printed its address"; exit 1; }
echo "server at $ADDR"

status=0
timeout 60 python3 - "$ADDR" "$WORK/cert.pem" <<'PY' || status=$?
import socket, ssl, sys, threading

host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
ctx = ssl.create_default_context(cafile=sys.argv[2])  # verifies the chain and the host name
TIMEOUT = 10

def tls_client():
    raw = socket.create_connection((host, port), timeout=TIMEOUT)
    return ctx.wrap_socket(raw, server_hostname="localhost")

def reply(f):
    """The next line that is not the server's own heartbeat ping."""
    while True:
        line = f.readline()
        if not line.startswith(b'{"ping":'):
            return line

def echo(n_lines, tag):
    s = tls_client()
    f = s.makefile("rb")
    for i in range(n_lines):
        s.sendall(b'{"ping":%d}\n' % i)
        got = reply(f)
        want = b'{"pong":%d}\n' % i
        assert got == want, f"{tag}: wanted {want!r}, got {got!r}"
    version = s.version()
    f.close()
    s.close()
    return version

failures = []
def run(i):
    try:
        echo(50, f"client {i}")
    except Exception as e:  # collected and reported below
        failures.append(f"client {i}: {e!r}")

threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
for t in threads: t.start()
for t in threads: t.join(TIMEOUT * 2)
assert not any(t.is_alive() for t in threads), "a client hung"
assert not failures, failures
print("ok: 20 clients x 50 {\"ping\":N} answered {\"pong\":N} over", echo(1, "version"))

# Garbage instead of a ClientHello: the server must drop that connection...
g = socket.create_connection((host, port), timeout=TIMEOUT)
g.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
rest = b""
try:
    while True:
        chunk = g.recv(4096)
        if not chunk:
            break
        rest += chunk
except ConnectionResetError:
    pass
g.close()
print(f"ok: garbage refused (connection closed, {len(rest)} bytes back)")
# ...and carry on serving others.
echo(3, "after garbage")
print("ok: served after garbage")

# Clean close: our close_notify is answered by the server's.
s = tls_client()
s.sendall(b'{"ping":1}\n')
f = s.makefile("rb")
assert reply(f) == b'{"pong":1}\n'
f.close()
plain = s.unwrap()  # sends close_notify, waits for the server's
plain.close()
print("ok: close_notify answered")
PY

if [ "$status" -ne 0 ]; then
    echo "FAILED (python exit $status); server stderr:"; cat "$WORK/err"
    exit 1
fi
kill -0 "$SERVER_PID" 2>/dev/null || { echo "server died"; cat "$WORK/err"; exit 1; }
echo "server log: $(wc -l <"$WORK/err") closed connections; the garbage one:"
grep -m1 "tls:" "$WORK/err" || { echo "the garbage connection's reason was not logged"; exit 1; }
echo "tls.sh: 4 passed, 0 failed"
