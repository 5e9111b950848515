"""A payment record's lifecycle, as Stripe's Payment Records have it.

Stripe: "You may report a Payment Record as it is initialized and later report updates
through the other report_* methods, or report Payment Records in a terminal state
directly". A record's latest payment attempt is initiated (outcome None) until it is
reported guaranteed, failed or canceled; only a guaranteed attempt is money received.
"""

from __future__ import annotations

from service.domain.ledger import LockedPaymentRecord
from service.errors import InvalidRequest

# The outcomes that end an attempt.
OUTCOMES = ("guaranteed", "failed", "canceled")

UNEXPECTED_STATE = "payment_record_unexpected_state"


def state(record: LockedPaymentRecord) -> str:
    """The latest attempt's state, as messages name it."""
    return record.outcome or "initiated"


def check_outcome_report(record: LockedPaymentRecord, outcome: str) -> None:
    """report_payment_attempt_{guaranteed,failed,canceled} ends the latest attempt, so it
    must still be initiated. Stripe's report_payment_attempt_failed returns "an error
    (for example, if the latest Payment Attempt Record is already guaranteed)"."""
    if record.outcome is not None:
        raise InvalidRequest(
            f"The latest payment attempt of payment record {record.id} is already "
            f"{record.outcome}; only an initiated attempt can be reported {outcome}.",
            param=f"{outcome}_at",
            code=UNEXPECTED_STATE,
        )


def check_new_attempt(record: LockedPaymentRecord) -> None:
    """Stripe: "A new payment attempt can only be specified if all other payment
    attempts are canceled or failed." An attached record's failed or canceled attempt
    canceled its invoice payment for good, so a new attempt could never reach that
    invoice: it is refused rather than leaving money received that no invoice shows."""
    if record.outcome not in ("failed", "canceled"):
        raise InvalidRequest(
            f"The latest payment attempt of payment record {record.id} is "
            f"{state(record)}; a new attempt can only be reported once it failed or was "
            "canceled.",
            param="initiated_at",
            code=UNEXPECTED_STATE,
        )
    if record.attached_to is not None:
        raise InvalidRequest(
            f"Payment record {record.id} is attached to invoice {record.attached_to}, whose "
            f"payment was canceled when its attempt {record.outcome}. Report a new payment "
            "record and attach it instead.",
            param="initiated_at",
            code=UNEXPECTED_STATE,
        )


def refund_amount(record: LockedPaymentRecord, value: int | None, currency: str | None) -> int:
    """What a reported refund takes back: `value`, or all that is not refunded yet.
    Stripe: "Can refund only up to the remaining, unrefunded amount of the payment."
    Only a guaranteed payment was received, so only it can be refunded."""
    if record.outcome != "guaranteed":
        raise InvalidRequest(
            f"Payment record {record.id} is {state(record)}; only a guaranteed payment can "
            "be refunded.",
            param="outcome",
            code=UNEXPECTED_STATE,
        )
    if currency is not None and currency != record.currency:
        raise InvalidRequest(
            f"The refund's currency ({currency}) does not match the payment record's "
            f"currency ({record.currency}).",
            param="amount[currency]",
        )
    refundable = record.amount - record.amount_refunded
    amount = refundable if value is None else value
    if amount <= 0 or amount > refundable:
        raise InvalidRequest(
            f"The refund's amount ({amount}) must be positive and at most the unrefunded "
            f"amount of payment record {record.id} ({refundable}).",
            param="amount[value]" if value is not None else "amount",
            code="amount_too_large" if amount > refundable else None,
        )
    return amount
