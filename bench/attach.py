"""Attach latency and throughput: `python -m bench.attach [--requests N] [--concurrency C]`.

Starts Tally from the Procfile's web line on loopback (devtools.processes.Stack, as `python -m
bench` does), prepares N open invoices each with a PaymentIntent (half already
succeeded, so half the attaches also credit), then attaches them all from C client
threads, with an Idempotency-Key on every POST as the stripe SDK sends. Its ceiling,
a Flask "hello" under the same web line, answers the same N POSTs first. Prints
requests/s, p50 and p99 of both. Every loop is bounded by N.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench.common import BENCH_KEY, bench_env, summarize
from devtools.processes import Stack


def prepare(base: str, count: int) -> list[tuple[str, str, bool]]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {BENCH_KEY}"
    pairs = []
    customer = session.post(f"{base}/v1/customers", data={"email": "bench@example.com"}).json()[
        "id"
    ]
    for i in range(count):
        session.post(
            f"{base}/v1/invoiceitems",
            data={"customer": customer, "amount": 1000, "currency": "usd"},
        )
        draft = session.post(
            f"{base}/v1/invoices",
            data={"customer": customer, "pending_invoice_items_behavior": "include"},
        ).json()["id"]
        session.post(f"{base}/v1/invoices/{draft}/finalize")
        pi = session.post(
            f"{base}/v1/payment_intents",
            data={"amount": 1000, "currency": "usd", "customer": customer},
        ).json()["id"]
        pairs.append((draft, pi, i % 2 == 0))
    return pairs


def settle(env: dict[str, str], pis: list[str]) -> None:
    """Mark PaymentIntents succeeded through the same domain call the worker makes."""
    import psycopg
    from psycopg.rows import dict_row

    from service.operations.crediting import apply_payment_intent_update

    with psycopg.connect(env["DATABASE_URL"], autocommit=True, row_factory=dict_row) as conn:
        for pi in pis:
            with conn.transaction():
                apply_payment_intent_update(
                    conn,
                    {
                        "id": pi,
                        "amount": 1000,
                        "amount_received": 1000,
                        "currency": "usd",
                        "status": "succeeded",
                        "livemode": False,
                        "customer": None,
                    },
                    now=int(time.time()),
                )


def hello_app() -> Any:
    """The ceiling of attach: Flask answering the same POST with a constant, under the same
    gunicorn. `gunicorn 'bench.attach:hello_app()'`."""
    from flask import Flask

    app = Flask("hello")

    @app.get("/healthz")
    def healthz() -> Any:
        return {"ok": True}

    @app.post("/v1/invoices/<invoice_id>/attach_payment")
    def hello(invoice_id: str) -> Any:
        return {"hello": invoice_id}

    return app


def post_all(
    base: str, pairs: list[tuple[str, str]], concurrency: int
) -> tuple[list[float], float, list[int]]:
    """Attach each (invoice, payment_intent) from `concurrency` client threads, each POST
    with its own Idempotency-Key as the stripe SDK sends; (latencies s, elapsed s,
    non-200 statuses)."""
    local = threading.local()
    latencies: list[float] = []
    failures: list[int] = []

    def attach(pair: tuple[str, str]) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = f"Bearer {BENCH_KEY}"
        invoice, pi = pair
        started = time.perf_counter()
        response = session.post(
            f"{base}/v1/invoices/{invoice}/attach_payment",
            data={"payment_intent": pi},
            headers={"Idempotency-Key": str(uuid.uuid4())},
            timeout=30,
        )
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            failures.append(response.status_code)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(attach, pairs))
    return latencies, time.perf_counter() - started, failures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="tally-attach-") as logs:
        stack = Stack(env, Path(logs))
        try:
            hello = stack.start_web("hello", "'bench.attach:hello_app()'")
            unknown = [(f"in_{k}", f"pi_{k}") for k in range(args.requests)]
            post_all(hello, unknown[: args.requests // 10], args.concurrency)  # warm-up
            h_latencies, h_elapsed, _ = post_all(hello, unknown, args.concurrency)
            stack.stop("hello")
            base = stack.start_web("web")
            pairs = prepare(base, args.requests)
            settle(env, [pi for _, pi, succeeded in pairs if succeeded])
            latencies, elapsed, failures = post_all(
                base, [(invoice, pi) for invoice, pi, _ in pairs], args.concurrency
            )
        finally:
            stack.stop_all()
    print(summarize(f"hello (concurrency {args.concurrency})", h_latencies, h_elapsed))
    print(summarize(f"attach_payment (concurrency {args.concurrency})", latencies, elapsed))
    print(f"non-200 responses: {len(failures)}")


if __name__ == "__main__":
    main()
