"""Attaching a PaymentIntent or payment record to an invoice, and paying an invoice out
of band: both credit at once what has been paid (crediting.credit), in their own
transaction. Lock order: payment intent (or record) -> invoice -> payment -> customer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.adapters.upstream import Upstream
from service.db import Conn
from service.domain import invoices as invoice_rules
from service.domain import ledger
from service.domain import payment_records as record_rules
from service.domain.events import Event
from service.domain.ids import INVOICE_PAYMENT, PAYMENT_RECORD, new_id
from service.domain.ledger import LockedPaymentIntent, LockedPaymentRecord
from service.errors import InvalidRequest, NotFound, ResourceMissing
from service.operations.context import Caller
from service.operations.crediting import apply_payment_intent_update, attach_paid
from service.operations.mirror_upstream import fetch_unknown_payment_intent
from service.operations.payment_records import outcome_times
from service.render.invoices import EMBEDDED_LINES
from service.store import credits, events, invoice_payments, invoices, payment_records


@dataclass(frozen=True, slots=True)
class Attached:
    """What attach_payment did: the invoice row after it, its newest EMBEDDED_LINES + 1
    items, and whether it wrote events (none when nothing was credited or mirrored)."""

    invoice: dict[str, Any]
    line_rows: list[dict[str, Any]]
    wrote_events: bool


def attach_payment(
    conn: Conn,
    caller: Caller,
    invoice_id: str,
    *,
    payment_intent: str | None,
    payment_record: str | None,
    upstream: Upstream | None = None,
    now: int,
) -> Attached:
    """Attach a PaymentIntent or payment record to an invoice; return the invoice row and
    its newest EMBEDDED_LINES + 1 items, read with the lock (its lines are frozen: only
    a finalized invoice takes payments), so the response needs no query of its own,
    and whether events were written.

    A PaymentIntent Tally has not mirrored is fetched from `upstream` first, outside the
    transaction, and mirrored in it. A succeeded PaymentIntent or guaranteed record is
    credited at once, in the same transaction; an initiated record waits, open, for
    its attempt's outcome (report_payment_attempt_outcome). Any refusal raises before
    anything is written, or rolls the mirror back with the rest.
    """
    fetched = (
        fetch_unknown_payment_intent(conn, caller, payment_intent, upstream)
        if payment_intent is not None
        else None
    )
    written: list[Event] = []
    with conn.transaction():
        if fetched is not None:
            written += apply_payment_intent_update(conn, fetched, now=now, caller=caller)
            events.add_all(conn, written)
        payment: LockedPaymentIntent | LockedPaymentRecord | None
        # The invoice is locked after the payment (the lock order); a missing invoice is
        # a 404 whatever the body says, so it is looked up before refusing the payment.
        if payment_intent is not None:
            param = "payment_intent"
            payment, locked = credits.lock_for_attach(
                conn, payment_intent, invoice_id, caller.livemode, lines=EMBEDDED_LINES + 1
            )
        else:
            param = "payment_record"
            payment = payment_records.get_for_update(conn, str(payment_record), caller.livemode)
            locked = invoices.get_for_update_with_lines(
                conn, invoice_id, caller.livemode, lines=EMBEDDED_LINES + 1
            )
        if locked is None:
            raise NotFound(f"No such invoice: '{invoice_id}'", param="invoice")
        invoice, line_rows = locked
        if payment is None:
            raise ResourceMissing(
                f"No such {param}: '{payment_intent or payment_record}'", param=param
            )
        if isinstance(payment, LockedPaymentIntent) and payment.status == "canceled":
            raise InvalidRequest(
                "A canceled PaymentIntent cannot be attached to an invoice.",
                param=param,
                code="payment_intent_unexpected_state",
            )
        if isinstance(payment, LockedPaymentRecord) and payment.outcome in ("failed", "canceled"):
            raise InvalidRequest(
                f"A {payment.outcome} payment record cannot be attached to an invoice.",
                param=param,
                code=record_rules.UNEXPECTED_STATE,
            )
        if payment.attached_to is not None:
            raise InvalidRequest(
                f"This {param} is already attached to invoice {payment.attached_to}.",
                param=param,
                code="invoice_payment_already_attached",
            )
        ledger.check_attachable(
            invoice,
            param=param,
            amount=payment.amount,
            currency=payment.currency,
            customer=payment.customer,
        )
        # The payment's row lock makes this insert the only one for it.
        inpay = {
            "id": new_id(INVOICE_PAYMENT),
            "livemode": caller.livemode,
            "invoice": invoice_id,
            "payment_intent": payment_intent,
            "payment_record": payment_record,
            "currency": payment.currency,
            "amount_requested": payment.amount,
            "created": now,
        }
        amount: int | None = None
        if isinstance(payment, LockedPaymentIntent) and payment.status == "succeeded":
            amount = ledger.amount_received(payment, payment.amount)
        elif isinstance(payment, LockedPaymentRecord) and payment.outcome == "guaranteed":
            amount = payment.amount
        if amount is None:
            invoice_payments.insert(conn, inpay)  # open, until its payment ends
        else:
            invoice, paid = attach_paid(conn, caller, invoice, line_rows, inpay, amount, now=now)
            events.add_all(conn, paid)
            written += paid
    return Attached(ledger.as_dict(invoice), line_rows, wrote_events=bool(written))


def pay_out_of_band(conn: Conn, caller: Caller, invoice_id: str, *, now: int) -> dict[str, Any]:
    """Open or uncollectible → paid outside Stripe; return the invoice row.

    What remains is recorded as a guaranteed payment record attached to the invoice
    and credited, so amount_paid = amount_due and amount_paid stays the sum of the
    invoice's paid payments. Refused, with nothing written, while any payment of the
    invoice is open. Events: `invoice_payment.paid`, `invoice.updated`, `invoice.paid`.
    """
    with conn.transaction():
        locked = invoices.get_for_update_with_lines(
            conn, invoice_id, caller.livemode, lines=EMBEDDED_LINES + 1
        )
        if locked is None:
            raise NotFound(f"No such invoice: '{invoice_id}'", param="id")
        invoice, line_rows = locked
        invoice_rules.PAY.check(invoice.status)
        ledger.check_payable_out_of_band(
            invoice, invoice_payments.open_for_invoice(conn, invoice_id)
        )
        record = payment_records.insert(
            conn,
            {
                "id": new_id(PAYMENT_RECORD),
                "livemode": caller.livemode,
                "amount": invoice.amount_remaining,
                "currency": invoice.currency,
                "customer": invoice.customer,
                "outcome": "guaranteed",
                "payment_method_type": "custom",
                "payment_reference": None,
                "description": f"Invoice {invoice_id} paid out of band",
                "initiated_at": now,
                **outcome_times("guaranteed", now, now=now),
                "metadata": {},
                "created": now,
            },
        )
        inpay = {
            "id": new_id(INVOICE_PAYMENT),
            "livemode": caller.livemode,
            "invoice": invoice_id,
            "payment_intent": None,
            "payment_record": record["id"],
            "currency": invoice.currency,
            "amount_requested": record["amount"],
            "created": now,
        }
        invoice, written = attach_paid(
            conn, caller, invoice, line_rows, inpay, record["amount"], now=now, out_of_band=True
        )
        events.add_all(conn, written)
    return ledger.as_dict(invoice)
