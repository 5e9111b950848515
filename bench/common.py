"""Shared pieces of the benchmarks: the environment of a run, waiting for the pipeline
to drain, and a one-line latency summary."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from devtools.processes import Stack, service_env
from devtools.procfile import ROOT
from devtools.stats import percentile

BENCH_KEY = "sk_test_bench_key"
BENCH_SECRET = "whsec_bench_secret"
# Nothing pending, unpublished or (with deliveries) undelivered.
BACKLOG = (
    "SELECT (SELECT count(*) FROM inbound_events WHERE status = 'pending')"
    " + (SELECT count(*) FROM event_outbox)"
)
DELIVERIES = " + (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')"


def in_threads(loop: Any, count: int) -> None:
    """Run `loop` in `count` threads at once; return when every one has ended."""
    threads = [threading.Thread(target=loop) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_env(dsn: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmark's processes: its database and Redis, the bench key
    and secret, and no rate limit (benchmarks measure throughput, not the per-key limit)."""
    return service_env(
        dsn, redis_url, TALLY_API_KEYS=BENCH_KEY, STRIPE_WEBHOOK_SECRETS_TEST=BENCH_SECRET,
        TALLY_RATE_LIMIT="0", **extra,
    )  # fmt: skip


def bench_env() -> dict[str, str]:
    """A run's environment on the local services (devtools.localenv), freshly migrated."""
    from devtools.localenv import ensure_local_services
    from service.migrate import migrate

    urls = ensure_local_services(ROOT / ".tally-data", database_name="tally_bench")
    migrate(urls["DATABASE_URL"])
    return run_env(urls["DATABASE_URL"], urls["REDIS_URL"])


def drained(dsn: str, timeout: float, *, deliveries: bool = False, app: str = "bench") -> bool:
    """Wait (bounded) until nothing is pending or unpublished (nor, with `deliveries`,
    undelivered); whether it came to that."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True, application_name=app) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(BACKLOG + (DELIVERIES if deliveries else "")).fetchone()
            if row and row[0] == 0:
                return True
            time.sleep(0.2)
    return False


def credited(conn: psycopg.Connection[Any]) -> tuple[int, float]:
    """Inbound events processed, and seconds from the first processed_at to the last."""
    first, last, n = conn.execute(
        "SELECT min(processed_at), max(processed_at), count(*) FROM inbound_events"
        " WHERE status = 'processed'"
    ).fetchone()  # type: ignore[misc]
    return n, (last - first).total_seconds()


def summarize(name: str, latencies: list[float], elapsed: float) -> str:
    """One line: count, rate, p50 and p99 of `latencies` (seconds)."""
    n = len(latencies)
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    rate = n / elapsed
    return f"{name}: {n} in {elapsed:.2f}s = {rate:.0f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms"


def notify_when_paid(dsn: str) -> None:
    """NOTIFY bench_paid with the invoice id as each invoice.paid event is committed, so
    a benchmark can time webhook -> paid from PostgreSQL's own commit. The trigger's
    WHEN skips the function for every other event (four in five of a credit's), whose
    call the PostgreSQL CPU figures would otherwise count as Tally's."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """
            CREATE FUNCTION bench_notify_paid() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('bench_paid', NEW.data->'object'->>'id');
                RETURN NEW;
            END $$;
            CREATE TRIGGER bench_notify_paid AFTER INSERT ON events
                FOR EACH ROW WHEN (NEW.type = 'invoice.paid')
                EXECUTE FUNCTION bench_notify_paid();
            """
        )


def git_commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    return out.stdout.strip()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def subscribe(base: str, url: str, event_type: str) -> str:
    """A webhook endpoint at `url` for `event_type`, made over HTTP; its id."""
    import requests

    response = requests.post(
        f"{base}/v1/webhook_endpoints",
        data={"url": url, "enabled_events[]": event_type},
        headers={"Authorization": f"Bearer {BENCH_KEY}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def finalize_paced(base: str, invoices: list[str], rate: float,
                   threads: int = 8) -> dict[str, tuple[float, float]]:  # fmt: skip
    """POST /finalize for each invoice at `rate`/s from `threads` kept-alive sessions;
    when (time.time()) each request was sent and answered. Every answer must be 200."""
    import requests

    times: dict[str, tuple[float, float]] = {}
    local = threading.local()

    def fire(item: tuple[int, str]) -> None:
        k, invoice = item
        time.sleep(max(0.0, t0 + k / rate - time.perf_counter()))
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        sent = time.time()
        response = session.post(
            f"{base}/v1/invoices/{invoice}/finalize",
            headers={"Authorization": f"Bearer {BENCH_KEY}"},
            timeout=10,
        )
        times[invoice] = (sent, time.time())
        assert response.status_code == 200, response.text

    t0 = time.perf_counter() + 0.1
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fire, enumerate(invoices)))
    return times


def credit_stored(stack: Stack, dsn: str, redis_url: str, timeout: float) -> tuple[int, float]:
    """Start the worker line on what is stored and pending, with one wake-up as the
    intake sends it; when all is credited (bounded): how many, and the seconds from
    the first processed_at to the last (worker start-up excluded)."""
    import redis

    from service.config import Settings
    from service.domain.signatures import WebhookSecrets
    from service.queue import make_task_queue

    stack.start("worker", "worker")
    settings = Settings(database_url=dsn, redis_url=redis_url, api_keys=(BENCH_KEY,),
                        webhook_secrets=WebhookSecrets(test=(BENCH_SECRET,)))  # fmt: skip
    assert make_task_queue(settings, redis.Redis.from_url(redis_url)).wake_drain(force=True)
    drained(dsn, timeout)
    with psycopg.connect(dsn, autocommit=True) as conn:
        return credited(conn)
