"""`python -m bench [--quick]`: every benchmark in one run, one table, one JSON, one PNG.

Each figure is measured in the same run as its ceiling:

- intake (POST /webhooks/stripe) vs a minimal reference intake (HMAC, INSERT, LPUSH;
  bench/intake.py) under the same gunicorn line, same load (wrk if installed);
- backlog crediting by the real worker vs pgbench running Tally's own crediting
  transaction (bench/crediting.py) on a scratch database, as many clients as the
  worker has processes;
- attach_payment vs a Flask "hello" (bench/attach.py) under the same gunicorn line,
  same client concurrency;
- webhook -> invoice.paid committed (PostgreSQL NOTIFY at commit) and delivered (a
  loopback receiver got the signed POST) at a fixed rate (200/s for 60 s);
- API call (finalize) -> invoice.finalized on the Redis stream;
- peak RSS of the web, worker and deliveries processes (VmHWM from /proc).

The stack is started from the Procfile lines (bench/stack.py) against a private
redis-server and scratch databases that are dropped at the end; everything listens
on 127.0.0.1. Writes bench/results/latest.json and bench/results/latency.png.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests

from bench.attach import post_all
from bench.common import BENCH_KEY, BENCH_SECRET, Receiver, notify_when_paid
from bench.intake import run_python_load, run_wrk, signed_requests
from bench.report import Figure, Target, percentile, table
from bench.stack import (
    ROOT,
    RssSampler,
    Stack,
    clone,
    make_template,
    pending_successes,
    private_redis,
    scratch_database,
)

RESULTS = ROOT / "bench" / "results"

PROFILES: dict[str, dict[str, Any]] = {
    # ~1-2 min: a smoke test of the whole command.
    "quick": {
        "intake_s": 4,
        "attach": 400,
        "backlog": 2000,
        "rate": 200,
        "e2e_s": 10,
        "api_rate": 50,
        "api_s": 4,
    },
    # ~5-8 min on the 2-core machine.
    "full": {
        "intake_s": 15,
        "attach": 3000,
        "backlog": 10000,
        "rate": 200,
        "e2e_s": 60,
        "api_rate": 50,
        "api_s": 20,
    },
}
CONNECTIONS = 8  # client concurrency of intake and attach (and their ceilings)
WARMUP_S = 2


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


# -- phases -----------------------------------------------------------------------------


def intake_phase(stack: Stack, dsn: str, redis_url: str, seconds: int, tmp: Path) -> dict[str, Any]:
    """Tally's intake and the reference, one after the other, under the same gunicorn line
    and the same load; no worker runs (the intake alone is measured). Rows and wake-ups
    are purged afterwards."""
    import shutil

    use_wrk = shutil.which("wrk") is not None
    out: dict[str, Any] = {"load": "wrk" if use_wrk else "python threads", "seconds": seconds}
    for role, app in (("reference", "'bench.intake:reference_app()'"), ("web", None)):
        base = stack.start_web(role, app) if app else stack.start_web(role)
        warm = signed_requests(3000 * WARMUP_S)
        reqs = signed_requests(2500 * seconds)
        warm_path, path = tmp / f"{role}-warm.tsv", tmp / f"{role}.tsv"
        warm_path.write_text("".join(f"{s}\t{b}\n" for s, b in warm))
        path.write_text("".join(f"{s}\t{b}\n" for s, b in reqs))
        try:
            if use_wrk:
                run_wrk(base, warm_path, WARMUP_S, CONNECTIONS)
            else:
                run_python_load(base, warm, WARMUP_S, CONNECTIONS)
            with psycopg.connect(dsn, autocommit=True) as conn:
                before = conn.execute("SELECT count(*) FROM inbound_events").fetchone()[0]  # type: ignore[index]
            result = (
                run_wrk(base, path, seconds, CONNECTIONS)
                if use_wrk
                else run_python_load(base, reqs, seconds, CONNECTIONS)
            )
            with psycopg.connect(dsn, autocommit=True) as conn:
                after = conn.execute("SELECT count(*) FROM inbound_events").fetchone()[0]  # type: ignore[index]
            result["rows"] = after - before
            out[role] = result
            log(
                f"intake {role}: {result['rps']:.0f}/s p50 {result['p50']:.1f} ms "
                f"p99 {result['p99']:.1f} ms, {result['errors']:.0f} non-2xx, {after - before} rows"
            )
        finally:
            stack.stop(role)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM inbound_events")
    redis.Redis.from_url(redis_url).flushall()
    return out


def backlog_phase(stack: Stack, dsn: str, redis_url: str, count: int, body: str) -> dict[str, Any]:
    """`count` stored successes, then the worker starts and one wake-up is sent, as the
    intake sends it: credits/s from first to last processed_at (worker start-up
    excluded). The worker stays up."""
    from service.config import Settings
    from service.domain.signatures import WebhookSecrets
    from service.queue import make_task_queue

    with psycopg.connect(dsn, autocommit=True) as conn:
        pending_successes(conn, "B", count, body)
        conn.execute("VACUUM ANALYZE")
    stack.start("worker", "worker")
    settings = Settings(
        database_url=dsn,
        redis_url=redis_url,
        api_keys=(BENCH_KEY,),
        webhook_secrets=WebhookSecrets(test=(BENCH_SECRET,)),
    )
    assert make_task_queue(settings, redis.Redis.from_url(redis_url)).wake_drain(force=True)
    deadline = time.monotonic() + 600
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM inbound_events WHERE status = 'pending'"
            ).fetchone()
            if row and row[0] == 0:
                break
            time.sleep(0.2)
        first, last, n = conn.execute(
            "SELECT min(processed_at), max(processed_at), count(*) FROM inbound_events"
            " WHERE status = 'processed'"
        ).fetchone()  # type: ignore[misc]
        paid = conn.execute(
            "SELECT count(*) FROM invoices WHERE status = 'paid' AND id LIKE 'in\\_B%'"
        ).fetchone()[0]  # type: ignore[index]
        # The events one credit writes, for pgbench's copy of the transaction.
        inpay = conn.execute(
            "SELECT seq FROM events WHERE type = 'invoice_payment.paid' ORDER BY seq LIMIT 1"
        ).fetchone()[0]  # type: ignore[index]
        samples = conn.execute(
            "SELECT type, data::text FROM events WHERE seq >= %s ORDER BY seq LIMIT 4", (inpay,)
        ).fetchall()
    span = (last - first).total_seconds()
    result = {
        "credited": n,
        "paid": paid,
        "seconds": span,
        "credits_per_s": n / span,
        "event_types": [t for t, _ in samples],
    }
    log(f"backlog: {n} credited in {span:.2f}s = {n / span:.0f}/s ({paid} invoices paid)")
    return {**result, "samples": samples}


def pgbench_phase(
    pg_dsn: str, redis_url: str, count: int, samples: list[Any], tmp: Path, clients: int
) -> dict[str, Any]:
    from bench import crediting
    from service.app import create_app
    from service.config import Settings
    from service.domain.signatures import WebhookSecrets
    from service.operations.process_inbound import BATCH_SIZE

    app = create_app(
        Settings(
            database_url=pg_dsn,
            redis_url=redis_url,
            api_keys=(BENCH_KEY,),
            webhook_secrets=WebhookSecrets(test=(BENCH_SECRET,)),
        )
    )
    try:
        template = make_template(app, BENCH_KEY, attach=True)
    finally:
        app.extensions["pool"].close()
    body = success_body(template)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        clone(
            conn,
            template,
            crediting.TAG,
            count,
            ("customers", "invoices", "invoice_items", "payment_intents", "invoice_payments"),
        )
        pending_successes(conn, crediting.TAG, count, body)
    result = crediting.run(
        pg_dsn,
        count=count,
        batch=BATCH_SIZE,
        clients=clients,
        samples=[tuple(s) for s in samples],
        workdir=tmp,
    )
    log(
        f"pgbench: {result['credited']} credited, {result['credits_per_s']:.0f}/s "
        f"({result['batches_per_s']:.1f} batches/s of {BATCH_SIZE}, {clients} clients)"
    )
    return result


def attach_phase(stack: Stack, base: str, count: int) -> dict[str, Any]:
    pairs = [(f"in_A{k}", f"pi_A{k}") for k in range(1, count + 1)]
    hello = stack.start_web("hello", "'bench.attach:hello_app()'")
    try:
        post_all(hello, pairs[: count // 10], CONNECTIONS)  # warm-up
        h_lat, h_elapsed, h_fail = post_all(hello, pairs, CONNECTIONS)
    finally:
        stack.stop("hello")
    warm, measured = pairs[: count // 10], pairs[count // 10 :]
    post_all(base, warm, CONNECTIONS)
    a_lat, a_elapsed, a_fail = post_all(base, measured, CONNECTIONS)
    out = {
        "concurrency": CONNECTIONS,
        "hello": {
            "rps": len(h_lat) / h_elapsed,
            **stats([x * 1000 for x in h_lat]),
            "failures": len(h_fail),
        },
        "tally": {
            "rps": len(a_lat) / a_elapsed,
            **stats([x * 1000 for x in a_lat]),
            "failures": len(a_fail),
        },
    }
    log(
        f"attach: {out['tally']['rps']:.0f}/s p99 {out['tally']['p99']:.1f} ms "
        f"({len(a_fail)} non-200); "
        f"hello {out['hello']['rps']:.0f}/s p99 {out['hello']['p99']:.1f} ms"
    )
    return out


def success_body(template: dict[str, str]) -> str:
    from service.domain.events import payment_intent_event

    pi = {
        "id": template["payment_intent"],
        "amount": 1299,
        "currency": "usd",
        "customer": template["customer"],
    }
    return json.dumps(payment_intent_event("payment_intent.succeeded", pi, now=int(time.time())))


def end_to_end_phase(base: str, dsn: str, rate: float, seconds: float) -> dict[str, Any]:
    """Webhooks for the clones E at `rate`/s: ms from each request sent to its invoice.paid
    committed (NOTIFY from a trigger, delivered at commit) and delivered (the receiver)."""
    from service.domain.events import payment_intent_event
    from service.domain.signatures import sign

    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {BENCH_KEY}"
    endpoint = session.post(
        f"{base}/v1/webhook_endpoints",
        data={
            "url": receiver.url,
            "enabled_events[]": "invoice.paid",
        },
        timeout=10,
    )
    assert endpoint.status_code == 200, endpoint.text
    notify_when_paid(dsn)
    warm = int(rate * WARMUP_S)
    count = int(rate * seconds)
    committed: dict[str, float] = {}
    sent: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    event_of: dict[str, str] = {}
    listening = threading.Event()

    sending_done = threading.Event()

    def listen() -> None:
        # Until every invoice.paid is committed, or 30 s after the last webhook was sent.
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("LISTEN bench_paid")
            listening.set()
            deadline = float("inf")
            while len(committed) < warm + count and time.monotonic() < deadline:
                for note in conn.notifies(timeout=0.5):
                    committed.setdefault(note.payload, time.perf_counter())
                if sending_done.is_set() and deadline == float("inf"):
                    deadline = time.monotonic() + 30

    listener = threading.Thread(target=listen)
    listener.start()
    listening.wait(10)
    url = f"{base}/webhooks/stripe"
    local = threading.local()
    now = int(time.time())

    def fire(k: int) -> int:
        pi = {"id": f"pi_E{k}", "amount": 1299, "currency": "usd", "customer": f"cus_E{k}"}
        event = payment_intent_event("payment_intent.succeeded", pi, now=now)
        event_of[f"in_E{k}"] = event["id"]
        body = json.dumps(event).encode()
        headers = {
            "Stripe-Signature": sign(body, BENCH_SECRET, int(time.time())),
            "Content-Type": "application/json",
        }
        delay = t0 + (k - 1) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        s = getattr(local, "session", None) or requests.Session()
        local.session = s
        sent[f"in_E{k}"] = time.perf_counter()
        sent_wall[f"in_E{k}"] = time.time()
        return s.post(url, data=body, headers=headers, timeout=10).status_code

    t0 = time.perf_counter() + 0.2
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(fire, range(1, warm + count + 1)))
    last_sent = max(sent.values())
    sending_done.set()
    deadline = time.monotonic() + 30
    while len(receiver.arrived) < warm + count and time.monotonic() < deadline:
        time.sleep(0.1)
    listener.join(45)
    receiver.shutdown()
    measured = [f"in_E{k}" for k in range(warm + 1, warm + count + 1)]
    start = sent[measured[0]]
    series = [
        (
            sent[i] - start,
            (committed[i] - sent[i]) * 1000 if i in committed else None,
            (receiver.arrived[i] - sent[i]) * 1000 if i in receiver.arrived else None,
        )
        for i in measured
    ]
    # Where the time goes: sent -> stored by the intake -> claimed by a drain (wall clock).
    with psycopg.connect(dsn, autocommit=True) as conn:
        stamps = {
            r[0]: (float(r[1]), float(r[2]) if r[2] is not None else None)
            for r in conn.execute(
                "SELECT id, extract(epoch FROM received_at), extract(epoch FROM processed_at)"
                " FROM inbound_events WHERE id = ANY(%s)",
                ([event_of[i] for i in measured],),
            )
        }
    stored = [(stamps[event_of[i]][0] - sent_wall[i]) * 1000 for i in measured]
    claimed = [
        (stamps[event_of[i]][1] - stamps[event_of[i]][0]) * 1000  # type: ignore[operator]
        for i in measured
        if stamps[event_of[i]][1] is not None
    ]
    c = [x for _, x, _ in series if x is not None]
    d = [x for _, _, x in series if x is not None]
    out = {
        "rate_sent": (count - 1) / (last_sent - start),
        "seconds": seconds,
        "sent": count,
        "non_200": sum(s != 200 for s in statuses),
        "committed": stats(c),
        "delivered": stats(d),
        "sent_to_stored": stats(stored),
        "stored_to_processed": stats(claimed),
        "series": series,
    }
    log(
        f"end to end at {out['rate_sent']:.0f}/s: committed p50 {out['committed']['p50']:.1f} "
        f"p99 {out['committed']['p99']:.1f} max {out['committed']['max']:.1f} ms "
        f"({len(c)}/{count}); "
        f"delivered p50 {out['delivered']['p50']:.1f} p99 {out['delivered']['p99']:.1f} "
        f"max {out['delivered']['max']:.1f} ms ({len(d)}/{count})"
    )
    return out


def settle(dsn: str, timeout: float = 180) -> None:
    """Wait (bounded) until nothing is pending or unpublished, so that a phase does not
    measure the backlog the previous one left."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM inbound_events WHERE status = 'pending')"
                " + (SELECT count(*) FROM event_outbox)"
            ).fetchone()
            if row and row[0] == 0:
                return
            time.sleep(0.5)
    log("warning: the pipeline did not settle before the next phase")


def api_phase(base: str, dsn: str, redis_url: str, rate: float, seconds: float) -> dict[str, Any]:
    from bench.pipeline import api_to_stream

    port = int(base.rsplit(":", 1)[1])
    settle(dsn)
    count = int(rate * seconds)
    warm = int(rate * WARMUP_S)
    drafts = [f"in_D{k}" for k in range(1, warm + count + 1)]
    api_to_stream(port, redis_url, drafts[:warm], rate)
    answers, latencies, _ = api_to_stream(port, redis_url, drafts[warm:], rate)
    out = {
        "rate": rate,
        "calls": count,
        "seen": len(latencies),
        "stream": stats(latencies),
        "response": stats(answers),
    }
    log(
        f"API -> stream: p50 {out['stream']['p50']:.1f} p99 {out['stream']['p99']:.1f} ms "
        f"({len(latencies)}/{count} seen)"
    )
    return out


# -- figures, JSON, PNG ---------------------------------------------------------------------


def figures(r: dict[str, Any]) -> list[Figure]:
    intake, attach, e2e, api = r["intake"], r["attach"], r["end_to_end"], r["api_to_stream"]
    mb = 1 / 1024
    rows = [
        Figure(
            "intake_rps",
            f"intake req/s ({CONNECTIONS} conns)",
            intake["web"]["rps"],
            "/s",
            intake["reference"]["rps"],
            "reference",
            Target(0.8, True, of_ceiling=True),
        ),
        Figure(
            "intake_p99",
            "intake p99",
            intake["web"]["p99"],
            "ms",
            intake["reference"]["p99"],
            "reference",
            Target(30, False),
        ),
        Figure(
            "crediting",
            "backlog crediting",
            r["backlog"]["credits_per_s"],
            "/s",
            r["pgbench"]["credits_per_s"],
            "pgbench",
            Target(1000, True),
        ),
        Figure(
            "attach_rps",
            f"attach req/s ({CONNECTIONS} conns)",
            attach["tally"]["rps"],
            "/s",
            attach["hello"]["rps"],
            "hello",
            Target(500, True),
        ),
        Figure(
            "attach_p99",
            "attach p99",
            attach["tally"]["p99"],
            "ms",
            attach["hello"]["p99"],
            "hello",
            Target(40, False),
        ),
    ]
    for what in ("committed", "delivered"):
        s = e2e[what]
        label = (
            f"webhook -> invoice.paid {what} ({s['n']}/{e2e['sent']} at {e2e['rate_sent']:.0f}/s)"
        )
        rows += [
            Figure(f"e2e_{what}_p50", f"{label} p50", s["p50"], "ms", target=Target(10, False)),
            Figure(f"e2e_{what}_p99", f"{label} p99", s["p99"], "ms", target=Target(50, False)),
            Figure(f"e2e_{what}_max", f"{label} max", s["max"], "ms"),
        ]
    rows += [
        Figure(
            "api_stream_p50",
            "API -> stream p50",
            api["stream"]["p50"],
            "ms",
            target=Target(20, False),
        ),
        Figure(
            "api_stream_p99",
            "API -> stream p99",
            api["stream"]["p99"],
            "ms",
            target=Target(100, False),
        ),
        Figure(
            "rss_web",
            "peak RSS web (largest process)",
            r["rss"]["process_peak_kb"]["web"] * mb,
            "MB",
            target=Target(120, False),
        ),
        Figure(
            "rss_worker",
            "peak RSS worker (largest process)",
            r["rss"]["process_peak_kb"]["worker"] * mb,
            "MB",
            target=Target(150, False),
        ),
        Figure(
            "rss_deliveries",
            "peak RSS deliveries",
            r["rss"]["process_peak_kb"]["deliveries"] * mb,
            "MB",
        ),
    ]
    return rows


def plot(e2e: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    for index, (name, color) in enumerate(
        (("committed", "tab:blue"), ("delivered", "tab:orange")), 1
    ):
        points = [(row[0], row[index]) for row in e2e["series"] if row[index] is not None]
        ax.scatter(
            [p[0] for p in points],
            [p[1] for p in points],
            s=3,
            alpha=0.5,
            color=color,
            label=f"{name} (p50 {e2e[name]['p50']:.1f}, p99 {e2e[name]['p99']:.1f} ms)",
        )
    ax.axhline(10, color="grey", linestyle=":", linewidth=1, label="target p50 10 ms")
    ax.axhline(50, color="grey", linestyle="--", linewidth=1, label="target p99 50 ms")
    ax.set_yscale("log")
    ax.set_xlabel("seconds into the run (webhook sent)")
    ax.set_ylabel("webhook -> invoice.paid (ms)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right", fontsize=8, markerscale=3)
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def git_commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


# -- the run --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (~1-2 min)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    # Stopped by SIGTERM (timeout, CI): unwind, so every process and database is cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    profile = PROFILES["quick" if args.quick else "full"]
    load_start = os.getloadavg()
    started = time.monotonic()
    log(
        f"python -m bench{' --quick' if args.quick else ''}: load average {load_start[0]:.2f} "
        f"{load_start[1]:.2f} {load_start[2]:.2f}, {os.cpu_count()} cores"
    )
    worker_processes = int(os.environ.get("WORKER_CONCURRENCY", "2"))
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="tally-bench-") as tmpdir,
        private_redis() as redis_url,
        scratch_database("tally_bench_run") as dsn,
        scratch_database("tally_bench_pgbench") as pg_dsn,
    ):
        tmp = Path(tmpdir)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "STRIPE_"))}
        env.update(
            {
                "DATABASE_URL": dsn,
                "REDIS_URL": redis_url,
                "TALLY_API_KEYS": BENCH_KEY,
                "STRIPE_WEBHOOK_SECRETS_TEST": BENCH_SECRET,
                "TALLY_RATE_LIMIT": "0",
                "TALLY_ALLOW_PRIVATE_WEBHOOK_URLS": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        stack = Stack(env, tmp)
        try:
            # Rows for every phase, cloned from ones made through the API.
            from service.app import create_app
            from service.config import Settings
            from service.domain.signatures import WebhookSecrets

            app = create_app(
                Settings(
                    database_url=dsn,
                    redis_url=redis_url,
                    api_keys=(BENCH_KEY,),
                    webhook_secrets=WebhookSecrets(test=(BENCH_SECRET,)),
                )
            )
            try:
                attached = make_template(app, BENCH_KEY, attach=True)
                unattached = make_template(app, BENCH_KEY, attach=False)
                draft = make_template(app, BENCH_KEY, attach=False, finalize=False)
            finally:
                app.extensions["pool"].close()
            everything = (
                "customers",
                "invoices",
                "invoice_items",
                "payment_intents",
                "invoice_payments",
            )
            e2e_count = int(profile["rate"] * (profile["e2e_s"] + WARMUP_S))
            api_count = int(profile["api_rate"] * (profile["api_s"] + WARMUP_S))
            with psycopg.connect(dsn, autocommit=True) as conn:
                clone(conn, attached, "B", profile["backlog"], everything)
                clone(conn, attached, "E", e2e_count, everything)
                clone(conn, unattached, "A", profile["attach"], everything[:4])
                conn.execute(
                    "UPDATE payment_intents SET status = 'succeeded', amount_received = amount"
                    " WHERE id LIKE 'pi\\_A%' AND substr(id, 5)::int % 2 = 0"
                )
                clone(conn, draft, "D", api_count, everything[:3])
                redis.Redis.from_url(redis_url).flushall()
            log("rows cloned")
            with RssSampler(stack, ("web", "worker", "deliveries")) as rss:
                results["intake"] = intake_phase(stack, dsn, redis_url, profile["intake_s"], tmp)
                backlog = backlog_phase(
                    stack, dsn, redis_url, profile["backlog"], success_body(attached)
                )
                samples = backlog.pop("samples")
                results["backlog"] = backlog
                results["pgbench"] = pgbench_phase(
                    pg_dsn, redis_url, profile["backlog"], samples, tmp, worker_processes
                )
                base = stack.start_web("web")
                stack.start("deliveries", "deliveries")
                stack.start("beat", "beat")
                results["attach"] = attach_phase(stack, base, profile["attach"])
                results["end_to_end"] = end_to_end_phase(
                    base, dsn, profile["rate"], profile["e2e_s"]
                )
                results["api_to_stream"] = api_phase(
                    base, dsn, redis_url, profile["api_rate"], profile["api_s"]
                )
                rss.sample()
            results["rss"] = {
                "process_peak_kb": rss.process_peak_kb,
                "tree_peak_kb": rss.tree_peak_kb,
            }
        finally:
            stack.stop_all()
        args.out.mkdir(parents=True, exist_ok=True)
        script = Path(results["pgbench"].pop("script"))
        (args.out / "pgbench-crediting.sql").write_text(script.read_text())
    load_end = os.getloadavg()
    rows = figures(results)
    header = (
        f"python -m bench{' --quick' if args.quick else ''} at {git_commit()}, "
        f"{os.cpu_count()} cores, load average {load_start[0]:.2f} at start, "
        f"{load_end[0]:.2f} at end, {time.monotonic() - started:.0f} s"
    )
    text = table(rows)
    print(f"\n{header}\n\n{text}\n")
    plot(results["end_to_end"], args.out / "latency.png", header)
    results["end_to_end"]["series"] = [  # seconds into the run, committed ms, delivered ms
        [round(x, 4) if x is not None else None for x in row]
        for row in results["end_to_end"]["series"]
    ]
    document = {
        "command": "python -m bench" + (" --quick" if args.quick else ""),
        "commit": git_commit(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cores": os.cpu_count(),
        "load_average": {"start": load_start, "end": load_end},
        "profile": profile,
        "figures": [f.as_json() for f in rows],
        "details": results,
        "table": text,
    }
    (args.out / "latest.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    log(f"wrote {args.out / 'latest.json'} and {args.out / 'latency.png'}")
    sys.exit(0)


if __name__ == "__main__":
    main()
