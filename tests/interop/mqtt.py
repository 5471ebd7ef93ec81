#!/usr/bin/env python3
"""Drives the `mqtt` example with Eclipse paho-mqtt clients (see mqtt.sh for the set-up).

The server prints `listening on IP:PORT` on stdout and, on stderr, one `VERDICT {json}` line per
connection it closes for silence and one `STATS {json}` line on SIGTERM. Checks:

1. 50 paho clients, keep-alive 1 s, publish and subscribe for 20 s: none is disconnected and
   every one receives messages.
2. 5 paho clients in their own processes are frozen with SIGSTOP (sockets open, nothing sent):
   the server closes each one, and the silence it measured from the client's last packet is
   at least 1.5 s (1.5 x keep-alive) and at most 1.5 s + one tick + the loop's measured timer
   lateness.
3. A raw socket sending garbage is closed by the server; the 50 clients carry on.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt

CLIENTS = 50
FROZEN = 5
KEEP_ALIVE = 1
RUN_SECONDS = 20
TICK = 0.010
WINDOW = 1.5 * KEEP_ALIVE

VICTIM = r"""
import sys, time
import paho.mqtt.client as mqtt
host, port, cid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
c.on_connect = lambda c, u, f, rc, p: (print("connected", flush=True))
c.connect(host, port, keepalive=1)
c.loop_forever()
"""


def fail(msg):
    print(f"mqtt interop: FAIL: {msg}", flush=True)
    sys.exit(1)


def main():
    binary = sys.argv[1]
    server = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = server.stdout.readline().strip()
    if not line.startswith("listening on "):
        fail(f"server said {line!r}")
    host, port = line[len("listening on "):].rsplit(":", 1)
    port = int(port)

    verdicts, stats = [], []

    def read_stderr():
        for l in server.stderr:
            if l.startswith("VERDICT "):
                verdicts.append(json.loads(l[len("VERDICT "):]))
            elif l.startswith("STATS "):
                stats.append(json.loads(l[len("STATS "):]))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        run(host, port, verdicts)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            fail("server did not stop on SIGTERM")
        reader.join(timeout=5)
    if server.returncode != 0:
        fail(f"server exited with {server.returncode}")
    if not stats:
        fail("no STATS line on SIGTERM")
    lateness = stats[-1]["timer_lateness_max_ms"] / 1000.0
    check_frozen(verdicts, lateness)
    print(f"mqtt interop: 3 passed, 0 failed")


def run(host, port, verdicts):
    # 1. The healthy crowd.
    received = [0] * CLIENTS
    dropped = []
    clients = []
    for i in range(CLIENTS):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"healthy-{i}")

        def on_connect(c, u, flags, rc, props, i=i):
            c.subscribe(f"room/{i % 5}", qos=0)

        def on_message(c, u, msg, i=i):
            received[i] += 1

        def on_disconnect(c, u, flags, rc, props, i=i):
            dropped.append((i, str(rc)))

        c.on_connect = on_connect
        c.on_message = on_message
        c.on_disconnect = on_disconnect
        c.connect(host, port, keepalive=KEEP_ALIVE)
        c.loop_start()
        clients.append(c)

    # 2. The frozen ones, each in its own process so SIGSTOP freezes it whole.
    victims = []
    for i in range(FROZEN):
        p = subprocess.Popen(
            [sys.executable, "-c", VICTIM, host, str(port), f"frozen-{i}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        victims.append(p)
    for p in victims:
        if p.stdout.readline().strip() != "connected":
            fail("a frozen-to-be client did not connect")

    start = time.monotonic()
    froze = False
    garbage_closed = None
    while time.monotonic() - start < RUN_SECONDS:
        for i, c in enumerate(clients):
            c.publish(f"room/{(i + 1) % 5}", b"x" * 16, qos=0)
        elapsed = time.monotonic() - start
        if not froze and elapsed > 3:
            for p in victims:
                os.kill(p.pid, signal.SIGSTOP)
            froze = True
            # 3. Garbage from a raw socket: closed alone.
            garbage_closed = garbage(host, port)
        time.sleep(0.1)

    for c in clients:
        c.loop_stop()
    if dropped:
        fail(f"{len(dropped)} healthy clients were disconnected: {dropped[:5]}")
    silent = [i for i, n in enumerate(received) if n == 0]
    if silent:
        fail(f"clients {silent[:5]} received nothing")
    if not garbage_closed:
        fail("the garbage connection was not closed")
    print(
        f"healthy: {CLIENTS} clients, keep-alive {KEEP_ALIVE} s, {RUN_SECONDS} s: 0 dropped, "
        f"{sum(received)} messages received (min {min(received)} per client)"
    )
    print("garbage: closed by the server; the others carried on")
    for c in clients:
        c.disconnect()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(
        [v for v in verdicts if v["client"].startswith("frozen-")]
    ) < FROZEN:
        time.sleep(0.05)
    for p in victims:
        p.kill()
        p.wait()


def garbage(host, port):
    s = socket.create_connection((host, port), timeout=3)
    s.sendall(b"\xff\xff\xff\xff\xffnot mqtt at all")
    try:
        return s.recv(64) == b""
    except (ConnectionResetError, socket.timeout):
        return isinstance(sys.exc_info()[1], ConnectionResetError)
    finally:
        s.close()


def check_frozen(verdicts, lateness):
    frozen = [v for v in verdicts if v["client"].startswith("frozen-")]
    healthy = [v for v in verdicts if v["client"].startswith("healthy-")]
    if healthy:
        fail(f"healthy clients closed for silence: {healthy[:3]}")
    if len(frozen) != FROZEN:
        fail(f"{len(frozen)} of {FROZEN} frozen clients closed for silence")
    silences = [v["silent_ms"] / 1000.0 for v in frozen]
    allowed = WINDOW + TICK + lateness
    print(
        f"frozen: {FROZEN} of {FROZEN} closed; silence from last packet min {min(silences):.3f} s, "
        f"max {max(silences):.3f} s; window {WINDOW:.3f} s, allowed {allowed:.3f} s "
        f"(tick {TICK * 1000:.0f} ms + measured lateness {lateness * 1000:.1f} ms)"
    )
    if min(silences) < WINDOW:
        fail("a frozen client was closed before 1.5 x keep-alive")
    if max(silences) > allowed:
        fail("a frozen client was closed later than the bound")


if __name__ == "__main__":
    main()
