"""Shared pieces of the benchmarks: the environment of a run and latency figures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# bench.chaos imports free_port from here.
from service.localenv import free_port  # noqa: E402, F401

BENCH_KEY = "sk_test_bench_key"
BENCH_SECRET = "whsec_bench_secret"


def bench_env() -> dict[str, str]:
    """The environment of a benchmark run: local services, a fresh database."""
    from service.localenv import ensure_local_services
    from service.migrate import migrate

    urls = ensure_local_services(ROOT / ".tally-data", database_name="tally_bench")
    migrate(urls["DATABASE_URL"])
    return {
        **os.environ,
        **urls,
        "TALLY_API_KEYS": BENCH_KEY,
        "STRIPE_WEBHOOK_SECRETS": BENCH_SECRET,
        # Benchmarks measure throughput, not the per-key limit.
        "TALLY_RATE_LIMIT": "0",
        "TALLY_ALLOW_PRIVATE_WEBHOOK_URLS": "1",
    }


def summarize(name: str, latencies: list[float], elapsed: float) -> str:
    """One line: count, rate, p50 and p99 of `latencies` (seconds)."""
    ordered = sorted(latencies)
    n = len(ordered)
    p50 = ordered[n // 2] * 1000
    p99 = ordered[min(n - 1, int(n * 0.99))] * 1000
    rate = n / elapsed
    return f"{name}: {n} in {elapsed:.2f}s = {rate:.0f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms"


def notify_when_paid(dsn: str) -> None:
    """NOTIFY bench_paid with the invoice id as each invoice.paid event is committed, so
    a benchmark can time webhook -> paid from PostgreSQL's own commit."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """
            CREATE FUNCTION bench_notify_paid() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.type = 'invoice.paid' THEN
                    PERFORM pg_notify('bench_paid', NEW.data->'object'->>'id');
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER bench_notify_paid AFTER INSERT ON events
                FOR EACH ROW EXECUTE FUNCTION bench_notify_paid();
            """
        )
