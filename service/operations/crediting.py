"""Crediting: PaymentIntents mirrored from Stripe, and open invoice payments credited.

Crediting is the heart of the ledger: one transaction locks the PaymentIntent,
then the invoice, marks the invoice payment paid (only if it is still open, so a
second credit changes nothing), updates the invoice's amounts and status, credits
any overpayment to the customer's balance, and writes the events of that change.
Lock order: payment intent -> invoice -> payment -> customer.

A batch of PaymentIntent updates (a batch of inbound events) is applied set-wise,
in a few statements whatever its size: every mirror in one upsert, every open
invoice payment of those that succeeded with its invoice in one locking read, every
credit in one update. A statement changes a row once, so updates are applied in
rounds (the k-th update of each PaymentIntent in round k) and credits in steps (the
k-th credit of each invoice in step k); a batch of distinct PaymentIntents on
distinct invoices, the usual one, is one round of one step. The events come out as
applying the updates one by one, in order, would write them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from service.db import Conn
from service.domain import ledger
from service.domain.events import Event, changed_attributes, payment_intent_event_types
from service.domain.ledger import Invoice, InvoicePayment, MirroredPaymentIntent, PaymentIntent
from service.operations.balances import credit_overpayment
from service.operations.context import Caller, webhook_caller
from service.render.invoices import (
    EMBEDDED_LINES,
    render_credit_changes,
    render_invoice,
)
from service.render.payments import render_invoice_payment, render_payment_intent
from service.store import credits, inbound_events, invoice_payments, payment_intents

log = logging.getLogger(__name__)

# The inbound event's outcome when its success superseded Tally's cancel.
SUCCEEDED_AFTER_CANCEL = "breach: succeeded after Tally canceled it; not credited"


@dataclass(frozen=True, slots=True)
class Credit:
    """`amount` of the open invoice payment `inpay` to credit to its locked `invoice`
    (with the invoice's newest lines, which its events embed), on `caller`'s behalf."""

    caller: Caller
    invoice: Invoice
    line_rows: list[dict[str, Any]]
    inpay: InvoicePayment
    amount: int


def apply_payment_intent_update(
    conn: Conn,
    pi: dict[str, Any],
    *,
    now: int,
    inbound_event_id: str | None = None,
    caller: Caller | None = None,
) -> list[Event]:
    """Bring the mirror up to date with a PaymentIntent from a Stripe event, then credit
    or cancel its open invoice payments. Runs inside the caller's transaction, and
    returns the events of the change for the caller to write in it (events.add_all).
    They start with the copy's own payment_intent.* events
    (domain.events.payment_intent_event_types), carrying `caller`'s request when an API
    call fetched the PaymentIntent, nulls when a webhook or the sweeper did.

    Terminal states never move (a late `processing` after `succeeded` is ignored), a
    duplicate changes nothing, and an invoice payment is credited only while open, so
    replays change nothing and write no event. The one exception is a success for a
    copy Tally shows as canceled: see _succeeded_after_cancel.
    """
    return apply_payment_intent_updates(conn, [(pi, inbound_event_id)], now=now, caller=caller)


def apply_payment_intent_updates(
    conn: Conn,
    updates: Sequence[tuple[dict[str, Any], str | None]],
    *,
    now: int,
    caller: Caller | None = None,
) -> list[Event]:
    """apply_payment_intent_update for each (PaymentIntent, inbound event id) of
    `updates`, in order, set-wise (see the module's docstring); the events of them all,
    in that order. Every PaymentIntent is read before anything is written, so a
    malformed one raises first."""
    incoming = [_incoming(pi, now=now) for pi, _ in updates]
    written: list[list[Event]] = [[] for _ in updates]
    for indices in _rounds([row["id"] for row in incoming]):
        _apply_round(
            conn,
            [(i, incoming[i], updates[i][1]) for i in indices],
            written,
            now=now,
            caller=caller,
        )
    return [event for events in written for event in events]


def credit(
    conn: Conn, one: Credit, *, now: int, out_of_band: bool = False
) -> tuple[Invoice, list[Event]]:
    """Make one credit (credit_all)."""
    return credit_all(conn, [one], now=now, out_of_band=out_of_band)[0]


def attach_paid(
    conn: Conn,
    caller: Caller,
    invoice: Invoice,
    line_rows: list[dict[str, Any]],
    payment: dict[str, Any],
    amount: int,
    *,
    now: int,
    out_of_band: bool = False,
) -> tuple[Invoice, list[Event]]:
    """Attach to the locked `invoice` a new invoice payment (`payment`: the columns of
    invoice_payments.insert) already paid with `amount`, and credit it, in one statement
    (credits.attach_paid); its events are those of attaching it open and crediting it.
    Returns the invoice after and the events."""
    credited = credits.attach_paid(
        conn,
        payment,
        amount=amount,
        now=now,
        payable=ledger.PAYABLE_STATUSES,
        out_of_band=out_of_band,
    )
    inpay = InvoicePayment(
        **payment, amount_paid=None, status="open", paid_at=None, canceled_at=None
    )
    made = Credit(caller, invoice, line_rows, inpay, amount)
    return credited, _credit_events(conn, made, credited, now=now, out_of_band=out_of_band)


def credit_all(
    conn: Conn, batch: Sequence[Credit], *, now: int, out_of_band: bool = False
) -> list[tuple[Invoice, list[Event]]]:
    """Make the credits of `batch`, in order; what one makes amount_overpaid grow by is credited to
    the customer's balance.

    Returns, for each, the invoice after it and its events, which the caller writes
    in the same transaction (the invoice is unchanged, and there are no events, if the
    payment was not open). A second credit of an invoice sees the invoice the first
    left, as crediting one by one would.
    """
    done: list[tuple[Invoice, list[Event]] | None] = [None] * len(batch)
    pending = list(enumerate(batch))
    while pending:
        step: list[tuple[int, Credit]] = []
        later: list[tuple[int, Credit]] = []
        invoice_ids: set[str] = set()
        for i, c in pending:
            (later if c.invoice.id in invoice_ids else step).append((i, c))
            invoice_ids.add(c.invoice.id)
        after = credits.apply_credits(
            conn,
            [(c.invoice.id, c.inpay.id, c.amount) for _, c in step],
            now=now,
            payable=ledger.PAYABLE_STATUSES,
            out_of_band=out_of_band,
        )
        moved: dict[str, Invoice] = {}
        for i, c in step:
            credited = after.get(c.inpay.id)
            if credited is None:  # not open any more: already credited or canceled
                done[i] = (c.invoice, [])
                continue
            moved[credited.id] = credited
            written = _credit_events(conn, c, credited, now=now, out_of_band=out_of_band)
            done[i] = (credited, written)
        pending = [(i, replace(c, invoice=moved.get(c.invoice.id, c.invoice))) for i, c in later]
    return [result for result in done if result is not None]


def _incoming(pi: dict[str, Any], *, now: int) -> dict[str, Any]:
    """The payment_intents row a PaymentIntent from Stripe makes (apply_updates)."""
    customer = pi.get("customer")
    return {
        "id": str(pi["id"]),
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


def _rounds(ids: list[str]) -> list[list[int]]:
    """The indices of `ids` by round: the k-th occurrence of each id in round k, each
    round in order, so a round names each id at most once."""
    rounds: list[list[int]] = []
    seen: dict[str, int] = {}
    for i, pi_id in enumerate(ids):
        k = seen.get(pi_id, 0)
        seen[pi_id] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(i)
    return rounds


def _apply_round(
    conn: Conn,
    round_: list[tuple[int, dict[str, Any], str | None]],
    written: list[list[Event]],
    *,
    now: int,
    caller: Caller | None,
) -> None:
    """Apply updates of distinct PaymentIntents, each (its index in `written`, its row,
    its inbound event id); add each one's events to its entry of `written`."""
    changed = payment_intents.apply_updates(
        conn, [row for _, row, _ in round_], terminal=ledger.TERMINAL_PI_STATUSES
    )
    succeeded: dict[str, tuple[int, MirroredPaymentIntent, Caller]] = {}
    canceled: list[str] = []
    for i, row, inbound_event_id in round_:
        current = changed.get(row["id"])
        if current is None:
            # Unchanged, already succeeded or canceled, or of the other mode: nothing moved.
            continue
        who = caller or webhook_caller(current.livemode)
        snapshot = render_payment_intent(ledger.as_dict(current))
        written[i] += [
            who.event(type_, snapshot, now=now)
            for type_ in payment_intent_event_types(
                current.status, inserted=current.inserted, status_moved=current.status_moved
            )
        ]
        if current.superseded_canceled_at is not None:
            _succeeded_after_cancel(conn, current, inbound_event_id)
        elif current.status == "succeeded":
            succeeded[current.id] = (i, current, who)
        elif current.status == "canceled":
            canceled.append(current.id)
    if succeeded:
        made: list[tuple[int, Credit]] = []
        found = credits.open_payments_of_payment_intents(
            conn, sorted(succeeded), lines=EMBEDDED_LINES + 1
        )
        for inpay, invoice, line_rows in found:
            i, current, who = succeeded[str(inpay.payment_intent)]
            amount = ledger.amount_received(current, inpay.amount_requested)
            made.append((i, Credit(who, invoice, line_rows, inpay, amount)))
        made.sort(key=lambda item: item[0])  # in the order of the updates
        results = credit_all(conn, [c for _, c in made], now=now)
        for (i, _), (_, events) in zip(made, results, strict=True):
            written[i] += events
    if canceled:
        invoice_payments.cancel_open_of_payment_intents(conn, canceled, now=now)


def _succeeded_after_cancel(conn: Conn, pi: PaymentIntent, inbound_event_id: str | None) -> None:
    """A success for a PaymentIntent Tally had canceled: kept, and left to an operator.

    A canceled PaymentIntent cannot succeed at Stripe, so this one's cancel never reached
    Stripe (canceled in Tally alone) and the money arrived. Dropping the success would
    hide money that no ledger shows, so the copy has moved to succeeded, Stripe's truth
    (apply_updates), and the ledger check `canceled_payment_intent_succeeded` reports it
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


def _credit_events(
    conn: Conn, c: Credit, credited: Invoice, *, now: int, out_of_band: bool
) -> list[Event]:
    """The events of credit `c`, which left its invoice `credited`, and the overpayment's
    move of the customer's balance."""
    paid = replace(c.inpay, status="paid", amount_paid=c.amount, paid_at=now)
    written = [
        c.caller.event(
            "invoice_payment.paid", render_invoice_payment(ledger.as_dict(paid)), now=now
        )
    ]
    types = ledger.credit_events(c.invoice, credited, out_of_band=out_of_band)
    if types:
        after = render_invoice(ledger.as_dict(credited), c.line_rows)
        previous = changed_attributes(render_credit_changes(ledger.as_dict(c.invoice)), after)
        written += [
            c.caller.event(
                type_, after, now=now, previous=previous if type_ == "invoice.updated" else None
            )
            for type_ in types
        ]
    growth = ledger.overpaid_growth(credited, c.amount)
    if growth:
        written += credit_overpayment(conn, c.caller, credited, growth, now=now)
    return written
