"""PaymentIntent mirrors, payment records, attach_payment and crediting.

Crediting is the heart of the ledger: one transaction locks the PaymentIntent,
then the invoice, marks the invoice payment paid (only if it is still open, so a
second credit changes nothing), updates the invoice's amounts and status, credits
any overpayment to the customer's balance, and writes the events of that change.
Lock order: payment intent -> invoice -> payment -> customer.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from typing import Any

import psycopg

from service.adapters.upstream import Upstream
from service.domain import invoices as invoice_rules
from service.domain import ledger
from service.domain import payment_records as record_rules
from service.domain.events import Event, changed_attributes, payment_intent_event_types
from service.domain.ids import INVOICE_PAYMENT, PAYMENT_INTENT, PAYMENT_RECORD, new_id
from service.domain.ledger import (
    Invoice,
    InvoicePayment,
    LockedPaymentIntent,
    LockedPaymentRecord,
    PaymentIntent,
)
from service.domain.metadata import merge_metadata
from service.errors import InvalidRequest, NotFound, PaymentStateConflict, ResourceMissing
from service.operations.balances import credit_overpayment
from service.operations.context import Caller, webhook_caller
from service.operations.mirror_upstream import (
    fetch_unknown_customer,
    fetch_unknown_payment_intent,
    mirror_customer,
)
from service.render.invoices import (
    EMBEDDED_LINES,
    render_credit_changes,
    render_invoice,
)
from service.render.payments import render_invoice_payment, render_payment_intent
from service.store import (
    customers,
    events,
    inbound_events,
    invoice_payments,
    invoices,
    payment_intents,
    payment_records,
)

log = logging.getLogger(__name__)

# The inbound event's outcome when its success superseded Tally's cancel.
SUCCEEDED_AFTER_CANCEL = "breach: succeeded after Tally canceled it; not credited"


def create_payment_intent(
    conn: psycopg.Connection[Any],
    caller: Caller,
    params: dict[str, Any],
    *,
    upstream: Upstream | None = None,
    now: int,
) -> dict[str, Any]:
    """Mirror a new PaymentIntent awaiting its payment method; `payment_intent.created`.
    A customer Tally has not seen is fetched from `upstream` first and mirrored with it,
    in one transaction."""
    customer = params.get("customer")
    fetched = fetch_unknown_customer(conn, caller, customer, upstream) if customer else None
    with conn.transaction():
        mirror_customer(conn, caller, fetched, now=now)
        if customer and customers.get_billable(conn, customer, caller.livemode) is None:
            raise ResourceMissing(f"No such customer: '{customer}'", param="customer")
        row = payment_intents.insert(
            conn,
            {
                "id": new_id(PAYMENT_INTENT),
                "livemode": caller.livemode,
                "amount": params["amount"],
                "amount_received": 0,
                "currency": params["currency"],
                "customer": customer,
                "description": params.get("description"),
                "status": "requires_payment_method",
                "cancellation_reason": None,
                "canceled_at": None,
                "metadata": params.get("metadata") or {},
                "created": now,
            },
        )
        events.add(
            conn, caller.event("payment_intent.created", render_payment_intent(row), now=now)
        )
    return row


def cancel_payment_intent(
    conn: psycopg.Connection[Any],
    caller: Caller,
    pi_id: str,
    *,
    reason: str | None,
    upstream: Upstream | None = None,
    now: int,
) -> dict[str, Any]:
    """Cancel a PaymentIntent that has not succeeded, and its open invoice payment, with
    `payment_intent.canceled` carrying the caller's request (Stripe's answer's, mirrored,
    for one Stripe owns).

    One that Stripe owns (mirrored from it) is canceled at Stripe first, when upstream is
    configured, and the copy is canceled only once Stripe has confirmed, by mirroring what
    Stripe answered: a copy canceled alone would leave the real one free to collect money
    that Tally would then not credit. Stripe failing or slow raises UpstreamUnavailable
    (503) and Stripe refusing raises UpstreamRefused with Stripe's error, both before
    anything is written; Stripe's new state then reaches the copy as its webhook does.
    Without upstream, or for Tally's own PaymentIntents, the cancel is Tally's alone.
    """
    pi = payment_intents.get(conn, pi_id, caller.livemode)
    if pi is None:
        raise NotFound(f"No such payment_intent: '{pi_id}'", param="intent")
    _check_cancelable(pi["status"])
    canceled_upstream = None
    if upstream is not None and pi["origin"] == "stripe":
        # Asked before the transaction: no row is locked while Stripe answers.
        canceled_upstream = upstream.cancel_payment_intent(
            pi_id,
            reason=reason,
            livemode=caller.livemode,
            idempotency_key=_upstream_idempotency_key(caller, pi_id),
        )
    with conn.transaction():
        if canceled_upstream is not None:
            events.add_all(
                conn, apply_payment_intent_update(conn, canceled_upstream, now=now, caller=caller)
            )
        locked = payment_intents.get_for_update(conn, pi_id, caller.livemode)
        if locked is None:
            raise NotFound(f"No such payment_intent: '{pi_id}'", param="intent")
        if canceled_upstream is not None:
            return ledger.as_dict(locked)  # Stripe's cancel, mirrored
        _check_cancelable(locked.status)
        row = payment_intents.update_state(
            conn,
            {
                **ledger.as_dict(locked),
                "status": "canceled",
                "cancellation_reason": reason,
                "canceled_at": now,
            },
        )
        _cancel_open_payments(conn, pi_id, now=now)
        events.add(
            conn, caller.event("payment_intent.canceled", render_payment_intent(row), now=now)
        )
    return row


def _check_cancelable(status: str) -> None:
    if status in ("succeeded", "canceled", "processing"):
        raise PaymentStateConflict(
            f"You cannot cancel this PaymentIntent because it has a status of {status}.",
            code="payment_intent_unexpected_state",
        )


def _upstream_idempotency_key(caller: Caller, pi_id: str) -> str | None:
    """Stripe's Idempotency-Key for the cancel, derived from the caller's: when Stripe
    canceled but its answer never reached Tally (a timeout, so a 503), the caller's retry
    with the same key gets Stripe's saved answer, the canceled PaymentIntent, instead of
    a refusal to cancel a canceled one. Hashed: Stripe's keys are at most 255 characters."""
    if caller.idempotency_key is None:
        return None
    digest = hashlib.sha256(f"{pi_id}\n{caller.idempotency_key}".encode()).hexdigest()
    return f"tally-cancel-{digest}"


def report_payment(
    conn: psycopg.Connection[Any], caller: Caller, params: dict[str, Any], *, now: int
) -> dict[str, Any]:
    """Record a payment made outside Stripe: its first attempt initiated (`outcome`
    None; later reports end it) or already guaranteed, failed or canceled."""
    outcome = params.get("outcome")
    return payment_records.insert(
        conn,
        {
            "id": new_id(PAYMENT_RECORD),
            "livemode": caller.livemode,
            "amount": params["amount"],
            "currency": params["currency"],
            "customer": params.get("customer"),
            "outcome": outcome,
            "payment_method_type": params.get("payment_method_type") or "custom",
            "payment_reference": params.get("payment_reference"),
            "description": params.get("description"),
            "initiated_at": params["initiated_at"],
            **_outcome_times(outcome, params.get("outcome_at"), now=now),
            "metadata": params.get("metadata") or {},
            "created": now,
        },
    )


def _outcome_times(outcome: str | None, at: int | None, *, now: int) -> dict[str, int | None]:
    """The attempt's guaranteed_at, failed_at and canceled_at: `at` (now if not given)
    for its outcome, None for the others."""
    return {
        f"{name}_at": (at or now) if name == outcome else None for name in record_rules.OUTCOMES
    }


def report_payment_attempt(
    conn: psycopg.Connection[Any],
    caller: Caller,
    record_id: str,
    params: dict[str, Any],
    *,
    now: int,
) -> dict[str, Any]:
    """A new attempt on a record whose latest attempt failed or was canceled: initiated,
    or already ended with `outcome`. The record is not attached (check_new_attempt)."""
    with conn.transaction():
        record = _locked_record(conn, caller, record_id)
        record_rules.check_new_attempt(record)
        outcome = params.get("outcome")
        return payment_records.update(
            conn,
            {
                **ledger.as_dict(record),
                "outcome": outcome,
                "initiated_at": params["initiated_at"],
                **_outcome_times(outcome, params.get("outcome_at"), now=now),
                "payment_method_type": params.get("payment_method_type")
                or record.payment_method_type,
                "description": params.get("description", record.description),
                "metadata": _merged(record, params.get("metadata")),
            },
        )


def report_payment_attempt_outcome(
    conn: psycopg.Connection[Any],
    caller: Caller,
    record_id: str,
    outcome: str,
    *,
    at: int,
    metadata: dict[str, str] | None,
    now: int,
) -> dict[str, Any]:
    """End a record's initiated attempt as guaranteed, failed or canceled.

    If the record is attached, its open invoice payment moves in the same transaction:
    guaranteed credits it exactly as a PaymentIntent's success does (same events; the
    record's lock and apply_credit's `status = 'open'` guard make a second credit
    impossible); failed or canceled cancels it. Lock order: record -> invoice.
    """
    with conn.transaction():
        record = _locked_record(conn, caller, record_id)
        record_rules.check_outcome_report(record, outcome)
        row = payment_records.update(
            conn,
            {
                **ledger.as_dict(record),
                "outcome": outcome,
                f"{outcome}_at": at,
                "metadata": _merged(record, metadata),
            },
        )
        if record.attached_to is not None:
            found = invoices.open_payment_of_payment_record(
                conn, record.id, lines=EMBEDDED_LINES + 1
            )
            if found is not None:
                inpay, invoice, line_rows = found
                if outcome == "guaranteed":
                    credit = min(record.amount, inpay.amount_requested)
                    written = _credit(conn, caller, invoice, line_rows, inpay, credit, now=now)[1]
                    events.add_all(conn, written)
                else:
                    invoice_payments.mark_canceled(conn, inpay.id, now=now)
    return row


def report_payment_informational(
    conn: psycopg.Connection[Any],
    caller: Caller,
    record_id: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Update what a record says about its payment (description, customer, metadata);
    its amounts and attempts do not move. An attached record keeps its invoice's
    customer."""
    with conn.transaction():
        record = _locked_record(conn, caller, record_id)
        customer = params.get("customer", record.customer)
        if customer != record.customer:
            if customers.get_billable(conn, str(customer), caller.livemode) is None:
                raise ResourceMissing(
                    f"No such customer: '{customer}'", param="customer_details[customer]"
                )
            if record.attached_to is not None:
                raise InvalidRequest(
                    f"Payment record {record.id} is attached to invoice {record.attached_to}"
                    " and must keep that invoice's customer.",
                    param="customer_details[customer]",
                )
        description = params.get("description", record.description)
        return payment_records.update(
            conn,
            {
                **ledger.as_dict(record),
                "customer": customer,
                "description": description or None,  # "" clears it, as in Stripe
                "metadata": _merged(record, params.get("metadata")),
            },
        )


def report_refund(
    conn: psycopg.Connection[Any],
    caller: Caller,
    record_id: str,
    params: dict[str, Any],
    *,
    now: int,
) -> dict[str, Any]:
    """Record a refund of a guaranteed record. It is recorded on the record only
    (amount_refunded): as in Stripe, a refund does not reopen a paid invoice or
    change what it was paid."""
    with conn.transaction():
        record = _locked_record(conn, caller, record_id)
        amount = record_rules.refund_amount(record, params.get("amount"), params.get("currency"))
        reference = params.get("refund_reference")
        if reference is not None and payment_records.refund_reference_taken(
            conn, caller.livemode, reference
        ):
            raise InvalidRequest(
                f"A refund with refund_reference '{reference}' was already reported.",
                param="processor_details[custom][refund_reference]",
            )
        payment_records.insert_refund(
            conn,
            {
                "payment_record": record.id,
                "livemode": caller.livemode,
                "amount": amount,
                "currency": record.currency,
                "refund_reference": reference,
                "initiated_at": params.get("initiated_at"),
                "refunded_at": params.get("refunded_at") or now,
                "created": now,
            },
        )
        return payment_records.update(
            conn,
            {**ledger.as_dict(record), "metadata": _merged(record, params.get("metadata"))},
        )


def _locked_record(
    conn: psycopg.Connection[Any], caller: Caller, record_id: str
) -> LockedPaymentRecord:
    record = payment_records.get_for_update(conn, record_id, caller.livemode)
    if record is None:
        raise NotFound(f"No such payment_record: '{record_id}'", param="id")
    return record


def _merged(record: LockedPaymentRecord, metadata: dict[str, str] | None) -> dict[str, str]:
    return record.metadata if metadata is None else merge_metadata(record.metadata, metadata)


def attach_payment(
    conn: psycopg.Connection[Any],
    caller: Caller,
    invoice_id: str,
    *,
    payment_intent: str | None,
    payment_record: str | None,
    upstream: Upstream | None = None,
    now: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Attach a PaymentIntent or payment record to an invoice; return the invoice row and
    its newest EMBEDDED_LINES + 1 items, read with the lock (its lines are frozen: only
    a finalized invoice takes payments), so the response needs no query of its own.

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
    with conn.transaction():
        if fetched is not None:
            events.add_all(conn, apply_payment_intent_update(conn, fetched, now=now, caller=caller))
        payment: LockedPaymentIntent | LockedPaymentRecord | None
        if payment_intent is not None:
            param = "payment_intent"
            payment = payment_intents.get_for_update(conn, payment_intent, caller.livemode)
        else:
            param = "payment_record"
            payment = payment_records.get_for_update(conn, str(payment_record), caller.livemode)
        # Locked after the payment (the lock order); a missing invoice is a 404
        # whatever the body says, so it is looked up before refusing the payment.
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
        inpay = invoice_payments.insert(
            conn,
            {
                "id": new_id(INVOICE_PAYMENT),
                "livemode": caller.livemode,
                "invoice": invoice_id,
                "payment_intent": payment_intent,
                "payment_record": payment_record,
                "currency": payment.currency,
                "amount_requested": payment.amount,
                "created": now,
            },
        )
        credit: int | None = None
        if isinstance(payment, LockedPaymentIntent) and payment.status == "succeeded":
            credit = ledger.amount_received(payment, payment.amount)
        elif isinstance(payment, LockedPaymentRecord) and payment.outcome == "guaranteed":
            credit = payment.amount
        if credit is not None:
            invoice, written = _credit(conn, caller, invoice, line_rows, inpay, credit, now=now)
            events.add_all(conn, written)
    return ledger.as_dict(invoice), line_rows


def pay_out_of_band(
    conn: psycopg.Connection[Any], caller: Caller, invoice_id: str, *, now: int
) -> dict[str, Any]:
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
                **_outcome_times("guaranteed", now, now=now),
                "metadata": {},
                "created": now,
            },
        )
        inpay = invoice_payments.insert(
            conn,
            {
                "id": new_id(INVOICE_PAYMENT),
                "livemode": caller.livemode,
                "invoice": invoice_id,
                "payment_intent": None,
                "payment_record": record["id"],
                "currency": invoice.currency,
                "amount_requested": record["amount"],
                "created": now,
            },
        )
        invoice, written = _credit(
            conn, caller, invoice, line_rows, inpay, record["amount"], now=now, out_of_band=True
        )
        events.add_all(conn, written)
    return ledger.as_dict(invoice)


def apply_payment_intent_update(
    conn: psycopg.Connection[Any],
    pi: dict[str, Any],
    *,
    now: int,
    inbound_event_id: str | None = None,
    caller: Caller | None = None,
) -> list[Event]:
    """Bring the mirror up to date with a PaymentIntent from a Stripe event, then credit
    or cancel its open invoice payments. Runs inside the caller's transaction, and
    returns the events of the change for the caller to write in it (events.add_all):
    a batch of inbound events writes all of theirs in one statement. They start with
    the copy's own payment_intent.* events (domain.events.payment_intent_event_types),
    carrying `caller`'s request when an API call fetched the PaymentIntent, nulls when
    a webhook or the sweeper did.

    Terminal states never move (a late `processing` after `succeeded` is ignored), a
    duplicate changes nothing, and an invoice payment is credited only while open, so
    replays change nothing and write no event. The one exception is a success for a
    copy Tally shows as canceled: see _succeeded_after_cancel.
    """
    customer = pi.get("customer")
    incoming = {
        "id": pi["id"],
        "livemode": bool(pi.get("livemode", False)),
        "amount": int(pi["amount"]),
        "amount_received": ledger.received_amount(pi),
        "currency": str(pi["currency"]).lower(),
        "customer": customer.get("id") if isinstance(customer, dict) else customer,
        "description": pi.get("description"),
        "status": str(pi["status"]),
        "cancellation_reason": pi.get("cancellation_reason"),
        "canceled_at": pi.get("canceled_at"),
        "metadata": pi.get("metadata") or {},
        "created": int(pi.get("created") or now),
    }
    current = payment_intents.apply_update(conn, incoming, terminal=ledger.TERMINAL_PI_STATUSES)
    if current is None:
        # Unchanged, already succeeded or canceled, or of the other mode: nothing moved.
        return []
    caller = caller or webhook_caller(current.livemode)
    snapshot = render_payment_intent(ledger.as_dict(current))
    written = [
        caller.event(type_, snapshot, now=now)
        for type_ in payment_intent_event_types(
            current.status, inserted=current.inserted, status_moved=current.status_moved
        )
    ]
    if current.superseded_canceled_at is not None:
        _succeeded_after_cancel(conn, current, inbound_event_id)
    elif current.status == "succeeded":
        found = invoices.open_payment_of_payment_intent(conn, current.id, lines=EMBEDDED_LINES + 1)
        if found is not None:
            inpay, invoice, line_rows = found
            amount = ledger.amount_received(current, inpay.amount_requested)
            written += _credit(conn, caller, invoice, line_rows, inpay, amount, now=now)[1]
    elif current.status == "canceled":
        _cancel_open_payments(conn, current.id, now=now)
    return written


def _succeeded_after_cancel(
    conn: psycopg.Connection[Any], pi: PaymentIntent, inbound_event_id: str | None
) -> None:
    """A success for a PaymentIntent Tally had canceled: kept, and left to an operator.

    A canceled PaymentIntent cannot succeed at Stripe, so this one's cancel never reached
    Stripe (canceled in Tally alone) and the money arrived. Dropping the success would
    hide money that no ledger shows, so the copy has moved to succeeded, Stripe's truth
    (apply_update), and the ledger check `canceled_payment_intent_succeeded` reports it
    (`tally audit`, the breach metric) while its money is on no invoice. Its canceled
    invoice payment is not credited: the invoice may have been paid since, by another
    PaymentIntent or out of band, and crediting it now could count the customer's money
    twice; whether to credit, refund or re-bill is the operator's call. Unattached, it
    can be attached now like any succeeded PaymentIntent, which credits it.
    """
    log.error(
        "LEDGER BREACH: payment_intent %s succeeded at Stripe after Tally canceled it at %s;"
        " not credited (see tally audit)",
        pi.id,
        pi.superseded_canceled_at,
    )
    if inbound_event_id is not None:
        inbound_events.note_outcome(conn, inbound_event_id, SUCCEEDED_AFTER_CANCEL)


def _cancel_open_payments(conn: psycopg.Connection[Any], pi_id: str, *, now: int) -> None:
    for inpay in invoice_payments.open_for_payment_intent(conn, pi_id):
        invoice_payments.mark_canceled(conn, inpay.id, now=now)


def _credit(
    conn: psycopg.Connection[Any],
    caller: Caller,
    invoice: Invoice,
    line_rows: list[dict[str, Any]],
    inpay: InvoicePayment,
    amount: int,
    *,
    now: int,
    out_of_band: bool = False,
) -> tuple[Invoice, list[Event]]:
    """Credit `amount` of an open invoice payment to its locked invoice; what it makes
    amount_overpaid grow by is credited to the customer's balance.

    Returns the invoice after the change and the change's events, which the caller
    writes in the same transaction (the invoice is unchanged, and there are no events,
    if the payment was not open).
    """
    credited = invoices.apply_credit(
        conn,
        invoice.id,
        inpay.id,
        amount=amount,
        now=now,
        payable=ledger.PAYABLE_STATUSES,
        out_of_band=out_of_band,
    )
    if credited is None:
        return invoice, []  # not open any more: already credited or canceled
    paid = replace(inpay, status="paid", amount_paid=amount, paid_at=now)
    written = [
        caller.event("invoice_payment.paid", render_invoice_payment(ledger.as_dict(paid)), now=now)
    ]
    types = ledger.credit_events(invoice, credited, out_of_band=out_of_band)
    if types:
        after = render_invoice(ledger.as_dict(credited), line_rows)
        previous = changed_attributes(render_credit_changes(ledger.as_dict(invoice)), after)
        written += [
            caller.event(
                type_, after, now=now, previous=previous if type_ == "invoice.updated" else None
            )
            for type_ in types
        ]
    growth = ledger.overpaid_growth(credited, amount)
    if growth:
        written += credit_overpayment(conn, caller, credited, growth, now=now)
    return credited, written
