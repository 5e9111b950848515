"""The invoice ledger's rules, over typed rows: what may be attached, what a credit
pays, and which events a credit calls for."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from service.domain import money
from service.errors import InvalidRequest, PaymentStateConflict

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# Invoices that can still take payments.
PAYABLE_STATUSES = ("open", "uncollectible")

# PaymentIntent statuses no later event moves it from (Stripe's terminal states): a
# late `processing` after `succeeded` is ignored.
TERMINAL_PI_STATUSES = ("succeeded", "canceled")


def as_dict(row: DataclassInstance) -> dict[str, Any]:
    """A typed row (Invoice, InvoicePayment, PaymentIntent, Customer) as the dict the
    renderers take. Unlike dataclasses.asdict it copies nothing (rows are frozen,
    renderers only read), which the crediting hot path felt."""
    names, values = _reader(type(row))
    return dict(zip(names, values(row), strict=True))


@functools.cache
def _reader(kind: type[DataclassInstance]) -> tuple[tuple[str, ...], Callable[[Any], Any]]:
    """A row type's field names, and a function reading them all at once (in C): an
    attach read an Invoice's 26 fields one by one, and dataclasses.fields, five times."""
    names = tuple(f.name for f in fields(kind))
    read = operator.attrgetter(*names)
    return names, (read if len(names) > 1 else lambda row: (read(row),))


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoices row, as service.store.invoices selects it."""

    id: str
    livemode: bool
    customer: str
    status: str
    currency: str
    number: str | None
    description: str | None
    footer: str | None
    metadata: dict[str, str]
    auto_advance: bool
    collection_method: str
    due_date: int | None
    customer_email: str | None
    customer_name: str | None
    total: int
    amount_paid: int
    paid_out_of_band: bool
    finalized_at: int | None
    paid_at: int | None
    voided_at: int | None
    marked_uncollectible_at: int | None
    created: int
    ending_balance: int | None
    # Frozen at finalize; a draft's is the customer's balance now.
    starting_balance: int

    @property
    def amount_due(self) -> int:
        return money.amount_due(self.total, self.starting_balance)

    @property
    def amount_remaining(self) -> int:
        return money.remaining(self.amount_due, self.amount_paid)

    @property
    def amount_overpaid(self) -> int:
        return money.overpaid(self.amount_due, self.amount_paid)


@dataclass(frozen=True, slots=True)
class InvoicePayment:
    """An invoice_payments row: one PaymentIntent or payment record on one invoice."""

    id: str
    livemode: bool
    invoice: str
    payment_intent: str | None
    payment_record: str | None
    currency: str
    amount_requested: int
    amount_paid: int | None
    status: str
    paid_at: int | None
    canceled_at: int | None
    created: int


@dataclass(frozen=True, slots=True)
class PaymentIntent:
    """A payment_intents row: Tally's mirror of a Stripe PaymentIntent."""

    id: str
    livemode: bool
    amount: int
    amount_received: int
    currency: str
    customer: str | None
    description: str | None
    status: str
    cancellation_reason: str | None
    canceled_at: int | None
    metadata: dict[str, str]
    created: int
    # Set when a success superseded Tally's cancel (migration 0017): a ledger breach.
    superseded_canceled_at: int | None


@dataclass(frozen=True, slots=True)
class MirroredPaymentIntent(PaymentIntent):
    """Tally's copy as a PaymentIntent from Stripe changed it: new (`inserted`), or with
    its status moved (`status_moved`), or only its amounts."""

    inserted: bool
    status_moved: bool


@dataclass(frozen=True, slots=True)
class LockedPaymentIntent(PaymentIntent):
    """A PaymentIntent read for attaching, with the invoice it is attached to."""

    attached_to: str | None


@dataclass(frozen=True, slots=True)
class LockedPaymentRecord:
    """A payment_records row, locked for attaching or reporting, with what its refunds
    add up to and the invoice it is attached to. `outcome` is its latest attempt's:
    None while initiated, then guaranteed, failed or canceled."""

    id: str
    livemode: bool
    amount: int
    currency: str
    customer: str | None
    outcome: str | None
    payment_method_type: str
    payment_reference: str | None
    description: str | None
    initiated_at: int
    guaranteed_at: int | None
    failed_at: int | None
    canceled_at: int | None
    metadata: dict[str, str]
    created: int
    amount_refunded: int
    attached_to: str | None


def check_attachable(
    invoice: Invoice, *, param: str, amount: int, currency: str, customer: str | None
) -> None:
    """Refuse a payment the invoice cannot take; `param` names the payment's parameter."""
    if invoice.status not in PAYABLE_STATUSES:
        raise PaymentStateConflict(
            f"This invoice is {invoice.status}; payments can only be attached to open or "
            "uncollectible invoices.",
            code="invoice_not_payable" if invoice.status != "draft" else "invoice_not_finalized",
        )
    if currency != invoice.currency:
        raise InvalidRequest(
            f"The payment's currency ({currency}) does not match the invoice's "
            f"currency ({invoice.currency}).",
            param=param,
        )
    if customer != invoice.customer:
        raise InvalidRequest(
            "The payment must belong to the invoice's customer "
            f"({invoice.customer}), not {customer or 'no customer'}.",
            param=param,
        )
    if amount > invoice.amount_remaining:
        raise InvalidRequest(
            f"The payment's amount ({amount}) exceeds the invoice's amount_remaining "
            f"({invoice.amount_remaining}).",
            param=param,
            code="amount_too_large",
        )


def check_payable_out_of_band(
    invoice: Invoice, open_payments: list[tuple[str, str | None]]
) -> None:
    """Refuse marking the invoice paid out of band while any of its payments is open:
    a PaymentIntent succeeding later would collect a second time."""
    if open_payments:
        named = ", ".join(
            f"{payment} (payment_intent {intent})" if intent else payment
            for payment, intent in open_payments
        )
        raise PaymentStateConflict(
            f"Invoice {invoice.id} has open invoice payments: {named}. Cancel them first "
            "(POST /v1/payment_intents/:id/cancel), then mark the invoice paid out of band.",
            param="paid_out_of_band",
            code="invoice_payment_in_progress",
        )


def received_amount(payment_intent: Mapping[str, Any]) -> int:
    """What a PaymentIntent from Stripe has collected: its `amount_received`, or, when
    Stripe left that out (None or missing), its whole amount if it succeeded. A
    succeeded PaymentIntent may have received 0; that is not "absent"."""
    received = payment_intent.get("amount_received")
    if received is not None:
        return int(received)
    return int(payment_intent["amount"]) if payment_intent["status"] == "succeeded" else 0


def amount_received(payment_intent: PaymentIntent, amount_requested: int) -> int:
    """What a succeeded PaymentIntent pays into its invoice payment, at most what was asked."""
    return min(payment_intent.amount_received, amount_requested)


def overpaid_growth(after: Invoice, credited: int) -> int:
    """How much a credit of `credited` made the invoice's amount_overpaid grow, from the
    invoice after it alone (so a stale read before it cannot count growth twice)."""
    before = money.overpaid(after.amount_due, after.amount_paid - credited)
    return after.amount_overpaid - before


def credit_events(before: Invoice, after: Invoice, *, out_of_band: bool = False) -> list[str]:
    """The invoice events one credit calls for, after `invoice_payment.paid`, in Stripe's
    order. `invoice.paid` and what follows come once, at the move to paid;
    `invoice.overpaid` then only if the invoice is overpaid ("occurs when an invoice
    transitions to paid with a non-zero amount_overpaid"). Marking paid out of band is
    no payment attempt, so it has no `invoice.payment_succeeded`. A credit of 0
    changes nothing on the invoice, so it has no invoice event."""
    if (after.amount_paid, after.status) == (before.amount_paid, before.status):
        return []
    types = ["invoice.updated"]
    if after.status == "paid" and before.status != "paid":
        types.append("invoice.paid")
        if not out_of_band:
            types.append("invoice.payment_succeeded")
        if after.amount_overpaid > 0:
            types.append("invoice.overpaid")
    return types
