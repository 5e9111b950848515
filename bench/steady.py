"""Steady-rate end to end: signed webhooks at fractions of the same run's bare-intake
reference, through the Procfile's processes, to one loopback endpoint.

    .venv/bin/python -m bench.steady [--quick] [--fractions 0.1,0.2,0.25,0.3] [--seconds 20]

1. The reference (bench/intake.py's bare intake: HMAC, INSERT, LPUSH) runs under the
   Procfile's web line and is flooded over 8 kept-alive connections: its req/s is the
   run's yardstick. It is then paced at the middle fraction to measure its CPU per
   request, the floor a webhook's CPU budget is compared with.
2. The web, worker, deliveries and beat lines start; a receiver subscribed to
   invoice.paid listens on loopback. For each fraction f, webhooks for attached
   invoices are sent at f x the reference's req/s for `seconds`. Each webhook's stages,
   wall clock, from what the system already records:

       sent       the sender, just before the request
       stored     inbound_events.received_at (the intake's transaction)
       claimed    inbound_events.processed_at: now() of the batch's transaction, which
                  starts when its claim has committed
       committed  a trigger's NOTIFY on invoice.paid, delivered by PostgreSQL at commit
       published  the invoice.paid entry's id on the Redis stream (ms at XADD); the
                  drain dispatches deliveries right after it publishes
       taken      the deliveries task claimed it: webhook_deliveries.next_attempt_at
                  less the hold its claim set (operations/deliver.py)
       posted     the receiver read the POST

   and for each fraction: committed and delivered p50/p99/max, the longest silence (the
   longest gap between two consecutive commits) with every silence over 1 s, whether it
   kept up (every webhook delivered, the asked rate reached, and the last second's
   webhooks delivered within a second: a growing backlog shows there), and the CPU time
   per webhook of each process: web, worker, deliveries, beat, the private redis-server,
   the PostgreSQL backends serving each of them (told apart by application_name, which
   devtools.processes.Stack sets per process), and, apart, the sender and the receiver.

The knee is the highest fraction that kept up with delivered p99 <= 250 ms. Every load
loop is bounded; everything listens on 127.0.0.1. `python -m bench` runs the same
phase with its intake reference. Writes bench/results/steady.json and steady.png.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis

from bench.common import (
    BENCH_SECRET,
    drained,
    git_commit,
    in_threads,
    log,
    notify_when_paid,
    run_env,
    subscribe,
)
from bench.meters import (
    BENCH_APP,
    CpuMeter,
    WaitSampler,
    delivery_hold,
    pg_backends,
    process_tree,
    stage_stamps,
    task_counts,
    transactions,
)
from bench.rows import EVERYTHING, clone, templates
from bench.steady_figures import (
    PG_ROLES,
    details,
    knee,
    log_row,
    plot,
    row_figures,
    steady_table,
)
from devtools.processes import Stack
from devtools.procfile import ROOT
from devtools.receiver import ReceiverProcess
from devtools.servers import RedisServer, scratch_database
from devtools.stats import percentile
from devtools.stripe_events import signed_webhook, stripe_event

# 0.25 resolves the knee at the target (>= 0.25x).
FRACTIONS = (0.1, 0.2, 0.25, 0.3)
CONNECTIONS = 8
# Webhooks paid and delivered before the fractions, and before the ANALYZE that gives
# the planner a running system's statistics. With a few hundred deliveries the table is
# four pages, on which counting an event's pending deliveries (event_rows) is planned
# as a sequential scan, and the plan, prepared once per connection, stayed while the
# table grew: every event published or delivered then read all of it (0.37 ms of
# PostgreSQL CPU per credit, in process at batches of 10, until autovacuum's next
# ANALYZE). A running system holds weeks of deliveries; a young one pays this for a
# minute, until autovacuum analyzes the tables it is filling.
WARM_WEBHOOKS = 2000


# -- the sender: a process of its own, so that its CPU is apart -----------------------------


def send(url: str, bodies: list[tuple[str, bytes, str]], rate: float, seconds: float) -> dict:
    """POST `bodies` ((key, body, signature)) to `url` over CONNECTIONS kept-alive
    connections: paced at `rate`/s, or, with rate 0, as fast as answers come for
    `seconds`. Returns when each was sent (wall clock), the statuses, the req/s reached
    and this process's CPU seconds while sending."""
    parts = urlsplit(url)
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))
    sent: dict[str, float] = {}
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    start = time.perf_counter() + 0.1
    deadline = start + seconds if not rate else float("inf")

    def loop() -> None:
        http = HTTPConnection(parts.hostname, parts.port, timeout=10)
        while True:
            with lock:
                k = next(cursor, None)
            if k is None:
                return
            key, body, signature = bodies[k]
            if rate:
                delay = start + k / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            elif time.perf_counter() > deadline:
                return
            at, began = time.time(), time.perf_counter()
            http.request(
                "POST", parts.path, body=body,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            )  # fmt: skip
            response = http.getresponse()
            response.read()
            ended = time.perf_counter()
            with lock:
                sent[key] = at
                statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append((ended - began) * 1000)

    cpu_before = time.process_time()
    in_threads(loop, CONNECTIONS)
    cpu = time.process_time() - cpu_before
    span = max(sent.values()) - min(sent.values()) if len(sent) > 1 else 0.0
    return {
        "sent": sent,
        "statuses": statuses,
        "rps": (len(sent) - 1) / span if span else 0.0,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "cpu": cpu,
    }


def signed_bodies(tag: str, first: int, count: int, secret: str) -> list[tuple[str, bytes, str]]:
    """payment_intent.succeeded for pi_<tag><k>, k = first..first+count-1, keyed by the
    invoice in_<tag><k> (bench/rows.py's clones); a random id for tag ''."""
    out = []
    for k in range(first, first + count):
        suffix = f"{tag}{k}" if tag else uuid.uuid4().hex[:20]
        pi = {"id": f"pi_{suffix}", "amount": 1299, "currency": "usd", "customer": f"cus_{suffix}"}
        body, headers = signed_webhook(stripe_event(pi, "payment_intent.succeeded"), secret)
        out.append((f"in_{suffix}", body, headers["Stripe-Signature"]))
    return out


def run_sender(url: str, tag: str, first: int, count: int, rate: float, seconds: float) -> dict:
    """The sender in a process of its own; its JSON answer (see send)."""
    command = [sys.executable, "-m", "bench.steady", "send", url, "--tag", tag,
               "--first", str(first), "--count", str(count), "--rate", str(rate),
               "--seconds", str(seconds)]  # fmt: skip
    out = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=True,
        timeout=count / (rate or count / max(seconds, 1)) + 120,
    )  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


# -- the phases ---------------------------------------------------------------------------


def reference_phase(stack: Any, dsn: str, redis_url: str, fraction: float, seconds: float,
                    flood_s: float) -> dict[str, Any]:  # fmt: skip
    """The bare intake under the web line: its req/s flooded (the yardstick), then its
    CPU per request paced at `fraction` of that. Its rows and wake-ups are purged."""
    base = stack.start_web("reference", "'bench.intake:reference_app()'")
    url = f"{base}/webhooks/stripe"
    meter = CpuMeter(
        {
            "web": lambda: process_tree(stack.procs["reference"].pid),
            "redis": lambda: [redis_pid(redis_url)],
            "pg web": pg_backends(dsn, "reference"),
        }
    )
    try:
        run_sender(url, "", 0, 4000, 0, 2)  # warm-up
        flood = run_sender(url, "", 0, int(3000 * flood_s), 0, flood_s)
        rate = fraction * flood["rps"]
        count = int(rate * seconds)
        meter.start()
        paced = run_sender(url, "", 0, count, rate, seconds)
        cpu = meter.stop()
    finally:
        stack.stop("reference")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM inbound_events")
    redis.Redis.from_url(redis_url).flushall()
    per_request = {role: used * 1000 / count for role, used in cpu.items()}
    per_request["sender"] = paced["cpu"] * 1000 / count
    return {
        "rps": flood["rps"],
        "p50": flood["p50"],
        "p99": flood["p99"],
        "paced_rate": paced["rps"],
        "cpu_ms": per_request,
        "non_2xx": sum(n for s, n in paced["statuses"].items() if not str(s).startswith("2")),
    }


def redis_pid(redis_url: str) -> int:
    return int(redis.Redis.from_url(redis_url).info("server")["process_id"])


def steady_phase(stack: Any, dsn: str, redis_url: str, base: str, reference_rps: float,
                 fractions: tuple[float, ...], seconds: float, logs: Path,
                 warm: int = WARM_WEBHOOKS) -> dict[str, Any]:  # fmt: skip
    """Each fraction of `reference_rps` in turn for `seconds`, against the running web,
    worker, deliveries and beat; returns each fraction's figures and series."""
    rates = [f * reference_rps for f in fractions]
    counts = [int(r * seconds) for r in rates]
    template = templates(dsn, redis_url, attached={"attach": True})["attached"]
    with psycopg.connect(dsn, autocommit=True, application_name=BENCH_APP) as conn:
        clone(conn, template, "S", warm + sum(counts), EVERYTHING)
        conn.execute("VACUUM ANALYZE")
    notify_when_paid(dsn)
    receiver = ReceiverProcess(logs / "receiver.log")
    subscribe(base, receiver.url, "invoice.paid")
    committed: dict[str, float] = {}
    stop_listening = threading.Event()
    listening = threading.Event()

    def listen() -> None:
        with psycopg.connect(dsn, autocommit=True, application_name=BENCH_APP) as conn:
            conn.execute("LISTEN bench_paid")
            listening.set()
            while not stop_listening.is_set():
                for note in conn.notifies(timeout=0.5):
                    committed.setdefault(note.payload, time.time())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    listening.wait(10)
    roles = {
        name: (lambda name=name: process_tree(stack.procs[name].pid))
        for name in ("web", "worker", "deliveries", "beat")
    }
    roles["redis"] = lambda: [redis_pid(redis_url)]
    for name in PG_ROLES:
        roles[f"pg {name}"] = pg_backends(dsn, name)
    roles["receiver"] = lambda: [receiver.proc.pid]
    meter = CpuMeter(roles)
    url = f"{base}/webhooks/stripe"
    hold = delivery_hold()
    rows: list[dict[str, Any]] = []
    try:
        run_sender(url, "S", 1, warm, rates[len(rates) // 2], warm / rates[len(rates) // 2])
        _settle(dsn, receiver, [f"in_S{k}" for k in range(1, warm + 1)])
        # Statistics as a running system has them: the tables' last ANALYZE saw no
        # delivery, event or processed webhook, and plans made on that (a sequential scan
        # of "tiny" webhook_deliveries per event published) grow with the run.
        with psycopg.connect(dsn, autocommit=True, application_name=BENCH_APP) as conn:
            conn.execute("ANALYZE")
        first = warm + 1
        for fraction, rate, count in zip(fractions, rates, counts, strict=True):
            keys = [f"in_S{k}" for k in range(first, first + count)]
            tasks_before, xacts_before = task_counts(logs), transactions(dsn)
            meter.start()
            with WaitSampler(dsn) as waits:
                sender = run_sender(url, "S", first, count, rate, seconds)
                arrived = _settle(dsn, receiver, keys)
            cpu = meter.stop()
            tasks = {name: n - tasks_before[name] for name, n in task_counts(logs).items()}
            xacts = transactions(dsn) - xacts_before
            first += count
            stamps = stage_stamps(dsn, redis_url, sender["sent"], committed, arrived, keys, hold)
            row = row_figures(fraction, rate, sender, stamps)
            row["cpu_ms"] = {role: used * 1000 / count for role, used in cpu.items()}
            row["cpu_ms"]["sender"] = sender["cpu"] * 1000 / count
            row["pg_worker_states"] = waits.counts
            row["run_queue_ms"] = {role: w * 1000 / count for role, w in meter.waited.items()}
            row["per_webhook"] = {
                **{f"{name} tasks": n / count for name, n in tasks.items()},
                "crediting batches": row.pop("batches") / count,
                "PostgreSQL transactions": xacts / count,
            }
            rows.append(row)
            log_row(row)
    finally:
        stop_listening.set()
        listener.join(5)
        receiver.stop()
    return {"reference_rps": reference_rps, "seconds": seconds, "rows": rows, "knee": knee(rows)}


def _settle(dsn: str, receiver: ReceiverProcess, keys: list[str],
            timeout: float = 60) -> dict[str, float]:  # fmt: skip
    """Wait (bounded) until every one of `keys` was delivered and nothing is pending,
    unpublished or undelivered; the arrivals."""
    drained(dsn, timeout, deliveries=True, app=BENCH_APP)
    arrived = receiver.arrivals("invoice.paid")
    missing = sum(key not in arrived for key in keys)
    if missing:
        log(f"warning: {missing} of {len(keys)} not delivered within {timeout:.0f}s")
    return arrived


# -- standalone ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    sender = sub.add_parser("send")
    sender.add_argument("url")
    sender.add_argument("--tag", default="")
    sender.add_argument("--first", type=int, default=1)
    sender.add_argument("--count", type=int, required=True)
    sender.add_argument("--rate", type=float, default=0)
    sender.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--quick", action="store_true", help="8 s per fraction (else 20 s)")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--fractions", default=",".join(map(str, FRACTIONS)))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.command == "send":
        bodies = signed_bodies(args.tag, args.first, args.count, BENCH_SECRET)
        print(json.dumps(send(args.url, bodies, args.rate, args.seconds)))
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    fractions = tuple(float(f) for f in args.fractions.split(","))
    seconds = args.seconds or (8 if args.quick else 20)
    load = os.getloadavg()[0]
    log(f"python -m bench.steady: {os.cpu_count()} cores, load average {load:.2f}")
    with (
        tempfile.TemporaryDirectory(prefix="tally-steady-") as tmpdir,
        RedisServer() as redis_server,
        scratch_database("tally_bench_steady") as dsn,
    ):
        tmp, redis_url = Path(tmpdir), redis_server.url
        stack = Stack(run_env(dsn, redis_url), tmp)
        try:
            middle = fractions[len(fractions) // 2]
            reference = reference_phase(stack, dsn, redis_url, middle, seconds, 4 if args.quick
                                        else 8)  # fmt: skip
            log(f"reference: {reference['rps']:.0f} req/s, p99 {reference['p99']:.1f} ms")
            base = stack.start_web("web")
            for name in ("worker", "deliveries", "beat"):
                stack.start(name, name)
            result = steady_phase(
                stack, dsn, redis_url, base, reference["rps"], fractions, seconds, tmp
            )
        finally:
            stack.stop_all()
    result["reference"] = reference
    header = (
        f"python -m bench.steady at {git_commit()}, {os.cpu_count()} cores, load average "
        f"{load:.2f} at start, {os.getloadavg()[0]:.2f} at end"
    )
    print(f"\n{header}\n\n{steady_table(result, reference)}\n")
    print(details(result["rows"]))
    args.out.mkdir(parents=True, exist_ok=True)
    plot(result, args.out / "steady.png", header)
    (args.out / "steady.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    log(f"wrote {args.out / 'steady.json'} and {args.out / 'steady.png'}")


if __name__ == "__main__":
    main()
