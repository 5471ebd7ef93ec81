"""Scrapes the `server` example's `--metrics` endpoint with Prometheus text parsers nobody
here wrote, and checks the names, the types and that the counters move with real traffic;
then SIGTERM drains: every raw client gets `{"goaway":N}` and the server exits 0 once they
left.

The endpoint speaks OpenMetrics text (what `prometheus-client` writes, with its content
type), so each scrape goes through both of prometheus_client's parsers:
`prometheus_client.openmetrics.parser` (strict: families, types, `# EOF`) for the names and
types, and the classic `prometheus_client.parser.text_string_to_metric_families` for the
sample values (it reads counters as `NAME_total` samples of an untyped family, which is how
a 0.0.4-format consumer sees them).

    python3 metrics.py path/to/server      (with prometheus_client on PYTHONPATH)
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families)
from prometheus_client.parser import text_string_to_metric_families

CLIENTS = 5


def fail(msg):
    print(f"metrics interop: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        if r.status != 200:
            fail(f"GET {url}: {r.status}")
        text = r.read().decode()
    families = {f.name: f for f in openmetrics_families(text)}
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    return (families, samples), text


def value(scraped, name, suffix="", **labels):
    families, samples = scraped
    if name not in families:
        fail(f"no family {name}; have {sorted(families)}")
    for s in samples:
        if s.name == name + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    fail(f"no sample {name}{suffix}{labels} (classic parser)")


def wait_until(what, cond, within=10.0):
    deadline = time.time() + within
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)  # polling an HTTP endpoint, not synchronising threads
    fail(f"timed out waiting for {what}")


class Client:
    """A raw JSON-lines client that answers the server's pings and records the rest."""

    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=10)
        self.lines = []
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        buf = b""
        try:
            while True:
                data = self.sock.recv(4096)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    msg = json.loads(line)
                    if "ping" in msg:
                        self.sock.sendall(b'{"pong":%d}\n' % msg["ping"])
                    else:
                        self.lines.append(msg)
                        if "goaway" in msg:
                            self.sock.close()  # leave at once, as told
                            return
        except OSError:
            pass
        finally:
            self.closed.set()


def main(server_bin):
    env = dict(os.environ, RUST_LOG="info")
    server = subprocess.Popen(
        [server_bin, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
         "--interval", "200ms", "--timeout", "1s", "--drain-timeout", "5s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        run(server)
    finally:
        if server.poll() is None:
            server.kill()


def run(server):
    line = server.stdout.readline().strip()
    if not line.startswith("listening on "):
        fail(f"server said {line!r}")
    host, port = line[len("listening on "):].rsplit(":", 1)
    addr = (host, int(port))
    url = None
    for l in server.stderr:
        m = re.search(r"metrics on (http://\S+/metrics)", l)
        if m:
            url = m.group(1)
            break
    if url is None:
        fail("no `metrics on` line on stderr")
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()

    scraped, text = scrape(url)
    fams = scraped[0]
    for name, typ in [
        ("wheelbeat_connections", "gauge"),
        ("wheelbeat_accepted", "counter"),
        ("wheelbeat_pings_sent", "counter"),
        ("wheelbeat_pings_received", "counter"),
        ("wheelbeat_pongs_received", "counter"),
        ("wheelbeat_dead", "counter"),
        ("wheelbeat_closed", "counter"),
        ("wheelbeat_protocol_errors", "counter"),
        ("wheelbeat_write_overflows", "counter"),
        ("wheelbeat_memory_budget_closes", "counter"),
        ("wheelbeat_ping_floods", "counter"),
        ("wheelbeat_local_pauses", "counter"),
        ("wheelbeat_timer_late_runs", "counter"),
        ("wheelbeat_timer_lateness_max_seconds", "gauge"),
        ("wheelbeat_memory_bytes", "gauge"),
        ("wheelbeat_rtt_seconds", "histogram"),
    ]:
        if name not in fams:
            fail(f"missing {name}; have {sorted(fams)}")
        if fams[name].type != typ:
            fail(f"{name} is a {fams[name].type}, not a {typ}")
    if value(scraped, "wheelbeat_pings_received", "_total") != 0:
        fail("pings before any client")

    clients = [Client(addr) for _ in range(CLIENTS)]
    for c in clients:
        c.sock.sendall(b'{"ping":7}\n')
    bad = socket.create_connection(addr, timeout=10)
    bad.sendall(b"not json\n")

    # Published at most 100 ms after the loop's turn: poll until the counters moved.
    def moved():
        f, _ = scrape(url)
        return (value(f, "wheelbeat_pings_received", "_total") >= CLIENTS
                and value(f, "wheelbeat_protocol_errors", "_total") == 1
                and value(f, "wheelbeat_rtt_seconds", "_count") >= CLIENTS
                and value(f, "wheelbeat_connections") == CLIENTS)
    wait_until("the counters to move", moved)
    fams, text = scrape(url)
    if value(fams, "wheelbeat_closed", "_total", reason="protocol_error") != 1:
        fail("the bad client's close is not counted")
    if value(fams, "wheelbeat_accepted", "_total") != CLIENTS + 1:
        fail("accepted count")
    if value(fams, "wheelbeat_dead", "_total", reason="missed_pings") != 0:
        fail("a healthy client was judged dead")
    inf = value(fams, "wheelbeat_rtt_seconds", "_bucket", le="+Inf")
    if inf != value(fams, "wheelbeat_rtt_seconds", "_count"):
        fail("+Inf bucket differs from the count")
    print(f"scrape: {int(value(fams, 'wheelbeat_pings_sent', '_total'))} pings sent, "
          f"{int(inf)} RTT samples, {len(fams[0])} families")

    # Drain: every client is told and leaves; the server then exits at once.
    started = time.time()
    server.send_signal(signal.SIGTERM)
    for c in clients:
        if not c.closed.wait(5):
            fail("a client was not told to go away")
        if not any("goaway" in m for m in c.lines):
            fail(f"no goaway: {c.lines}")
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        fail("server did not exit once the clients left")
    if server.returncode != 0:
        fail(f"server exited with {server.returncode}")
    print(f"drain: {CLIENTS} clients told goaway, server exited 0 after "
          f"{time.time() - started:.2f} s")
    print("metrics interop: passed")


if __name__ == "__main__":
    main(sys.argv[1])
