"""Benchmark the event pipeline: backlog crediting rate, webhook → invoice.paid latency,
and API call → its event on the Redis stream.

    .venv/bin/python bench/pipeline.py [--backlog 3000] [--rate 200] [--seconds 10]
        [--concurrency 2] [--api-rate 50] [--api-seconds 10] [--deliveries]

Against a scratch database (`tally_bench_pipeline`, recreated), a private
redis-server, gunicorn serving Tally and a real `celery -A workers worker`:

1. Backlog: N open invoices with attached PaymentIntents; their N signed
   payment_intent.succeeded webhooks are stored while no worker runs; then the
   worker starts. Rate = N / (last - first processed_at) of the inbound events,
   i.e. crediting throughput, worker start-up excluded.
2. Latency: with the worker running, webhooks for fresh attached invoices are sent
   over HTTP at --rate per second. A trigger NOTIFYs when an invoice.paid event is
   inserted; PostgreSQL delivers a notification only when its transaction commits,
   so (notification received - request sent) is webhook -> invoice.paid committed.
   With --deliveries, a loopback receiver is subscribed to invoice.paid and, as in
   the Procfile, a second worker (`-Q deliveries --pool threads`) sends the
   deliveries; it also reports webhook -> invoice.paid delivered, and the CPU time
   each worker spent per webhook.
3. API → stream: draft invoices are finalized over HTTP at --api-rate per second; a
   reader blocks on the Redis stream (XREAD), so (invoice.finalized entry read -
   request sent) is how long an event caused by an API call takes to be published.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Receiver, notify_when_paid  # noqa: E402
from bench.intake import API_KEY, SECRET, free_port, wait_port  # noqa: E402

DB_NAME = "tally_bench_pipeline"


def setup_invoices(app: Any, count: int, threads: int = 4) -> list[dict[str, Any]]:
    """`count` open invoices each with an attached PaymentIntent, made through the API
    in-process (Flask test client)."""
    headers = {"Authorization": f"Bearer {API_KEY}"}

    def one(_: int) -> dict[str, Any]:
        client = app.test_client()

        def post(path: str, data: dict[str, Any]) -> dict[str, Any]:
            response = client.post(path, data=data, headers=headers)
            assert response.status_code == 200, response.json
            return response.json  # type: ignore[no-any-return]

        cus = post("/v1/customers", {"email": "bench@example.com"})
        post("/v1/invoiceitems", {"customer": cus["id"], "amount": 1299, "currency": "usd"})
        draft = post(
            "/v1/invoices", {"customer": cus["id"], "pending_invoice_items_behavior": "include"}
        )
        invoice = post(f"/v1/invoices/{draft['id']}/finalize", {})
        pi = post("/v1/payment_intents", {"amount": 1299, "currency": "usd", "customer": cus["id"]})
        post(f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]})
        return {"invoice": invoice["id"], "pi": pi}

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def success_body(pi: dict[str, Any]) -> bytes:
    from devtools.stripe_events import stripe_event

    return json.dumps(stripe_event(pi, "payment_intent.succeeded")).encode()


def headers_for(body: bytes) -> dict[str, str]:
    from service.domain.signatures import sign

    return {
        "Stripe-Signature": sign(body, SECRET, int(time.time())),
        "Content-Type": "application/json",
    }


def setup_drafts(app: Any, count: int, threads: int = 4) -> list[str]:
    """`count` draft invoices of one item each, made in-process; returns their ids."""
    headers = {"Authorization": f"Bearer {API_KEY}"}

    def one(_: int) -> str:
        client = app.test_client()
        cus = client.post("/v1/customers", data={"email": "b@example.com"}, headers=headers).json
        item = {"customer": cus["id"], "amount": 500, "currency": "usd"}
        client.post("/v1/invoiceitems", data=item, headers=headers)
        draft = client.post(
            "/v1/invoices",
            data={"customer": cus["id"], "pending_invoice_items_behavior": "include"},
            headers=headers,
        )
        assert draft.status_code == 200, draft.json
        return str(draft.json["id"])

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def api_to_stream(
    port: int, redis_url: str, drafts: list[str], rate: float
) -> tuple[list[float], list[float], list[float]]:
    """Finalize `drafts` over HTTP at `rate`/s; ms from each request sent to its
    response, to its invoice.finalized read from the stream, and from the response to
    that (negative when the event was on the stream before the client read the answer)."""
    import redis
    import requests

    from service.adapters.stream import STREAM_KEY

    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
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
                        seen.setdefault(obj["id"], time.perf_counter())
            if done.is_set() and time.perf_counter() > deadline:
                return

    deadline = float("inf")
    reader = threading.Thread(target=read)
    reader.start()
    local = threading.local()
    headers = {"Authorization": f"Bearer {API_KEY}"}

    def fire(item: tuple[int, str]) -> int:
        k, invoice_id = item
        delay = t0 + k / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        sent[invoice_id] = time.perf_counter()
        url = f"http://127.0.0.1:{port}/v1/invoices/{invoice_id}/finalize"
        status = session.post(url, headers=headers, timeout=10).status_code
        answered[invoice_id] = time.perf_counter()
        return int(status)

    t0 = time.perf_counter() + 0.2
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(fire, enumerate(drafts)))
    assert set(statuses) == {200}, statuses
    deadline = time.perf_counter() + 15
    done.set()
    reader.join()
    return (
        [(answered[i] - sent[i]) * 1000 for i in drafts],
        [(seen[i] - sent[i]) * 1000 for i in drafts if i in seen],
        [(seen[i] - answered[i]) * 1000 for i in drafts if i in seen],
    )


def start_web(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "service.app:create_app()",
         "--bind", f"127.0.0.1:{port}", "--workers", "2", "--worker-class", "gthread",
         "--threads", "8", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    wait_port(port)
    return proc


def start_worker(
    env: dict[str, str],
    concurrency: int,
    log: Path,
    pool: str = "prefork",
    *,
    queues: str | None = None,
    beat: bool = True,
) -> subprocess.Popen[bytes]:
    """A worker on every queue (or `queues`), with an embedded beat unless told not to."""
    command = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", pool,
               "--concurrency", str(concurrency), "--loglevel", "WARNING",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    if queues:
        command += ["-Q", queues, "-n", f"{queues.replace(',', '-')}@%h"]
    if beat:
        command += ["-B", "--schedule", str(log.with_suffix(".schedule"))]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """User + system CPU time so far of `proc` and its children, from /proc."""
    from bench.stack import _tree

    total = 0
    for pid in _tree(proc.pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> None:
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


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
        help="deliver invoice.paid to a loopback receiver from a deliveries worker",
    )
    args = parser.parse_args()

    import psycopg
    import requests
    from psycopg.conninfo import make_conninfo

    from devtools.localenv import ensure_local_services
    from service.app import create_app
    from service.config import Settings
    from service.domain.signatures import WebhookSecrets
    from service.migrate import migrate

    urls = ensure_local_services(ROOT / ".tally-data", database_name=DB_NAME)
    dsn = make_conninfo(urls["DATABASE_URL"], dbname=DB_NAME)
    with psycopg.connect(make_conninfo(dsn, dbname="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    migrate(dsn)
    notify_when_paid(dsn)

    redis_port = free_port()
    redis_proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "STRIPE_"))},
        "DATABASE_URL": dsn,
        "REDIS_URL": redis_url,
        "TALLY_API_KEYS": API_KEY,
        "STRIPE_WEBHOOK_SECRETS_TEST": SECRET,
        "TALLY_RATE_LIMIT": "0",
        "TALLY_ALLOW_PRIVATE_WEBHOOK_URLS": "1",
    }
    wait_port(redis_port)
    settings = Settings(
        database_url=dsn,
        redis_url=redis_url,
        api_keys=(API_KEY,),
        webhook_secrets=WebhookSecrets(test=(SECRET,)),
        allow_private_webhook_urls=True,  # the loopback receiver of --deliveries
    )
    app = create_app(settings)
    log = Path(f"/tmp/tally-bench-worker-{os.getpid()}.log")
    report: list[str] = []
    web = None
    worker = None
    deliveries = None
    try:
        if not args.skip_backlog:
            started = time.monotonic()
            cases = setup_invoices(app, args.backlog)
            print(f"setup: {len(cases)} attached invoices in {time.monotonic() - started:.1f}s")
            client = app.test_client()
            for case in cases:
                body = success_body(case["pi"])
                assert client.post("/webhooks/stripe", data=body, headers=headers_for(body)).json
            with psycopg.connect(dsn, autocommit=True) as conn:
                # As python -m bench does: no autovacuum of the fresh rows mid-run.
                conn.execute("VACUUM ANALYZE")
            worker = start_worker(env, args.concurrency, log, args.pool)
            with psycopg.connect(dsn, autocommit=True) as conn:
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    pending = conn.execute(
                        "SELECT count(*) FROM inbound_events WHERE status = 'pending'"
                    ).fetchone()[0]
                    if pending == 0:
                        break
                    time.sleep(0.2)
                first, last, n = conn.execute(
                    "SELECT min(processed_at), max(processed_at), count(*) FROM inbound_events"
                    " WHERE status = 'processed'"
                ).fetchone()
                paid = conn.execute("SELECT count(*) FROM invoices WHERE status = 'paid'")
                paid_count = paid.fetchone()[0]
            span = (last - first).total_seconds()
            report.append(
                f"backlog: {n} success events credited in {span:.2f}s = {n / span:.0f} events/s "
                f"({paid_count} invoices paid; worker --concurrency {args.concurrency})"
            )
            stop(worker)
            worker = None

        if not args.skip_latency:
            count = int(args.rate * args.seconds)
            warmup = 200
            started = time.monotonic()
            cases = setup_invoices(app, count + warmup)
            print(f"setup: {len(cases)} attached invoices in {time.monotonic() - started:.1f}s")
            port = free_port()
            web = start_web(env, port)
            if args.deliveries:
                receiver = Receiver()
                threading.Thread(target=receiver.serve_forever, daemon=True).start()
                endpoint = app.test_client().post(
                    "/v1/webhook_endpoints",
                    data={"url": receiver.url, "enabled_events[]": "invoice.paid"},
                    headers={"Authorization": f"Bearer {API_KEY}"},
                )
                assert endpoint.status_code == 200, endpoint.json
                # As the Procfile's worker and deliveries lines split the queues.
                worker = start_worker(
                    env, args.concurrency, log, args.pool, queues="inbound,events"
                )
                deliveries = start_worker(env, 8, log, "threads", queues="deliveries", beat=False)
            else:
                worker = start_worker(env, args.concurrency, log, args.pool)
            # Warm up (worker start, pools, prepared statements) until it credits at once.
            client = requests.Session()
            for case in cases[:warmup]:
                body = success_body(case["pi"])
                client.post(f"http://127.0.0.1:{port}/webhooks/stripe", data=body,
                            headers=headers_for(body), timeout=10)  # fmt: skip
                time.sleep(1 / args.rate)
            with psycopg.connect(dsn, autocommit=True) as conn:
                while conn.execute(
                    "SELECT count(*) FROM inbound_events WHERE status = 'pending'"
                ).fetchone()[0]:
                    time.sleep(0.1)
            cases = cases[warmup:]
            bodies = [(c["invoice"], success_body(c["pi"])) for c in cases]
            event_of = {invoice_id: json.loads(body)["id"] for invoice_id, body in bodies}
            sent: dict[str, float] = {}
            sent_wall: dict[str, float] = {}
            committed: dict[str, float] = {}
            listening = threading.Event()

            def listen() -> None:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("LISTEN bench_paid")
                    listening.set()
                    for note in conn.notifies(timeout=args.seconds + 30, stop_after=count):
                        committed[note.payload] = time.perf_counter()

            listener = threading.Thread(target=listen)
            listener.start()
            listening.wait(10)
            local = threading.local()

            def fire(item: tuple[int, tuple[str, bytes]]) -> int:
                # http.client, not requests: the sender shares the two cores with what
                # it measures, and requests cost it three times the CPU per webhook.
                k, (invoice_id, body) = item
                delay = t0 + k / args.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                http = getattr(local, "http", None) or HTTPConnection("127.0.0.1", port, timeout=10)
                local.http = http
                headers = headers_for(body)
                sent[invoice_id] = time.perf_counter()
                sent_wall[invoice_id] = time.time()
                http.request("POST", "/webhooks/stripe", body=body, headers=headers)
                response = http.getresponse()
                response.read()
                return response.status

            cpu_before = {
                name: cpu_seconds(proc)
                for name, proc in (("worker", worker), ("deliveries", deliveries))
                if proc is not None
            }
            t0 = time.perf_counter() + 0.2
            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(fire, enumerate(bodies)))
            actual_rate = count / (max(sent.values()) - min(sent.values()))
            listener.join(args.seconds + 40)
            more = []  # delivered, CPU: reported after the committed figures
            if deliveries is not None:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not all(
                    invoice_id in receiver.arrived for invoice_id in sent
                ):
                    time.sleep(0.1)
                delivered = [
                    (receiver.arrived[i] - sent[i]) * 1000 for i in sent if i in receiver.arrived
                ]
                more.append(
                    f"  webhook -> invoice.paid delivered ({len(delivered)}/{count}): p50 "
                    f"{statistics.median(delivered):.1f} ms, p90 {pct(delivered, 0.90):.1f} ms,"
                    f" p99 {pct(delivered, 0.99):.1f} ms, max {max(delivered):.1f} ms"
                )
            for name, before in cpu_before.items():
                proc = worker if name == "worker" else deliveries
                used = cpu_seconds(proc) - before  # type: ignore[arg-type]
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
            intake, waiting, working = [], [], []
            for invoice_id in committed:
                received, claimed = stamps[event_of[invoice_id]]
                done_wall = sent_wall[invoice_id] + committed[invoice_id] - sent[invoice_id]
                intake.append((received - sent_wall[invoice_id]) * 1000)
                waiting.append((claimed - received) * 1000)
                working.append((done_wall - claimed) * 1000)
            if os.environ.get("BENCH_DUMP"):
                with open(os.environ["BENCH_DUMP"], "w") as dump:
                    for invoice_id in sorted(committed, key=lambda i: sent[i]):
                        received, claimed = stamps[event_of[invoice_id]]
                        dump.write(
                            f"{sent[invoice_id] - t0:.3f} {received - sent_wall[invoice_id]:.4f} "
                            f"{claimed - received:.4f} "
                            f"{committed[invoice_id] - sent[invoice_id]:.4f}\n"
                        )
            for name, values in (("stored", intake), ("claimed", waiting), ("done", working)):
                report.append(
                    f"  {name:>8}: p50 {statistics.median(values):6.1f} ms"
                    f"  p99 {pct(values, 0.99):6.1f} ms  max {max(values):6.1f} ms"
                )
            report.insert(
                len(report) - 3,
                f"latency at {actual_rate:.0f} webhooks/s over {args.seconds:.0f}s "
                f"({len(latencies)}/{count} paid, {statuses.count(200)} x 200): "
                f"webhook -> invoice.paid committed p50 {statistics.median(latencies):.1f} ms, "
                f"p90 {pct(latencies, 0.90):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms, "
                f"max {max(latencies):.1f} ms",
            )
            report.extend(more)

        if not args.skip_api:
            count = int(args.api_rate * args.api_seconds)
            warmup = 50
            drafts = setup_drafts(app, count + warmup)
            if web is None:
                port = free_port()
                web = start_web(env, port)
            if worker is None:
                worker = start_worker(env, args.concurrency, log, args.pool)
            api_to_stream(port, redis_url, drafts[:warmup], args.api_rate)
            answers, latencies, after = api_to_stream(
                port, redis_url, drafts[warmup:], args.api_rate
            )
            report.append(
                f"API -> stream at {args.api_rate:.0f} finalize calls/s over "
                f"{args.api_seconds:.0f}s ({len(latencies)}/{count} read from the stream): "
                f"call sent -> invoice.finalized on the stream p50 "
                f"{statistics.median(latencies):.1f} ms, p90 {pct(latencies, 0.90):.1f} ms, "
                f"p99 {pct(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
            )
            for name, values in (("response", answers), ("-> stream", after)):
                report.append(
                    f"  {name:>9}: p50 {statistics.median(values):6.1f} ms"
                    f"  p99 {pct(values, 0.99):6.1f} ms  max {max(values):6.1f} ms"
                )
    finally:
        for proc in (worker, deliveries):
            if proc is not None:
                stop(proc)
        if web is not None:
            web.terminate()
            web.wait(10)
        app.extensions["pool"].close()
        redis_proc.terminate()
        redis_proc.wait(10)
    print(f"\n{os.cpu_count()} cores; worker log: {log}")
    for line in report:
        print(line)


if __name__ == "__main__":
    main()
