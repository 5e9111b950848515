"""Slow clients against the web tier: do a few connections that trickle their headers
at one byte a second take every gunicorn worker?

`measure(base_url)` opens SLOW_CLIENTS connections that each send a request's headers
one byte a second and never finish them, waits until the server has taken them, then
times GET /healthz and a signed POST /webhooks/stripe (signed with BENCH_SECRET), one
fresh connection each, while the slow ones go on trickling.

tests/test_slow_clients.py runs it against the Procfile's web line. To measure
another setup (gunicorn behind nginx, another worker class), start it with
TALLY_API_KEYS and STRIPE_WEBHOOK_SECRETS=whsec_bench_secret and run

    python -m bench.slow_clients --url http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from bench.intake import signed_requests

SLOW_CLIENTS = 4
# Long enough for every worker to have accepted a slow connection and be reading it.
SETTLE_SECONDS = 2.0
# A request not answered by then counts as this long: "no answer". The slow clients
# trickle for an hour, so a server they hold never answers; one that is merely loaded
# answers well within this.
GIVE_UP_SECONDS = 10.0


@dataclass(frozen=True)
class Timings:
    healthz: list[float]
    webhook: list[float]

    @property
    def worst(self) -> float:
        return max(self.healthz + self.webhook)

    def summary(self) -> str:
        def fmt(values: list[float]) -> str:
            return ", ".join(
                f"{v * 1000:.0f} ms" if v < GIVE_UP_SECONDS else "no answer" for v in values
            )

        return f"/healthz: {fmt(self.healthz)}; signed webhook: {fmt(self.webhook)}"


@contextlib.contextmanager
def trickling(base_url: str, count: int = SLOW_CLIENTS) -> Iterator[None]:
    """`count` connections sending a request's headers one byte a second, until exit."""
    url = urlsplit(base_url)
    address = (url.hostname or "127.0.0.1", url.port or 80)
    stop = threading.Event()

    def trickle() -> None:
        headers = b"POST /webhooks/stripe HTTP/1.1\r\nHost: slow\r\nX-Trickle: " + b"a" * 4096
        with socket.create_connection(address, timeout=5) as sock:
            for byte in headers:
                if stop.is_set():
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:  # the server gave up on us, which is fine
                    return
                stop.wait(1.0)

    threads = [threading.Thread(target=trickle, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


def _timed(method: str, url: str, **kwargs: Any) -> float:
    """Seconds until `url` answered 200, or GIVE_UP_SECONDS if it did not answer."""
    started = time.perf_counter()
    try:
        response = requests.request(method, url, timeout=GIVE_UP_SECONDS, **kwargs)
    except requests.RequestException:
        return GIVE_UP_SECONDS
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise AssertionError(f"{method} {url}: {response.status_code} {response.text}")
    return elapsed


def measure(base_url: str, rounds: int = 3, slow: int = SLOW_CLIENTS) -> Timings:
    """Timings of /healthz and a signed webhook while `slow` connections trickle."""
    healthz: list[float] = []
    webhook: list[float] = []
    with trickling(base_url, slow):
        time.sleep(SETTLE_SECONDS)
        for signature, body in signed_requests(rounds):
            healthz.append(_timed("GET", f"{base_url}/healthz"))
            webhook.append(
                _timed(
                    "POST",
                    f"{base_url}/webhooks/stripe",
                    data=body,
                    headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
                )
            )
    return Timings(healthz, webhook)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="base URL of a running Tally web tier")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slow", type=int, default=SLOW_CLIENTS, help="slow clients")
    args = parser.parse_args()
    timings = measure(args.url.rstrip("/"), args.rounds, args.slow)
    print(f"with {args.slow} slow clients: {timings.summary()}")


if __name__ == "__main__":
    main()
