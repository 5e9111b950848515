"""Invoices: create, update and delete a draft, and the moves of Stripe's lifecycle.

Every use case runs in one transaction. Those that change an invoice lock its row
first (`operations.invoicing.locked_invoice`), then touch its items or read its
payments, and write their events in the same transaction. A refusal raises before
anything is written, so the rollback leaves nothing behind. Paying is in
operations.payments; invoice items are in operations.invoice_items.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from service.adapters.upstream import Upstream
from service.db import Conn
from service.domain import invoices as rules
from service.domain.events import Event, changed_attributes
from service.domain.ids import INVOICE, INVOICE_LINE, new_id
from service.domain.invoices import InvoiceItem
from service.domain.ledger import Invoice
from service.domain.metadata import merge_metadata
from service.domain.money import DEFAULT_CURRENCY, amount_due
from service.errors import InvalidRequest, ResourceMissing
from service.operations import balances
from service.operations.billing import billing
from service.operations.context import Caller
from service.operations.invoicing import invoice_object, locked_invoice
from service.render.customers import render_customer
from service.render.invoices import render_invoice_item
from service.store import customers, events, invoice_items, invoices

DAY = 86_400


def create_invoice(
    conn: Conn,
    caller: Caller,
    params: dict[str, Any],
    *,
    upstream: Upstream | None = None,
    now: int,
) -> Invoice:
    """Create a draft invoice; with `pending_invoice_items_behavior=include` the customer's
    pending items in its currency become its lines. Writes `invoice.created`, then
    `invoiceitem.updated` (previous `invoice` null) for each item it took. A customer
    Tally has not seen is fetched from `upstream` and mirrored with it."""
    collection_method = params.get("collection_method") or "charge_automatically"
    due_date = _due_date(params, collection_method, created=now)
    with billing(conn, caller, params["customer"], upstream, now=now) as customer:
        currency = (
            params.get("currency")
            or invoice_items.latest_pending_currency(conn, customer.id, caller.livemode)
            or DEFAULT_CURRENCY
        )
        invoice = invoices.insert(
            conn,
            {
                "id": new_id(INVOICE),
                "livemode": caller.livemode,
                "customer": customer.id,
                "currency": currency,
                "description": params.get("description"),
                "footer": params.get("footer"),
                "metadata": params.get("metadata") or {},
                "auto_advance": bool(params.get("auto_advance", False)),
                "collection_method": collection_method,
                "due_date": due_date,
                "customer_email": customer.email,
                "customer_name": customer.name,
                "created": now,
            },
        )
        bound: list[InvoiceItem] = []
        if params.get("pending_invoice_items_behavior") == "include":
            pending = invoice_items.pending_ids_for_update(
                conn, customer.id, currency, caller.livemode
            )
            if pending:
                bound = invoice_items.bind(
                    conn, invoice.id, {item: new_id(INVOICE_LINE) for item in pending}
                )
                invoice = invoices.refresh_total(conn, invoice.id)
        written = [caller.event("invoice.created", invoice_object(conn, invoice), now=now)]
        written += [
            caller.event(
                "invoiceitem.updated",
                render_invoice_item(item),
                now=now,
                previous={"invoice": None},
            )
            for item in bound
        ]
        events.add_all(conn, written)
    return invoice


def delete_invoice(conn: Conn, caller: Caller, invoice_id: str, *, now: int) -> None:
    """Delete a draft for good; a finalized invoice is refused (it can be voided).

    Its items are not lost with it: they become pending again, for the customer's next
    invoice, each with `invoiceitem.updated` (previous `invoice`); then `invoice.deleted`
    carries the draft as it was. A draft has no payments and no balance transactions
    (both come with finalizing), so nothing else refers to it.
    """
    with conn.transaction():
        invoice = locked_invoice(conn, caller, invoice_id)
        rules.DELETE.check(invoice.status)
        last = invoice_object(conn, invoice)
        written = [
            caller.event(
                "invoiceitem.updated",
                render_invoice_item(item),
                now=now,
                previous={"invoice": invoice_id},
            )
            for item in invoice_items.release(conn, invoice_id)
        ]
        invoices.delete(conn, invoice_id)
        written.append(caller.event("invoice.deleted", last, now=now))
        events.add_all(conn, written)


def _due_date(params: dict[str, Any], collection_method: str, *, created: int) -> int | None:
    """`due_date`, or `days_until_due` counted from creation; only for send_invoice."""
    due_date, days = params.get("due_date"), params.get("days_until_due")
    for name, value in (("due_date", due_date), ("days_until_due", days)):
        if value is not None and collection_method != "send_invoice":
            raise InvalidRequest(
                f"{name} can only be set when collection_method is send_invoice.", param=name
            )
    if due_date is not None and days is not None:
        raise InvalidRequest(
            "Pass either due_date or days_until_due, not both.", param="days_until_due"
        )
    return created + days * DAY if days is not None else due_date


def update_invoice(
    conn: Conn, caller: Caller, invoice_id: str, params: dict[str, Any], *, now: int
) -> Invoice:
    """Change an invoice's non-monetary fields (all of them on a draft, fewer once
    finalized); writes `invoice.updated` with the previous values when anything changed."""
    changes: dict[str, Any] = {
        k: params[k]
        for k in (
            "description",
            "footer",
            "metadata",
            "auto_advance",
            "due_date",
            "collection_method",
        )
        if k in params
    }
    with conn.transaction():
        invoice = locked_invoice(conn, caller, invoice_id)
        rules.check_update(invoice.status, set(changes))
        if "metadata" in changes:
            changes["metadata"] = merge_metadata(invoice.metadata, changes["metadata"])
        updated = replace(invoice, **changes)
        if updated.due_date is not None and updated.collection_method != "send_invoice":
            param = "due_date" if "due_date" in changes else "collection_method"
            raise InvalidRequest(
                "due_date can only be set when collection_method is send_invoice.", param=param
            )
        if updated == invoice:
            return invoice
        before = invoice_object(conn, invoice)
        invoice = invoices.update_details(conn, updated)
        after = invoice_object(conn, invoice)
        events.add(
            conn,
            caller.event(
                "invoice.updated",
                after,
                now=now,
                previous=changed_attributes(before, after),
            ),
        )
    return invoice


def finalize_invoice(
    conn: Conn, caller: Caller, invoice_id: str, *, auto_advance: bool | None = None, now: int
) -> Invoice:
    """Draft → open, with the customer's next invoice number; the total is frozen from here.

    The customer's balance is applied (operations.balances.apply_to_invoice), so
    amount_due is the total with it. An invoice with nothing due is paid at once, as
    Stripe does, and then also writes `invoice.paid` and `invoice.payment_succeeded`
    after `invoice.finalized`; `customer.updated` follows when the balance moved.
    """
    with conn.transaction():
        invoice = locked_invoice(conn, caller, invoice_id)
        rules.FINALIZE.check(invoice.status)
        # Both lock the customer row, after the invoice (the lock order).
        numbered = customers.take_invoice_number(conn, invoice.customer)
        if numbered is None:  # a deleted customer is billed no more
            raise ResourceMissing(f"No such customer: '{invoice.customer}'", param="customer")
        prefix, sequence = numbered
        applied = balances.apply_to_invoice(conn, caller, invoice, now=now)
        status = rules.finalized_status(amount_due(invoice.total, applied.starting_balance))
        invoice = invoices.update_state(
            conn,
            replace(
                invoice,
                status=status,
                number=rules.invoice_number(prefix, sequence),
                auto_advance=invoice.auto_advance if auto_advance is None else auto_advance,
                finalized_at=now,
                paid_at=now if status == "paid" else None,
                starting_balance=applied.starting_balance,
                ending_balance=applied.ending_balance,
            ),
        )
        after = invoice_object(conn, invoice)
        types = ["invoice.finalized"]
        if status == "paid":
            types += ["invoice.paid", "invoice.payment_succeeded"]
        written = [caller.event(type_, after, now=now) for type_ in types]
        events.add_all(
            conn,
            written
            + _with_sequence_moved(conn, caller, invoice, applied.events, sequence, now=now),
        )
    return invoice


def _with_sequence_moved(
    conn: Conn,
    caller: Caller,
    invoice: Invoice,
    balance_events: list[Event],
    sequence: int,
    *,
    now: int,
) -> list[Event]:
    """Finalize's customer events: the number it took moved the customer's
    next_invoice_sequence, a change a consumer of the events must see, so the
    balance's `customer.updated` names it too, or one is written for it alone."""
    moved = {"next_invoice_sequence": sequence}
    if balance_events:
        return [
            replace(e, previous_attributes={**(e.previous_attributes or {}), **moved})
            if e.type == "customer.updated"
            else e
            for e in balance_events
        ]
    customer = customers.get(conn, invoice.customer, invoice.livemode)
    if customer is None:  # never: take_invoice_number found it, and its row is locked
        return []
    return [caller.event("customer.updated", render_customer(customer), now=now, previous=moved)]


def void_invoice(conn: Conn, caller: Caller, invoice_id: str, *, now: int) -> Invoice:
    """Open or uncollectible → void, unless payments are open or paid; `invoice.voided`.
    What the invoice took from the customer's balance at finalize goes back to it
    (`unapplied_from_invoice`, then `customer.updated`)."""
    with conn.transaction():
        invoice = _move(conn, caller, invoice_id, rules.VOID, {"status": "void", "voided_at": now})
        written = [caller.event("invoice.voided", invoice_object(conn, invoice), now=now)]
        written += balances.return_from_invoice(conn, caller, invoice, now=now)
        events.add_all(conn, written)
    return invoice


def mark_uncollectible(conn: Conn, caller: Caller, invoice_id: str, *, now: int) -> Invoice:
    """Open → uncollectible, unless payments are open; `invoice.marked_uncollectible`."""
    with conn.transaction():
        invoice = _move(
            conn,
            caller,
            invoice_id,
            rules.MARK_UNCOLLECTIBLE,
            {"status": "uncollectible", "marked_uncollectible_at": now},
        )
        after = invoice_object(conn, invoice)
        events.add(conn, caller.event("invoice.marked_uncollectible", after, now=now))
    return invoice


def _move(
    conn: Conn, caller: Caller, invoice_id: str, move: rules.Move, changed: dict[str, Any]
) -> Invoice:
    """Lock the invoice, refuse the `move` where its status or payments forbid it, and
    write `changed`; inside the caller's transaction."""
    invoice = locked_invoice(conn, caller, invoice_id)
    move.check(invoice.status)
    if move.blocking_payments:
        blocked = invoices.has_payments(conn, invoice_id, move.blocking_payments)
        move.check_payments(invoice_id, blocked)
    return invoices.update_state(conn, replace(invoice, **changed))
