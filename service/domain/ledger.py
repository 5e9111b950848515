"""The invoice ledger's rules: what may be attached, and what a credit does."""

from __future__ import annotations

from dataclasses import dataclass

from service.domain.money import overpaid, remaining
from service.errors import InvalidRequest, PaymentStateConflict

# Invoices that can still take payments.
PAYABLE_STATUSES = ("open", "uncollectible")

# PaymentIntent statuses no later event moves it from (Stripe's terminal states): a
# late `processing` after `succeeded` is ignored.
TERMINAL_PI_STATUSES = ("succeeded", "canceled")


@dataclass(frozen=True, slots=True)
class Credit:
    """The invoice after crediting one payment."""

    amount_paid: int
    status: str
    paid_at: int | None
    became_paid: bool
    newly_overpaid: bool


def check_attachable(
    invoice: dict[str, object],
    *,
    param: str,
    amount: int,
    currency: str,
    customer: str | None,
) -> None:
    """Refuse a payment the invoice cannot take; `param` names the payment's parameter."""
    status = invoice["status"]
    if status not in PAYABLE_STATUSES:
        raise PaymentStateConflict(
            f"This invoice is {status}; payments can only be attached to open or "
            "uncollectible invoices.",
            code="invoice_not_payable" if status != "draft" else "invoice_not_finalized",
        )
    if currency != invoice["currency"]:
        raise InvalidRequest(
            f"The payment's currency ({currency}) does not match the invoice's "
            f"currency ({invoice['currency']}).",
            param=param,
        )
    if customer != invoice["customer"]:
        raise InvalidRequest(
            "The payment must belong to the invoice's customer "
            f"({invoice['customer']}), not {customer or 'no customer'}.",
            param=param,
        )
    left = remaining(int(invoice["total"]), int(invoice["amount_paid"]))  # type: ignore[call-overload]
    if amount > left:
        raise InvalidRequest(
            f"The payment's amount ({amount}) exceeds the invoice's amount_remaining ({left}).",
            param=param,
            code="amount_too_large",
        )


def credit(invoice: dict[str, object], amount: int, *, now: int) -> Credit:
    """Add `amount` to the invoice; it becomes paid when nothing remains."""
    total = int(invoice["total"])  # type: ignore[call-overload]
    before = int(invoice["amount_paid"])  # type: ignore[call-overload]
    after = before + amount
    status = str(invoice["status"])
    becomes_paid = status in PAYABLE_STATUSES and remaining(total, after) == 0
    return Credit(
        amount_paid=after,
        status="paid" if becomes_paid else status,
        paid_at=now if becomes_paid else invoice["paid_at"],  # type: ignore[arg-type]
        became_paid=becomes_paid,
        newly_overpaid=overpaid(total, after) > overpaid(total, before),
    )


def amount_received(payment_intent: dict[str, object], amount_requested: int) -> int:
    """What a succeeded PaymentIntent pays into its invoice payment, at most what was asked."""
    received = int(payment_intent.get("amount_received") or payment_intent["amount"])  # type: ignore[call-overload]
    return min(received, amount_requested)
