#!/usr/bin/env python3
"""Turns compare.sh's results.jsonl into one Markdown table (stdout).

Each line of results.jsonl is one bench-load (or wrk ceiling) JSON result with two
fields added by compare.sh: "key" (the scenario with its size, e.g. "fanout10000")
and "server" (wscgi, wscgi-tls, pushpin, pushpin-raised, websocketd, ceiling, ceiling1, and the
references nginx-hop, shape-floor, write-ceiling, write-ceiling1).
With several repetitions, every number is the median over them.

Usage: report.py RESULTS.jsonl [--binary-bytes N] [--sizes "idle=10000 ..."]
"""

import json
import statistics
import sys

PEERS = ["pushpin", "pushpin-raised", "websocketd"]
# What a server doing wscgi's work could at best cost on the machine of the run: the best HTTP
# reverse proxy making the same hop (echo), and a bare loop of writes (fan-out); and what the
# design card's shape alone costs (echo).
REFS = ["nginx-hop", "shape-floor", "write-ceiling", "write-ceiling1"]
COLUMNS = ["wscgi", "wscgi-before", "wscgi-tls"] + PEERS + ["ceiling"] + REFS
HEAD = {
    "wscgi": "wscgi",
    "wscgi-before": "wscgi before (--baseline)",
    "wscgi-tls": "wscgi wss://",
    "pushpin": "Pushpin",
    "pushpin-raised": "Pushpin (raised limits)",
    "websocketd": "websocketd",
    "ceiling": "backend ceiling (wrk)",
    "nginx-hop": "nginx hop",
    "shape-floor": "shape floor",
    "write-ceiling": "write ceiling (thread per core)",
    "write-ceiling1": "write ceiling (1 thread)",
}


def load(path):
    runs = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue
            runs.setdefault((r.get("key"), r.get("server")), []).append(r)
    return runs


def median(runs, key, server, field):
    vals = [r[field] for r in runs.get((key, server), [])
            if isinstance(r.get(field), (int, float))]
    return statistics.median(vals) if vals else None


def fmt(v, digits):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def cluster_table(runs, keys):
    """The cluster scenario: the same subscribers on one instance, then split over three."""
    for k in keys:
        if not (k and k.startswith("cluster")):
            continue
        n = int(k[len("cluster"):])
        one = {f: median(runs, k, "wscgi", f) for f in ("median_last_ms", "max_last_ms", "missing")}
        three = {f: median(runs, k, "wscgi-cluster", f) for f in one}
        print()
        print(f"Cluster, {n:,} subscribers: one wscgi, and three through Redis ({n // 3:,} each, "
              "publishes on the first):")
        print()
        print("| metric | one instance | three instances | three / one | target |")
        print("|---|---|---|---|---|")
        a, b = one["median_last_ms"], three["median_last_ms"]
        verdict = "" if a is None or b is None else (": **met**" if b <= 1.5 * a else ": **MISSED**")
        print(f"| publish → last delivery, median ms ↓ | {fmt(a, 2)} | {fmt(b, 2)} | {ratio(b, a)} "
              f"| ≤ 1.5×{verdict} |")
        a, b = one["max_last_ms"], three["max_last_ms"]
        print(f"| publish → last delivery, max ms ↓ | {fmt(a, 2)} | {fmt(b, 2)} | {ratio(b, a)} | |")
        print(f"| deliveries missing ↓ | {fmt(one['missing'], 0)} | {fmt(three['missing'], 0)} | | 0 |")


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    runs = load(args[0])
    binary = None
    if "--binary-bytes" in args:
        binary = int(args[args.index("--binary-bytes") + 1])
    reps = max((len(v) for v in runs.values()), default=0)

    keys = sorted({k for k, _ in runs}, key=lambda k: (k or ""))
    fanouts = sorted((k for k in keys if k and k.startswith("fanout")),
                     key=lambda k: int(k[len("fanout"):] or 0))
    def any_server(key, field):
        for s in COLUMNS:
            v = median(runs, key, s, field)
            if v is not None:
                return v
        return None

    idle_n = any_server("idle", "requested")
    echo_c = any_server("echo", "connections")
    echo_b = any_server("echo", "size")

    rows = []  # (label, key, field, digits, {server: value override}, target, better)

    def row(label, key, field, digits, target="", servers=None, extra=None, check=None):
        values = {}
        for s in COLUMNS:
            if servers is not None and s not in servers:
                values[s] = None
                continue
            values[s] = median(runs, key, s, field)
        if extra:
            values.update(extra)
        rows.append((label, values, digits, target, check))

    def le(limit):
        return lambda v: None if v.get("wscgi") is None else v["wscgi"] <= limit

    def ge(limit):
        return lambda v: None if v.get("wscgi") is None else v["wscgi"] >= limit

    def vs(ref, limit, at_most):
        """wscgi against a reference column: at most (or at least) limit times its value."""
        def check(v):
            w, r = v.get("wscgi"), v.get(ref)
            if w is None or r is None:
                return None
            return w <= limit * r if at_most else w >= limit * r
        return check

    def vs_write_ceiling(v):
        w = v.get("wscgi")
        refs = [v[r] for r in ("write-ceiling", "write-ceiling1") if v.get(r) is not None]
        if w is None or not refs:
            return None
        return w <= 1.1 * min(refs)

    n = f"{idle_n:,.0f}" if idle_n else "N"
    row(f"idle: connections alive (of {n})", "idle", "alive", 0, "all accepted",
        check=lambda v: None if v.get("wscgi") is None or not idle_n else v["wscgi"] >= idle_n)
    def idle_rss(v):
        w, t = v.get("wscgi"), v.get("wscgi-tls")
        if w is None and t is None:
            return None
        return (w is None or w <= 2.0) and (t is None or t <= 8.0)

    row("idle: RSS per connection, KiB ↓", "idle", "rss_per_conn_kib", 2,
        "≤ 2 KiB (ws://), ≤ 8 KiB (wss://)", check=idle_rss)
    row("idle: PSS per connection, KiB ↓", "idle", "pss_per_conn_kib", 2)
    row("idle: server RSS at 0 connections, KiB ↓", "idle", "rss_before_kib", 0,
        "≤ 3 MiB (ws://)", check=le(3072))
    c = f"C={echo_c:.0f}, {echo_b:.0f} B" if echo_c else ""
    ceiling = {"ceiling": median(runs, "ceiling", "ceiling", "requests_per_s"),
               "nginx-hop": median(runs, "echo", "nginx-hop", "requests_per_s")}
    row(f"echo ({c}): messages/s ↑", "echo", "msgs_per_s", 0,
        "≥ 0.8× nginx hop", extra=ceiling, check=vs("nginx-hop", 0.8, at_most=False))
    row("echo: latency p50, ms ↓", "echo", "p50_ms", 3,
        extra={"ceiling": median(runs, "ceiling", "ceiling", "p50_ms")})
    row("echo: latency p99, ms ↓", "echo", "p99_ms", 3,
        extra={"ceiling": median(runs, "ceiling", "ceiling", "p99_ms")})
    row("echo: server CPU per message, µs ↓", "echo", "server_cpu_us_per_msg", 1,
        "≤ 1.5× nginx hop", check=vs("nginx-hop", 1.5, at_most=True),
        extra={"nginx-hop": median(runs, "echo", "nginx-hop", "server_cpu_us_per_request")})
    # Latency added over a direct request to the backend, same concurrency.
    added = {}
    # Servers only: the references' own latency is not "added" to anything.
    servers = [s for s in COLUMNS if s != "ceiling" and s not in REFS]
    for s in servers:
        a, b = median(runs, "echo", s, "p99_ms"), median(runs, "ceiling", "ceiling", "p99_ms")
        added[s] = None if a is None or b is None else a - b
    added["ceiling"] = None
    rows.append((f"echo: p99 added over direct backend request ({c}), ms ↓", added, 3,
                 "≤ 1 ms", le(1.0)))
    if any(k == "echo1" for k in keys):
        added1 = {}
        for s in servers:
            a, b = median(runs, "echo1", s, "p99_ms"), median(runs, "ceiling1", "ceiling", "p99_ms")
            added1[s] = None if a is None or b is None else a - b
        added1["ceiling"] = None
        row("echo C=1: latency p99, ms ↓", "echo1", "p99_ms", 3,
            extra={"ceiling": median(runs, "ceiling1", "ceiling", "p99_ms")})
        rows.append(("echo C=1: p99 added over direct backend request, ms ↓", added1, 3,
                     "≤ 1 ms", le(1.0)))
        added50 = {}
        for s in servers:
            a, b = median(runs, "echo1", s, "p50_ms"), median(runs, "ceiling1", "ceiling", "p50_ms")
            added50[s] = None if a is None or b is None else a - b
        added50["ceiling"] = None
        rows.append(("echo C=1: p50 added over direct backend request, ms ↓", added50, 3, "",
                     None))
    fan_servers = ["wscgi", "wscgi-before", "pushpin", "pushpin-raised", "write-ceiling", "write-ceiling1"]
    for k in fanouts:
        size = int(k[len("fanout"):])
        row(f"fanout {size:,}: publish → last delivery, median ms ↓", k, "median_last_ms", 2,
            "≤ 1.1× the better write ceiling", servers=fan_servers, check=vs_write_ceiling)
        row(f"fanout {size:,}: publish → last delivery, max ms ↓", k, "max_last_ms", 2,
            servers=fan_servers)
        row(f"fanout {size:,}: frames/s ↑", k, "frames_per_s", 0, servers=fan_servers)
        row(f"fanout {size:,}: deliveries missing ↓", k, "missing", 0, servers=fan_servers)
    cc = any_server("connect", "concurrency")
    row(f"connect (C={cc or 0:.0f}): handshakes/s ↑", "connect", "handshakes_per_s", 0,
        "≥ 5,000/s (ws://)", servers=["wscgi", "wscgi-before", "wscgi-tls", "pushpin", "pushpin-raised",
                                      "websocketd"],
        check=ge(5000))
    row("connect: handshake p99, ms ↓", "connect", "p99_ms", 3,
        servers=["wscgi", "wscgi-before", "wscgi-tls", "pushpin", "pushpin-raised", "websocketd"])
    row("connect: server CPU per handshake, µs ↓", "connect", "server_cpu_us_per_handshake", 1,
        servers=["wscgi", "wscgi-before", "wscgi-tls", "pushpin", "pushpin-raised", "websocketd"])
    if binary is not None:
        rows.append(("stripped release binary, MiB ↓",
                     {"wscgi": binary / 1048576}, 2, "≤ 2 MiB", le(2.0)))

    present = [s for s in COLUMNS if any(v.get(s) is not None for _, v, _, _, _ in rows)]
    peers = [s for s in present if s in PEERS or s == "ceiling" or s in REFS
             or s == "wscgi-before"]
    head = ["metric"] + [HEAD[s] for s in present] + [f"wscgi/{HEAD[p]}" for p in peers] + ["target"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, values, digits, target, check in rows:
        if all(values.get(s) is None for s in present):
            continue  # scenario not run
        cells = [label] + [fmt(values.get(s), digits) for s in present]
        cells += [ratio(values.get("wscgi"), values.get(p)) for p in peers]
        verdict = check(values) if check else None
        if verdict is not None:
            target = f"{target}: **{'met' if verdict else 'MISSED'}**"
        cells.append(target)
        out.append("| " + " | ".join(cells) + " |")
    print("\n".join(out))
    print()
    print(f"Medians over {reps} repetition(s). ↑ higher is better, ↓ lower is better. "
          "Ratios are wscgi divided by the column's value.")
    # Failures worth knowing about.
    notes = []
    for (key, server), rs in sorted(runs.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        for r in rs:
            if not r.get("ok", True):
                notes.append(f"- {key} / {server}: not ok: {r.get('error') or 'see results'}"
                             f" (failures: {json.dumps(r.get('failures', {}))})")
                break
            if r.get("failures"):
                notes.append(f"- {key} / {server}: connection failures "
                             f"{json.dumps(r['failures'])}")
                break
    cluster_table(runs, keys)
    if notes:
        print()
        print("Notes:")
        print("\n".join(notes))
    deflate_table(runs)
    return 0


def deflate_table(runs):
    """wscgi with and without permessage-deflate (compare.sh's deflate scenario)."""
    sizes = sorted({int(k[len("dfl-echo"):].split("-")[0]) for k, _ in runs
                    if k and k.startswith("dfl-echo")})
    if not sizes:
        return
    rows = []
    for b in sizes:
        what = f"{b:,} B JSON"
        for label, kind, field, digits in [
            ("echo: bytes on the wire per message, client → server", "echo",
             "wire_up_bytes_per_msg", 0),
            ("echo: bytes on the wire per message, server → client", "echo",
             "wire_down_bytes_per_msg", 0),
            ("echo: server CPU per message, µs", "echo", "server_cpu_us_per_msg", 1),
            ("echo: messages/s", "echo", "msgs_per_s", 0),
            ("fan-out: bytes on the wire per delivery", "fan", "wire_bytes_per_delivery", 0),
            ("fan-out: server CPU per delivery, µs", "fan", "server_cpu_us_per_delivery", 2),
            ("fan-out: publish → last delivery, median ms", "fan", "median_last_ms", 2),
        ]:
            off = median(runs, f"dfl-{kind}{b}-off", "wscgi", field)
            on = median(runs, f"dfl-{kind}{b}-on", "wscgi", field)
            rows.append((f"{what}, {label}", fmt(off, digits), fmt(on, digits), ratio(on, off)))
    rss_off = median(runs, "idle", "wscgi", "rss_per_conn_kib")
    rss_on = median(runs, "idle-deflate", "wscgi", "rss_per_conn_kib")
    rows.append(("idle: RSS per connection, KiB", fmt(rss_off, 2), fmt(rss_on, 2),
                 ratio(rss_on, rss_off)))
    print()
    print("| wscgi, permessage-deflate | off | on | on/off |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    sys.exit(main())
