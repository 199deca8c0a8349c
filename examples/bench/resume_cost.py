#!/usr/bin/env python3
"""What resume costs wscgi in memory (README, "Resume"): RSS per parked session, and per live
connection that opened with a resume key. Standard library only; bounded in count and time.

    python3 examples/bench/resume_cost.py --pid PID [--ws 127.0.0.1:8080] [--push 127.0.0.1:8081]
                                          [--batch 1000] [--batches 6] [--kept 0]

wscgi must run in front of bench-fast-backend (any backend that accepts every open will do).
The script opens BATCH connections, each with its own `wscgi-resume` key, and drops them (TCP
close, no close frame: wscgi parks each session), BATCHES times. Each batch's live connections
reuse the memory the previous batch freed when it parked, so what stays behind per parked
session is the slope of wscgi's RSS over the batches. With --kept BYTES, every parked session is
pushed one message of that size (through the push API, so each keeps its own copy). Prints one
JSON line and one human line.
"""

import argparse
import json
import os
import socket
import sys
import time
import urllib.request

UPGRADE = (
    "GET /cost?wscgi-resume={key} HTTP/1.1\r\nHost: wscgi\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\nUser-Agent: resume-cost\r\n\r\n"
)
DEADLINE = time.monotonic() + 300  # the whole run


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for pid {pid}")


def push(addr, method, path, body=b""):
    req = urllib.request.Request(f"http://{addr}{path}", data=body or None, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read().decode()


def metric(addr, name):
    _, text = push(addr, "GET", "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise SystemExit(f"no metric {name}")


def wait_for(what, cond):
    while not cond():
        if time.monotonic() > DEADLINE:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def open_resumable(ws, key):
    host, port = ws.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(UPGRADE.format(key=key).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit(f"connection closed during the handshake: {head!r}")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"handshake refused: {head[:200]!r}")
    return s


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pid", type=int, required=True, help="wscgi's process id")
    p.add_argument("--ws", default="127.0.0.1:8080", help="wscgi's WebSocket address")
    p.add_argument("--push", default="127.0.0.1:8081", help="wscgi's push API address")
    p.add_argument("--batch", type=int, default=1000, help="connections per batch")
    p.add_argument("--batches", type=int, default=6, help="batches (at least 2)")
    p.add_argument("--kept", type=int, default=0, help="bytes pushed to each parked session")
    a = p.parse_args()
    if a.batches < 2 or a.batch < 1 or a.batch * a.batches > 20000:
        raise SystemExit("--batches >= 2, --batch >= 1, at most 20000 sessions in all")
    before = rss_kib(a.pid)
    parked_rss = []
    live_rss = None
    for b in range(a.batches):
        socks = [open_resumable(a.ws, f"cost{b:04d}x{i:014d}") for i in range(a.batch)]
        if live_rss is None:
            live_rss = rss_kib(a.pid)
        for s in socks:
            s.close()  # a FIN without a close frame: wscgi parks the session
        want = (b + 1) * a.batch
        wait_for(f"{want} parked sessions", lambda: metric(a.push, "wscgi_parked_sessions") >= want)
        parked_rss.append(rss_kib(a.pid))
    kept_rss = None
    if a.kept:
        _, listing = push(a.push, "GET", "/connections")
        for conn_id in json.loads(listing)["connections"]:
            status, _ = push(a.push, "POST", f"/connections/{conn_id}", os.urandom(a.kept // 2).hex().encode())
            assert status == 202, status
        kept_rss = rss_kib(a.pid)
    sessions = a.batch * (a.batches - 1)
    per_parked = (parked_rss[-1] - parked_rss[0]) * 1024 / sessions
    per_live = (live_rss - before) * 1024 / a.batch
    out = {
        "rss_before_kib": before,
        "rss_first_batch_live_kib": live_rss,
        "rss_parked_kib": parked_rss,
        "bytes_per_parked_session": round(per_parked),
        "bytes_per_live_resumable_connection": round(per_live),
        "parked_bytes_metric": metric(a.push, "wscgi_parked_bytes"),
    }
    human = (
        f"parked session: {per_parked:.0f} bytes of RSS each (slope over {sessions} sessions); "
        f"live resumable connection: {per_live:.0f} bytes each (first {a.batch})"
    )
    if kept_rss is not None:
        total = a.batch * a.batches
        out["bytes_per_kept_message"] = round((kept_rss - parked_rss[-1]) * 1024 / total)
        human += f"; a kept {a.kept}-byte push adds {out['bytes_per_kept_message']} bytes each"
    print(json.dumps(out))
    print(human)


if __name__ == "__main__":
    sys.exit(main())
