"""The chaos run's plans: the invoices it makes (of every kind: paid in full, split,
partial, overpaid, paid early, by payment record, with a credit), the PaymentIntents
of each and their fates, and the Stripe events it sends for them (duplicated, a
second id for one success, `processing` after `succeeded`). The verdict compares
the ledger with what the plans record as sent and acknowledged."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from devtools.stripe_events import stripe_event

# Kinds of invoice and how often each is drawn.
KINDS = {"full": 5, "split": 4, "partial": 2, "overpay": 4, "early": 2, "record": 3,
         "record_later": 3, "credit": 2}  # fmt: skip


@dataclass
class Payment:
    """One PaymentIntent of an invoice: its fate and the events Stripe sends for it."""

    amount: int
    fate: str  # payment_intent.succeeded, .payment_failed or .canceled
    spec: list[tuple[str, int]] = field(default_factory=list)  # (type, event no.) per send
    pi: dict[str, Any] | None = None
    attached: bool | None = None  # None: not attached yet, or never answered
    success_acked: bool = False
    events: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def succeeds(self) -> bool:
        return self.fate == "payment_intent.succeeded"

    def event(self, event_type: str, number: int) -> dict[str, Any]:
        """Event no. `number` of this PaymentIntent: the same id every time it is sent."""
        assert self.pi is not None
        if number not in self.events:
            real = "payment_intent.processing" if event_type == "late.processing" else event_type
            self.events[number] = stripe_event(self.pi, real)
        return self.events[number]


@dataclass
class InvoicePlan:
    index: int
    kind: str
    items: list[int]
    payments: list[Payment]
    record: int = 0  # amount of a guaranteed payment record attached first
    record_later: bool = False  # the record is reported initiated, guaranteed after attach
    invoice_id: str | None = None
    record_id: str | None = None
    record_attached: bool | None = None
    record_guaranteed: bool | None = None  # the later guaranteed report answered 200
    finalized: bool = False
    done: bool = False

    @property
    def total(self) -> int:
        return sum(self.items)

    def expected_paid(self) -> int:
        """What the ledger must show paid: acknowledged successes of attached PIs."""
        paid = sum(p.amount for p in self.payments if p.attached and p.succeeds and p.success_acked)
        return paid + (self.record if self.record_credited() else 0)

    def record_credited(self) -> bool:
        """The record must be credited: attached, and guaranteed (at once or later)."""
        guaranteed = not self.record_later or bool(self.record_guaranteed)
        return bool(self.record_attached) and guaranteed


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    cuts = sorted(rng.sample(range(1, total), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


def make_plans(count: int, webhooks: int, rng: random.Random) -> list[InvoicePlan]:
    """`count` invoices of every kind, with about `webhooks` event sends in all."""
    plans = []
    kinds = rng.choices(list(KINDS), weights=list(KINDS.values()), k=count)
    for index, kind in enumerate(kinds):
        items = [rng.randrange(500, 9000) for _ in range(rng.randint(1, 3))]
        if kind == "credit":  # a negative item, a credit, lowers what is paid in full
            items.append(-rng.randrange(1, sum(items)))
        total, record = sum(items), 0
        succeeded = "payment_intent.succeeded"
        if kind in ("full", "early", "credit"):
            payments = [Payment(total, succeeded)]
        elif kind == "split":
            payments = [Payment(a, succeeded) for a in _split(total, rng.randint(2, 3), rng)]
        elif kind == "partial":
            first, second = _split(total, 2, rng)
            failure = rng.choice(["payment_intent.payment_failed", "payment_intent.canceled"])
            payments = [Payment(first, succeeded), Payment(second, failure)]
        elif kind == "overpay":  # each within the remainder when attached; all succeed
            payments = [Payment(rng.randint(total // 2, total), succeeded) for _ in range(2)]
        else:  # a payment record (guaranteed, or guaranteed later), then a PaymentIntent
            record = total // 3
            payments = [Payment(total - record, succeeded)]
        plans.append(InvoicePlan(index, kind, items, payments, record, kind == "record_later"))
    for payment in (p for plan in plans for p in plan.payments):
        if rng.random() < 0.3:
            payment.spec.append(("payment_intent.created", 0))
        if rng.random() < 0.6 or not payment.succeeds:
            payment.spec.append(("payment_intent.processing", 1))
        payment.spec.append((payment.fate, 2))
        if payment.succeeds and rng.random() < 0.25:  # a second event id for one success
            payment.spec.append((payment.fate, 3))
        if payment.succeeds and rng.random() < 0.3:  # sent after the success is acked
            payment.spec.append(("late.processing", 4))
    specs = [p for plan in plans for p in plan.payments]
    sent = sum(len(p.spec) for p in specs)
    for _ in range(max(0, webhooks - sent)):  # duplicates: the same event id again
        payment = rng.choice(specs)
        payment.spec.append(rng.choice(payment.spec))
    return plans
