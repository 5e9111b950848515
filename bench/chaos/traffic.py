"""The business and Stripe, played against the stack.

The business creates customers, items, invoices, PaymentIntents and payment records
through the API, each create tagged `metadata[run_key]` with its Idempotency-Key,
and retries every POST with the same key on any failure (connection error, timeout,
409, 429, 5xx), as the stripe SDK does. Stripe sends signed events for each
PaymentIntent: shuffled across all invoices, duplicated, a second event id for one
success, `processing` after `succeeded`; each delivery retried with backoff on 5xx or
a connection error, and what still fails is sent again after the faults, as Stripe
keeps retrying for days. The plans record what was sent and acknowledged, which is
what the verdict compares the ledger with.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from bench.chaos.plans import InvoicePlan, Payment
from bench.chaos.stack import API_KEY, WEBHOOK_SECRET
from devtools.stripe_events import signed_webhook

CURRENCY = "usd"
# Tables of the objects a create makes, to count them per run_key afterwards.
TABLES = {
    "/v1/customers": "customers",
    "/v1/invoiceitems": "invoice_items",
    "/v1/invoices": "invoices",
    "/v1/payment_intents": "payment_intents",
    "/v1/payment_records/report_payment": "payment_records",
}
RETRIABLE = {409, 429}


class Unanswered(Exception):
    """A request got no definitive answer (2xx or 4xx) within its attempts."""


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def refuse(self, what: str) -> None:
        with self.lock:
            self.refused.append(what)


@dataclass
class Call:
    """A POST that was not answered yet; resent with its key after the faults."""

    path: str
    data: dict[str, Any]
    key: str
    on_answer: Callable[[requests.Response], None] | None


class Client:
    """HTTP to the stack, one requests.Session per thread, with retries."""

    def __init__(self, base_url: str, stats: Stats):
        self.base_url = base_url
        self.stats = stats
        self.keys: dict[str, int | None] = {}  # Idempotency-Key -> final status
        self.paths: dict[str, str] = {}  # Idempotency-Key -> path
        self.unanswered: list[Call] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["Authorization"] = f"Bearer {API_KEY}"
        return session

    def post(
        self,
        path: str,
        data: dict[str, Any],
        key: str,
        *,
        attempts: int = 14,
        on_answer: Callable[[requests.Response], None] | None = None,
    ) -> requests.Response:
        """POST with an Idempotency-Key until a 2xx or 4xx other than 409/429; the
        same key on every attempt. Raises Unanswered (and keeps the call for later)."""
        with self._lock:
            self.keys.setdefault(key, None)
            self.paths[key] = path
        for attempt in range(attempts):
            if attempt:
                self.stats.add("api retries")
                time.sleep(min(0.2 * 2**attempt, 2.5) * random.uniform(0.5, 1))
            self.stats.add("api requests")
            try:
                response = self._session().post(
                    self.base_url + path, data=data, headers={"Idempotency-Key": key},
                    timeout=(2, 15),
                )  # fmt: skip
            except requests.RequestException:
                continue
            if response.status_code >= 500 or response.status_code in RETRIABLE:
                continue
            with self._lock:
                self.keys[key] = response.status_code
            if response.headers.get("Idempotent-Replayed") == "true":
                self.stats.add("replayed")
            if response.status_code >= 400:
                self.stats.refuse(f"POST {path} {response.status_code}: {response.text[:200]}")
            if on_answer is not None:
                on_answer(response)
            return response
        with self._lock:
            self.unanswered.append(Call(path, data, key, on_answer))
        raise Unanswered(f"POST {path} key {key}")

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        for attempt in range(30):
            if attempt:
                time.sleep(0.5)
            try:
                response = self._session().get(self.base_url + path, params=params, timeout=15)
            except requests.RequestException:
                continue
            if response.status_code == 200:
                return response.json()  # type: ignore[no-any-return]
        raise Unanswered(f"GET {path}")

    def deliver(self, event: dict[str, Any], attempts: int) -> int | None:
        """Send one Stripe event as Stripe does, signed afresh per attempt; the status
        of the answer, or None when every attempt failed (5xx or no connection)."""
        body = json.dumps(event).encode()
        for attempt in range(attempts):
            if attempt:
                self.stats.add("webhook retries")
                time.sleep(min(0.5 * 2**attempt, 4) * random.uniform(0.5, 1))
            _, headers = signed_webhook(body, WEBHOOK_SECRET)
            try:
                response = self._session().post(
                    f"{self.base_url}/webhooks/stripe", data=body, headers=headers,
                    timeout=(2, 15),
                )  # fmt: skip
            except requests.RequestException:
                continue
            if response.status_code < 500:
                if response.status_code >= 300:
                    self.stats.refuse(f"webhook {event['id']} {response.status_code}")
                return response.status_code
        return None


# -- running ------------------------------------------------------------------------------


@dataclass
class Delivery:
    event: dict[str, Any]
    payment: Payment
    late: bool


class Outbox:
    """Stripe's side: events waiting to be sent, picked at random (shuffled across
    invoices), and those that failed every attempt, to be sent again later."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.lock = threading.Lock()
        self.waiting: list[Delivery] = []
        self.deferred: list[Delivery] = []

    def add(self, payment: Payment) -> None:
        batch = [
            Delivery(payment.event(t, n), payment, t == "late.processing") for t, n in payment.spec
        ]
        with self.lock:
            self.waiting.extend(batch)

    def take(self) -> Delivery | None:
        """A random waiting delivery; a late one only once its success was acked."""
        with self.lock:
            for _ in range(8):
                if not self.waiting:
                    return None
                index = self.rng.randrange(len(self.waiting))
                delivery = self.waiting[index]
                if not delivery.late or delivery.payment.success_acked:
                    self.waiting[index] = self.waiting[-1]
                    self.waiting.pop()
                    return delivery
            return None

    def drain(self) -> list[Delivery]:
        """Everything not acknowledged yet, successes first (Stripe's later retries)."""
        with self.lock:
            left = self.waiting + self.deferred
            self.waiting, self.deferred = [], []
        return sorted(left, key=lambda d: d.late)

    def defer(self, delivery: Delivery) -> None:
        with self.lock:
            self.deferred.append(delivery)


def send(client: Client, outbox: Outbox, delivery: Delivery, attempts: int) -> bool:
    status = client.deliver(delivery.event, attempts)
    if status is None:
        outbox.defer(delivery)
        return False
    if 200 <= status < 300 and delivery.event["type"] == "payment_intent.succeeded":
        delivery.payment.success_acked = True
    return True


class Business:
    """Creates and attaches, invoice by invoice, from several threads."""

    def __init__(self, client: Client, outbox: Outbox, run_id: str):
        self.client = client
        self.outbox = outbox
        self.run_id = run_id

    def _create(self, path: str, data: dict[str, Any], key: str) -> dict[str, Any]:
        key = f"{self.run_id}-{key}"
        response = self.client.post(path, {**data, "metadata[run_key]": key}, key)
        if response.status_code != 200:
            raise Unanswered(f"POST {path} refused")
        return response.json()  # type: ignore[no-any-return]

    def _attach(self, plan: InvoicePlan, payment: Payment, twin: bool) -> None:
        """Attach with a key; with twin, the same request twice at once, as an SDK
        retry racing its original."""

        def answered(response: requests.Response) -> None:
            payment.attached = response.status_code == 200

        key = f"{self.run_id}-{plan.index}-attach-{payment.pi['id']}"  # type: ignore[index]
        path = f"/v1/invoices/{plan.invoice_id}/attach_payment"
        data = {"payment_intent": payment.pi["id"]}  # type: ignore[index]

        def one() -> None:
            with contextlib.suppress(Unanswered):
                self.client.post(path, data, key, on_answer=answered)

        threads = [threading.Thread(target=one) for _ in range(2 if twin else 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def run(self, plan: InvoicePlan, rng: random.Random) -> None:
        i = plan.index
        customer = self._create("/v1/customers", {"email": f"chaos{i}@example.com"}, f"{i}-cus")
        for n, amount in enumerate(plan.items):
            self._create("/v1/invoiceitems", {"customer": customer["id"], "amount": amount,
                         "currency": CURRENCY}, f"{i}-ii{n}")  # fmt: skip
        draft = self._create("/v1/invoices", {"customer": customer["id"],
                             "pending_invoice_items_behavior": "include"}, f"{i}-in")  # fmt: skip
        plan.invoice_id = draft["id"]
        key = f"{self.run_id}-{i}-finalize"
        invoice = self.client.post(f"/v1/invoices/{draft['id']}/finalize", {}, key).json()
        plan.finalized = invoice.get("status") == "open"
        if invoice.get("amount_due") != plan.total:
            self.client.stats.refuse(f"{draft['id']}: amount_due {invoice.get('amount_due')}")
            return
        for n, payment in enumerate(plan.payments):
            payment.pi = self._create("/v1/payment_intents", {"amount": payment.amount,
                                      "currency": CURRENCY, "customer": customer["id"]},
                                      f"{i}-pi{n}")  # fmt: skip
        if plan.record:
            # record_later: reported initiated (no outcome), guaranteed after the attach
            outcome = {} if plan.record_later else {
                "outcome": "guaranteed", "guaranteed[guaranteed_at]": int(time.time())}  # fmt: skip
            record = self._create("/v1/payment_records/report_payment", {
                "amount_requested[value]": plan.record, "amount_requested[currency]": CURRENCY,
                "initiated_at": int(time.time()), **outcome,
                "customer_details[customer]": customer["id"],
            }, f"{i}-pr")  # fmt: skip
            plan.record_id = record["id"]

            def record_answered(response: requests.Response) -> None:
                plan.record_attached = response.status_code == 200

            self.client.post(f"/v1/invoices/{plan.invoice_id}/attach_payment",
                             {"payment_record": record["id"]}, f"{self.run_id}-{i}-attach-pr",
                             on_answer=record_answered)  # fmt: skip
        if plan.kind == "early":  # the success arrives before the attach call
            payment = plan.payments[0]
            delivery = Delivery(payment.event(payment.fate, 2), payment, late=False)
            send(self.client, self.outbox, delivery, attempts=30)
        attaches = [
            threading.Thread(target=self._attach, args=(plan, p, rng.random() < 0.2))
            for p in plan.payments
        ]
        for thread in attaches:  # the invoice's attaches race each other
            thread.start()
        for thread in attaches:
            thread.join()
        for payment in plan.payments:
            if payment.spec:
                self.outbox.add(payment)
        if plan.record_later and plan.record_id:
            time.sleep(rng.uniform(0, 1))  # the payment clears a while after the attach
            self._guarantee(plan)
        plan.done = True

    def _guarantee(self, plan: InvoicePlan) -> None:
        """Report the record's initiated attempt guaranteed: that, not the attach, is
        what credits its invoice."""

        def answered(response: requests.Response) -> None:
            plan.record_guaranteed = response.status_code == 200

        path = f"/v1/payment_records/{plan.record_id}/report_payment_attempt_guaranteed"
        key = f"{self.run_id}-{plan.index}-guarantee-pr"
        with contextlib.suppress(Unanswered):  # resent with its key after the faults
            self.client.post(path, {"guaranteed_at": int(time.time())}, key, on_answer=answered)
