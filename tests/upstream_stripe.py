"""Upstream Stripe, played by a second Tally (instance A) for the Tally under test (B):
A's keys, the faults A can be told to show, and what B's tests do with A. The
fixtures that start A and B are in tests/api/conftest.py."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from tests import factories
from tests.conftest import ApiClient

A_TEST_KEY = "sk_test_upstream_stripe_a"
A_LIVE_KEY = "sk_live_upstream_stripe_a"
# B's bound on a fetch, short so the hanging tests are quick; the slack covers the rest
# of B's request on a busy machine.
BOUND = 1.0
SLACK = 1.0


class Faults:
    """WSGI middleware around A: answer normally, fail with a 500 or a proxy's page, hang,
    or (`late`) do the work and then hang before answering, as a lost answer looks."""

    def __init__(self, app: Any):
        self.app = app
        self.mode = "ok"
        self.failures_left = -1  # failing forever unless set
        self.hanging = threading.Event()
        self.release = threading.Event()

    def fail(self, mode: str, times: int = -1) -> None:
        self.mode, self.failures_left = mode, times

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        mode = self.mode
        if self.failures_left > 0:
            self.failures_left -= 1
            if self.failures_left == 0:
                self.mode = "ok"
        if mode == "late":
            answer = b"".join(self.app(environ, start_response))
            self.hanging.set()
            self.release.wait(30)
            return [answer]
        if mode == "hang":
            self.hanging.set()
            self.release.wait(30)
        elif mode == "500":
            body = json.dumps({"error": {"type": "api_error", "message": "boom"}}).encode()
            start_response(
                "500 INTERNAL SERVER ERROR",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        elif mode in ("proxy-404", "proxy-200"):
            # What a proxy or a wrong base answers: not Stripe's "no such object".
            body = b"<html><body>Not here</body></html>"
            status = "404 NOT FOUND" if mode == "proxy-404" else "200 OK"
            start_response(
                status, [("Content-Type", "text/html"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return self.app(environ, start_response)


@dataclass
class StripeA:
    url: str
    dsn: str
    faults: Faults
    api: ApiClient
    live_api: ApiClient


def attach(api: ApiClient, invoice_id: str, pi_id: str, **headers: str) -> Any:
    return api.post(
        f"/v1/invoices/{invoice_id}/attach_payment", {"payment_intent": pi_id}, headers=headers
    )


def b_invoice_for_a_customer(a: StripeA, b: ApiClient, amount: int) -> tuple[dict, dict]:
    """A customer of A's, and an open invoice of B's for that customer."""
    customer = factories.customer(a.api, name="Upstream Payer")
    return customer, factories.open_invoice(b, amount, cus=customer)
