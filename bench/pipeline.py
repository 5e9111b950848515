"""Benchmark the event pipeline: backlog crediting rate, webhook → invoice.paid latency,
and API call → its event on the Redis stream.

    .venv/bin/python bench/pipeline.py [--backlog 3000] [--rate 200] [--seconds 10]
        [--concurrency 2] [--api-rate 50] [--api-seconds 10] [--deliveries]

Against a scratch database (`tally_bench_pipeline`, recreated), a private
redis-server, and the Procfile's web, worker and beat lines (devtools.processes.Stack;
--concurrency is WORKER_CONCURRENCY, --pool is added to the worker line):

1. Backlog: N open invoices with attached PaymentIntents; their N signed
   payment_intent.succeeded webhooks are stored while no worker runs; then the
   worker starts. Rate = N / (last - first processed_at) of the inbound events,
   i.e. crediting throughput, worker start-up excluded.
2. Latency: with the worker running, webhooks for fresh attached invoices are sent
   over HTTP at --rate per second. A trigger NOTIFYs when an invoice.paid event is
   inserted; PostgreSQL delivers a notification only when its transaction commits,
   so (notification received - request sent) is webhook -> invoice.paid committed.
   With --deliveries, a loopback receiver is subscribed to invoice.paid and the
   Procfile's deliveries line sends them; it also reports webhook -> invoice.paid
   delivered, and the CPU time each worker spent per webhook.
3. API → stream: draft invoices are finalized over HTTP at --api-rate per second; a
   reader blocks on the Redis stream (XREAD), so (invoice.finalized entry read -
   request sent) is how long an event caused by an API call takes to be published.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/pipeline.py` as well as `-m bench.pipeline`

from bench.common import (  # noqa: E402
    BENCH_SECRET,
    credit_stored,
    drained,
    finalize_paced,
    notify_when_paid,
    run_env,
    subscribe,
)
from bench.meters import cpu_seconds  # noqa: E402
from bench.rows import EVERYTHING, clone, pending_successes, success_body, templates  # noqa: E402
from devtools.processes import Stack  # noqa: E402
from devtools.receiver import Receiver  # noqa: E402
from devtools.servers import RedisServer, scratch_database  # noqa: E402
from devtools.stats import summary  # noqa: E402
from devtools.stripe_events import signed_webhook, stripe_event  # noqa: E402

DB_NAME = "tally_bench_pipeline"


def attached_invoices(dsn: str, template: dict[str, str], tag: str, count: int) -> list[dict]:
    """`count` open invoices each with an attached PaymentIntent, cloned from `template`
    (bench/rows.py): [{"invoice": in_<tag><k>, "pi": its PaymentIntent}]."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        clone(conn, template, tag, count, EVERYTHING)
    return [
        {"invoice": f"in_{tag}{k}", "pi": {"id": f"pi_{tag}{k}", "amount": 1299,
                                            "currency": "usd", "customer": f"cus_{tag}{k}"}}
        for k in range(1, count + 1)
    ]  # fmt: skip


def signed(pi: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """payment_intent.succeeded for `pi`, signed: body and headers."""
    return signed_webhook(stripe_event(pi, "payment_intent.succeeded"), BENCH_SECRET)


def api_to_stream(
    port: int, redis_url: str, drafts: list[str], rate: float
) -> tuple[list[float], list[float], list[float]]:
    """Finalize `drafts` over HTTP at `rate`/s; ms from each request sent to its
    response, to its invoice.finalized read from the stream, and from the response to
    that (negative when the event was on the stream before the client read the answer)."""
    import redis

    from service.adapters.stream import STREAM_KEY

    seen: dict[str, float] = {}
    client = redis.Redis.from_url(redis_url)
    last = client.xrevrange(STREAM_KEY, count=1)
    cursor = last[0][0] if last else b"0-0"
    done = threading.Event()

    def read() -> None:
        nonlocal cursor
        while not done.is_set() or len(seen) < len(drafts):
            for _, entries in client.xread({STREAM_KEY: cursor}, block=200) or []:
                for entry_id, fields in entries:
                    cursor = entry_id
                    if fields[b"type"] == b"invoice.finalized":
                        obj = json.loads(fields[b"payload"])["data"]["object"]
                        seen.setdefault(obj["id"], time.time())
            if done.is_set() and time.perf_counter() > deadline:
                return

    deadline = float("inf")
    reader = threading.Thread(target=read)
    reader.start()
    times = finalize_paced(f"http://127.0.0.1:{port}", drafts, rate, threads=4)
    deadline = time.perf_counter() + 15
    done.set()
    reader.join()
    return (
        [(answered - sent) * 1000 for sent, answered in times.values()],
        [(seen[i] - times[i][0]) * 1000 for i in drafts if i in seen],
        [(seen[i] - times[i][1]) * 1000 for i in drafts if i in seen],
    )


def line(name: str, values: list[float]) -> str:
    """`name: p50 … ms  p99 … ms  max … ms`, right-aligned as the report prints it."""
    s = summary(values)
    return f"{name}: p50 {s['p50']:6.1f} ms  p99 {s['p99']:6.1f} ms  max {s['max']:6.1f} ms"


def spread(values: list[float]) -> str:
    s = summary(values)
    return (
        f"p50 {s['p50']:.1f} ms, p90 {s['p90']:.1f} ms, p99 {s['p99']:.1f} ms, "
        f"max {s['max']:.1f} ms"
    )


def backlog(template: dict[str, str], stack: Stack, dsn: str, redis_url: str, count: int,
            concurrency: int) -> list[str]:  # fmt: skip
    """`count` successes stored (as the intake stores them) while no worker runs, then
    the worker starts: credits/s from the first processed_at to the last."""
    started = time.monotonic()
    cases = attached_invoices(dsn, template, "B", count)
    print(f"setup: {len(cases)} attached invoices in {time.monotonic() - started:.1f}s")
    with psycopg.connect(dsn, autocommit=True) as conn:
        pending_successes(conn, "B", count, success_body(template))
        # As python -m bench does: no autovacuum of the fresh rows mid-run.
        conn.execute("VACUUM ANALYZE")
    n, span = credit_stored(stack, dsn, redis_url, 300)
    with psycopg.connect(dsn, autocommit=True) as conn:
        paid = conn.execute("SELECT count(*) FROM invoices WHERE status = 'paid'").fetchone()
    stack.stop("worker")
    return [
        f"backlog: {n} success events credited in {span:.2f}s = {n / span:.0f} events/s "
        f"({paid[0] if paid else 0} invoices paid; worker --concurrency {concurrency})"
    ]


def latency(template: dict[str, str], stack: Stack, base: str, dsn: str, rate: float,
            seconds: float, deliveries: bool) -> list[str]:  # fmt: skip
    """Webhooks for fresh attached invoices at `rate`/s for `seconds`: webhook ->
    invoice.paid committed (a trigger's NOTIFY), its stages, and with `deliveries` the
    delivery to a loopback receiver and the CPU per webhook of each worker."""
    count, warmup = int(rate * seconds), 200
    started = time.monotonic()
    cases = attached_invoices(dsn, template, "L", count + warmup)
    print(f"setup: {len(cases)} attached invoices in {time.monotonic() - started:.1f}s")
    receiver = Receiver()
    if deliveries:
        subscribe(base, receiver.url, "invoice.paid")
        stack.start("deliveries", "deliveries")
    port = int(base.rsplit(":", 1)[1])
    # Warm up (worker start, pools, prepared statements) until it credits at once.
    for case in cases[:warmup]:
        body, headers = signed(case["pi"])
        http = HTTPConnection("127.0.0.1", port, timeout=10)
        http.request("POST", "/webhooks/stripe", body=body, headers=headers)
        http.getresponse().read()
        time.sleep(1 / rate)
    drained(dsn, 120)
    bodies = [(c["invoice"], signed(c["pi"])[0]) for c in cases[warmup:]]
    event_of = {invoice_id: json.loads(body)["id"] for invoice_id, body in bodies}
    sent: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    committed: dict[str, float] = {}
    listening = threading.Event()

    def listen() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("LISTEN bench_paid")
            listening.set()
            for note in conn.notifies(timeout=seconds + 30, stop_after=count):
                committed[note.payload] = time.perf_counter()

    listener = threading.Thread(target=listen)
    listener.start()
    listening.wait(10)
    local = threading.local()

    def fire(item: tuple[int, tuple[str, bytes]]) -> int:
        # http.client, not requests: the sender shares the two cores with what
        # it measures, and requests cost it three times the CPU per webhook.
        k, (invoice_id, body) = item
        delay = t0 + k / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        http = getattr(local, "http", None) or HTTPConnection("127.0.0.1", port, timeout=10)
        local.http = http
        headers = signed_webhook(body, BENCH_SECRET)[1]
        sent[invoice_id] = time.perf_counter()
        sent_wall[invoice_id] = time.time()
        http.request("POST", "/webhooks/stripe", body=body, headers=headers)
        response = http.getresponse()
        response.read()
        return response.status

    workers = [r for r in ("worker", "deliveries") if r in stack.procs]
    cpu_before = {name: cpu_seconds(stack.procs[name].pid) for name in workers}
    t0 = time.perf_counter() + 0.2
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(fire, enumerate(bodies)))
    actual_rate = count / (max(sent.values()) - min(sent.values()))
    listener.join(seconds + 40)
    more = []  # delivered, CPU: reported after the committed figures
    if deliveries:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            i in receiver.arrivals("invoice.paid") for i in sent
        ):
            time.sleep(0.1)
        arrived = receiver.arrivals("invoice.paid")
        delivered = [(arrived[i] - sent_wall[i]) * 1000 for i in sent if i in arrived]
        more.append(
            f"  webhook -> invoice.paid delivered ({len(delivered)}/{count}): {spread(delivered)}"
        )
    receiver.stop()
    for name, before in cpu_before.items():
        used = cpu_seconds(stack.procs[name].pid) - before
        more.append(f"  CPU of {name}: {used * 1000 / count:.2f} ms per webhook")
    latencies = [(committed[i] - sent[i]) * 1000 for i in sent if i in committed]
    # Where the time goes: sent -> stored (intake) -> claimed (worker) -> committed.
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id, extract(epoch FROM received_at) AS received,"
            " extract(epoch FROM processed_at) AS claimed FROM inbound_events"
            " WHERE id = ANY(%s)",
            (list(event_of.values()),),
        ).fetchall()
    stamps = {r[0]: (float(r[1]), float(r[2] or 0)) for r in rows}
    stages: dict[str, list[float]] = {"stored": [], "claimed": [], "done": []}
    for invoice_id in committed:
        received, claimed = stamps[event_of[invoice_id]]
        done_wall = sent_wall[invoice_id] + committed[invoice_id] - sent[invoice_id]
        stages["stored"].append((received - sent_wall[invoice_id]) * 1000)
        stages["claimed"].append((claimed - received) * 1000)
        stages["done"].append((done_wall - claimed) * 1000)
    return [
        f"latency at {actual_rate:.0f} webhooks/s over {seconds:.0f}s "
        f"({len(latencies)}/{count} paid, {statuses.count(200)} x 200): "
        f"webhook -> invoice.paid committed {spread(latencies)}",
        *(line(f"  {name:>8}", values) for name, values in stages.items()),
        *more,
    ]


def api(template: dict[str, str], dsn: str, port: int, redis_url: str, rate: float,
        seconds: float) -> list[str]:  # fmt: skip
    """Finalize calls at `rate`/s: call sent -> invoice.finalized read from the stream."""
    count, warmup = int(rate * seconds), 50
    with psycopg.connect(dsn, autocommit=True) as conn:
        clone(conn, template, "D", count + warmup, EVERYTHING[:3])
    drafts = [f"in_D{k}" for k in range(1, count + warmup + 1)]
    api_to_stream(port, redis_url, drafts[:warmup], rate)
    answers, latencies, after = api_to_stream(port, redis_url, drafts[warmup:], rate)
    return [
        f"API -> stream at {rate:.0f} finalize calls/s over {seconds:.0f}s "
        f"({len(latencies)}/{count} read from the stream): "
        f"call sent -> invoice.finalized on the stream {spread(latencies)}",
        line(f"  {'response':>9}", answers),
        line(f"  {'-> stream':>9}", after),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backlog", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--pool", default="prefork", choices=("prefork", "threads", "solo"))
    parser.add_argument("--skip-backlog", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--api-rate", type=float, default=50)
    parser.add_argument("--api-seconds", type=float, default=10)
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument(
        "--deliveries",
        action="store_true",
        help="deliver invoice.paid to a loopback receiver from the deliveries line",
    )
    args = parser.parse_args()

    run_dir = Path(tempfile.mkdtemp(prefix="tally-bench-pipeline-"))  # kept: the logs
    report: list[str] = []
    with RedisServer() as redis_server, scratch_database(DB_NAME) as dsn:
        notify_when_paid(dsn)
        redis_url = redis_server.url
        made = templates(dsn, redis_url, attached={"attach": True},
                         draft={"attach": False, "finalize": False})  # fmt: skip
        stack = Stack(run_env(dsn, redis_url, WORKER_CONCURRENCY=str(args.concurrency)), run_dir)
        if args.pool != "prefork":
            pool = f"--pool {args.pool} --concurrency"
            stack.procfile.add(
                "worker", stack.procfile.lines["worker"].replace("--concurrency", pool)
            )
        try:
            if not args.skip_backlog:
                report += backlog(
                    made["attached"], stack, dsn, redis_url, args.backlog, args.concurrency
                )
            if not (args.skip_latency and args.skip_api):
                base = stack.start_web("web")
                stack.start("worker", "worker")
                stack.start("beat", "beat")
            if not args.skip_latency:
                report += latency(
                    made["attached"], stack, base, dsn, args.rate, args.seconds, args.deliveries
                )
            if not args.skip_api:
                port = int(base.rsplit(":", 1)[1])
                report += api(made["draft"], dsn, port, redis_url, args.api_rate, args.api_seconds)
        finally:
            stack.stop_all()
    print(f"\n{os.cpu_count()} cores; worker log: {run_dir / 'worker.log'}")
    for text in report:
        print(text)


if __name__ == "__main__":
    main()
