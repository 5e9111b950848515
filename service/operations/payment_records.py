"""Payment records: payments made outside Stripe, reported through the API, their
attempts, outcomes and refunds. A guaranteed outcome of an attached record credits its
invoice payment as a PaymentIntent's success does (crediting.credit)."""

from __future__ import annotations

from typing import Any

from service.db import Conn
from service.domain import ledger
from service.domain import payment_records as record_rules
from service.domain.ids import PAYMENT_RECORD, new_id
from service.domain.ledger import LockedPaymentRecord
from service.domain.metadata import merge_metadata
from service.errors import InvalidRequest, NotFound, ResourceMissing
from service.operations.context import Caller
from service.operations.crediting import Credit, credit
from service.render.invoices import EMBEDDED_LINES
from service.store import credits, customers, events, invoice_payments, payment_records


def report_payment(
    conn: Conn, caller: Caller, params: dict[str, Any], *, now: int
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
            **outcome_times(outcome, params.get("outcome_at"), now=now),
            "metadata": params.get("metadata") or {},
            "created": now,
        },
    )


def outcome_times(outcome: str | None, at: int | None, *, now: int) -> dict[str, int | None]:
    """The attempt's guaranteed_at, failed_at and canceled_at: `at` (now if not given)
    for its outcome, None for the others."""
    return {
        f"{name}_at": (at or now) if name == outcome else None for name in record_rules.OUTCOMES
    }


def report_payment_attempt(
    conn: Conn, caller: Caller, record_id: str, params: dict[str, Any], *, now: int
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
                **outcome_times(outcome, params.get("outcome_at"), now=now),
                "payment_method_type": params.get("payment_method_type")
                or record.payment_method_type,
                "description": params.get("description", record.description),
                "metadata": _merged(record, params.get("metadata")),
            },
        )


def report_payment_attempt_outcome(
    conn: Conn,
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
    record's lock and apply_credits' `status = 'open'` guard make a second credit
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
            found = credits.open_payment_of_payment_record(
                conn, record.id, lines=EMBEDDED_LINES + 1
            )
            if found is not None:
                inpay, invoice, line_rows = found
                if outcome == "guaranteed":
                    amount = min(record.amount, inpay.amount_requested)
                    made = Credit(caller, invoice, line_rows, inpay, amount)
                    events.add_all(conn, credit(conn, made, now=now)[1])
                else:
                    invoice_payments.mark_canceled(conn, inpay.id, now=now)
    return row


def report_payment_informational(
    conn: Conn, caller: Caller, record_id: str, params: dict[str, Any]
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
    conn: Conn, caller: Caller, record_id: str, params: dict[str, Any], *, now: int
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


def _locked_record(conn: Conn, caller: Caller, record_id: str) -> LockedPaymentRecord:
    record = payment_records.get_for_update(conn, record_id, caller.livemode)
    if record is None:
        raise NotFound(f"No such payment_record: '{record_id}'", param="id")
    return record


def _merged(record: LockedPaymentRecord, metadata: dict[str, str] | None) -> dict[str, str]:
    return record.metadata if metadata is None else merge_metadata(record.metadata, metadata)
