"""Shared pieces of the benchmarks: the environment of a run and latency figures."""

from __future__ import annotations

import http.server
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# For the receiver below; bench.chaos imports it from here too.
from devtools.localenv import free_port  # noqa: E402

BENCH_KEY = "sk_test_bench_key"
BENCH_SECRET = "whsec_bench_secret"


def bench_env() -> dict[str, str]:
    """The environment of a benchmark run: local services, a fresh database."""
    from devtools.localenv import ensure_local_services
    from service.migrate import migrate

    urls = ensure_local_services(ROOT / ".tally-data", database_name="tally_bench")
    migrate(urls["DATABASE_URL"])
    return {
        **os.environ,
        **urls,
        "TALLY_API_KEYS": BENCH_KEY,
        "STRIPE_WEBHOOK_SECRETS_TEST": BENCH_SECRET,
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


class Receiver(http.server.ThreadingHTTPServer):
    """A loopback webhook endpoint: when each `event_type` event arrived, by invoice id.
    It keeps connections open (HTTP/1.1), as a production receiver behind a proxy does."""

    daemon_threads = True

    def __init__(self, event_type: str = "invoice.paid") -> None:
        self.arrived: dict[str, float] = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.perf_counter()
                event = json.loads(body)
                if event.get("type") == event_type:
                    receiver.arrived.setdefault(event["data"]["object"]["id"], now)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"
