"""Invoice items and invoices: create, update, and the status moves of Stripe's lifecycle.

Every use case runs in one transaction. Those that change an invoice lock its row
first (`store.invoices.get_for_update`), then touch its items or read its payments,
and write their events in the same transaction. A refusal raises before anything is
written, so the rollback leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

import psycopg

from service.domain import invoices as rules
from service.domain.events import changed_attributes
from service.domain.ids import INVOICE, INVOICE_ITEM, INVOICE_LINE, new_id
from service.domain.ledger import Invoice
from service.domain.metadata import merge_metadata
from service.domain.money import DEFAULT_CURRENCY, MAX_AMOUNT, amount_due
from service.errors import InvalidRequest, NotFound, ResourceMissing
from service.operations import balances
from service.operations.context import Caller
from service.operations.mirror_upstream import fetch_unknown_customer, mirror_customer
from service.render.invoices import render_invoice, render_invoice_item
from service.store import customers, events, invoice_items, invoices
from service.upstream import Upstream

DAY = 86_400


def _customer(conn: psycopg.Connection[Any], caller: Caller, customer_id: str) -> dict[str, Any]:
    customer = customers.get_billable(conn, customer_id, caller.livemode)
    if customer is None:
        raise ResourceMissing(f"No such customer: '{customer_id}'", param="customer")
    return customer


def _locked(conn: psycopg.Connection[Any], caller: Caller, invoice_id: str) -> dict[str, Any]:
    invoice = invoices.get_for_update(conn, invoice_id, caller.livemode)
    if invoice is None:
        raise NotFound(f"No such invoice: '{invoice_id}'", param="id")
    return invoice


def _item_amounts(params: dict[str, Any]) -> tuple[int, int, int]:
    """(amount, unit_amount, quantity): `amount` alone, or `unit_amount` times `quantity`;
    either may be negative, a credit."""
    amount, unit_amount = params.get("amount"), params.get("unit_amount")
    quantity = params.get("quantity")
    if amount is not None and unit_amount is not None:
        raise InvalidRequest(
            "You may pass either amount or unit_amount, but not both.", param="unit_amount"
        )
    if amount is not None:
        if quantity not in (None, 1):
            raise InvalidRequest(
                "quantity cannot be combined with amount; pass unit_amount instead.",
                param="quantity",
            )
        return amount, amount, 1
    if unit_amount is None:
        raise InvalidRequest(
            "Missing required param: amount (or unit_amount with quantity).", param="amount"
        )
    quantity = 1 if quantity is None else quantity
    if abs(unit_amount * quantity) > MAX_AMOUNT:
        raise InvalidRequest(
            f"unit_amount * quantity must be between -{MAX_AMOUNT} and {MAX_AMOUNT}.",
            param="quantity",
        )
    return unit_amount * quantity, unit_amount, quantity


def create_invoice_item(
    conn: psycopg.Connection[Any],
    caller: Caller,
    params: dict[str, Any],
    *,
    upstream: Upstream | None = None,
    now: int,
) -> dict[str, Any]:
    """Create a pending invoice item, or add it to a draft invoice (`invoice=`).

    Adding to a draft locks the invoice, so it cannot be finalized meanwhile, and
    recomputes its total; `invoiceitem.created` (and `invoice.updated`) are written.
    A customer Tally has not seen is fetched from `upstream` and mirrored with it.
    """
    amount, unit_amount, quantity = _item_amounts(params)
    fetched = fetch_unknown_customer(conn, caller, params["customer"], upstream)
    with conn.transaction():
        mirror_customer(conn, caller, fetched, now=now)
        _customer(conn, caller, params["customer"])
        invoice_id = params.get("invoice")
        invoice = None
        if invoice_id is not None:
            invoice = invoices.get_for_update(conn, invoice_id, caller.livemode)
            if invoice is None:
                raise ResourceMissing(f"No such invoice: '{invoice_id}'", param="invoice")
            rules.check_items_addable(invoice["status"], invoice_id)
            if invoice["customer"] != params["customer"]:
                raise InvalidRequest(
                    f"Invoice {invoice_id} belongs to customer {invoice['customer']}, "
                    f"not {params['customer']}.",
                    param="invoice",
                )
            if invoice["currency"] != params["currency"]:
                raise InvalidRequest(
                    f"Invoice {invoice_id} is in {invoice['currency']}; the item's currency "
                    f"({params['currency']}) must match it.",
                    param="invoice",
                )
        before = render_invoice(conn, invoice) if invoice is not None else None
        item = invoice_items.insert(
            conn,
            {
                "id": new_id(INVOICE_ITEM),
                "line_id": new_id(INVOICE_LINE) if invoice else None,
                "livemode": caller.livemode,
                "customer": params["customer"],
                "invoice": invoice_id,
                "amount": amount,
                "unit_amount": unit_amount,
                "quantity": quantity,
                "currency": params["currency"],
                "description": params.get("description"),
                "metadata": params.get("metadata") or {},
                "created": now,
            },
        )
        written = [caller.event("invoiceitem.created", render_invoice_item(item), now=now)]
        if invoice is not None and before is not None:
            after = render_invoice(conn, invoices.refresh_total(conn, invoice["id"]))
            written.append(
                caller.event(
                    "invoice.updated",
                    after,
                    now=now,
                    previous=changed_attributes(before, after),
                )
            )
        events.add_all(conn, written)
    return item


def create_invoice(
    conn: psycopg.Connection[Any],
    caller: Caller,
    params: dict[str, Any],
    *,
    upstream: Upstream | None = None,
    now: int,
) -> dict[str, Any]:
    """Create a draft invoice; with `pending_invoice_items_behavior=include` the customer's
    pending items in its currency become its lines. Writes `invoice.created`. A customer
    Tally has not seen is fetched from `upstream` and mirrored with it."""
    collection_method = params.get("collection_method") or "charge_automatically"
    due_date = _due_date(params, collection_method, created=now)
    fetched = fetch_unknown_customer(conn, caller, params["customer"], upstream)
    with conn.transaction():
        mirror_customer(conn, caller, fetched, now=now)
        customer = _customer(conn, caller, params["customer"])
        currency = (
            params.get("currency")
            or invoice_items.latest_pending_currency(conn, customer["id"], caller.livemode)
            or DEFAULT_CURRENCY
        )
        invoice = invoices.insert(
            conn,
            {
                "id": new_id(INVOICE),
                "livemode": caller.livemode,
                "customer": customer["id"],
                "currency": currency,
                "description": params.get("description"),
                "footer": params.get("footer"),
                "metadata": params.get("metadata") or {},
                "auto_advance": bool(params.get("auto_advance", False)),
                "collection_method": collection_method,
                "due_date": due_date,
                "customer_email": customer["email"],
                "customer_name": customer["name"],
                "created": now,
            },
        )
        if params.get("pending_invoice_items_behavior") == "include":
            pending = invoice_items.pending_ids_for_update(
                conn, customer["id"], currency, caller.livemode
            )
            if pending:
                invoice_items.bind(
                    conn, invoice["id"], {item: new_id(INVOICE_LINE) for item in pending}
                )
                invoice = invoices.refresh_total(conn, invoice["id"])
        events.add(conn, caller.event("invoice.created", render_invoice(conn, invoice), now=now))
    return invoice


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
    conn: psycopg.Connection[Any],
    caller: Caller,
    invoice_id: str,
    params: dict[str, Any],
    *,
    now: int,
) -> dict[str, Any]:
    """Change an invoice's non-monetary fields (all of them on a draft, fewer once
    finalized); writes `invoice.updated` with the previous values when anything changed."""
    changes = {
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
        invoice = _locked(conn, caller, invoice_id)
        rules.check_update(invoice["status"], set(changes))
        if "metadata" in changes:
            changes["metadata"] = merge_metadata(invoice["metadata"], changes["metadata"])
        updated = {**invoice, **changes}
        if updated["due_date"] is not None and updated["collection_method"] != "send_invoice":
            param = "due_date" if "due_date" in changes else "collection_method"
            raise InvalidRequest(
                "due_date can only be set when collection_method is send_invoice.", param=param
            )
        if updated == invoice:
            return invoice
        before = render_invoice(conn, invoice)
        invoice = invoices.update_details(conn, updated)
        after = render_invoice(conn, invoice)
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
    conn: psycopg.Connection[Any],
    caller: Caller,
    invoice_id: str,
    *,
    auto_advance: bool | None = None,
    now: int,
) -> dict[str, Any]:
    """Draft → open, with the customer's next invoice number; the total is frozen from here.

    The customer's balance is applied (operations.balances.apply_to_invoice), so
    amount_due is the total with it. An invoice with nothing due is paid at once, as
    Stripe does, and then also writes `invoice.paid` and `invoice.payment_succeeded`
    after `invoice.finalized`; `customer.updated` follows when the balance moved.
    """
    with conn.transaction():
        invoice = _locked(conn, caller, invoice_id)
        rules.check_move(invoice["status"], "finalize")
        # Both lock the customer row, after the invoice (the lock order).
        numbered = customers.take_invoice_number(conn, invoice["customer"])
        if numbered is None:  # a deleted customer is billed no more
            raise ResourceMissing(f"No such customer: '{invoice['customer']}'", param="customer")
        prefix, sequence = numbered
        applied = balances.apply_to_invoice(conn, caller, Invoice(**invoice), now=now)
        status = rules.finalized_status(amount_due(invoice["total"], applied.starting_balance))
        invoice = invoices.update_state(
            conn,
            {
                **invoice,
                "status": status,
                "number": rules.invoice_number(prefix, sequence),
                "auto_advance": invoice["auto_advance"] if auto_advance is None else auto_advance,
                "finalized_at": now,
                "paid_at": now if status == "paid" else None,
                "starting_balance": applied.starting_balance,
                "ending_balance": applied.ending_balance,
            },
        )
        after = render_invoice(conn, invoice)
        types = ["invoice.finalized"]
        if status == "paid":
            types += ["invoice.paid", "invoice.payment_succeeded"]
        written = [caller.event(type_, after, now=now) for type_ in types]
        events.add_all(conn, written + applied.events)
    return invoice


def void_invoice(
    conn: psycopg.Connection[Any], caller: Caller, invoice_id: str, *, now: int
) -> dict[str, Any]:
    """Open or uncollectible → void, unless payments are open or paid; `invoice.voided`.
    What the invoice took from the customer's balance at finalize goes back to it
    (`unapplied_from_invoice`, then `customer.updated`)."""
    with conn.transaction():
        invoice = _move(conn, caller, invoice_id, "void", {"status": "void", "voided_at": now})
        written = [caller.event("invoice.voided", render_invoice(conn, invoice), now=now)]
        written += balances.return_from_invoice(conn, caller, Invoice(**invoice), now=now)
        events.add_all(conn, written)
    return invoice


def mark_uncollectible(
    conn: psycopg.Connection[Any], caller: Caller, invoice_id: str, *, now: int
) -> dict[str, Any]:
    """Open → uncollectible, unless payments are open; `invoice.marked_uncollectible`."""
    with conn.transaction():
        invoice = _move(
            conn,
            caller,
            invoice_id,
            "mark_uncollectible",
            {"status": "uncollectible", "marked_uncollectible_at": now},
        )
        after = render_invoice(conn, invoice)
        events.add(conn, caller.event("invoice.marked_uncollectible", after, now=now))
    return invoice


def _move(
    conn: psycopg.Connection[Any],
    caller: Caller,
    invoice_id: str,
    action: str,
    changed: dict[str, Any],
) -> dict[str, Any]:
    """Lock the invoice, refuse `action` where its status or payments forbid it, and
    write `changed`; inside the caller's transaction."""
    invoice = _locked(conn, caller, invoice_id)
    rules.check_move(invoice["status"], action)
    blocking = rules.BLOCKING_PAYMENTS.get(action)
    if blocking:
        rules.check_payments_allow(
            action, invoice_id, invoices.has_payments(conn, invoice_id, blocking)
        )
    return invoices.update_state(conn, {**invoice, **changed})
