"""Invoice items: pending charges of a customer, or lines of a draft invoice.

Every use case runs in one transaction. An item on a draft is changed with the draft
locked first (the lock order), and the draft's total follows it, with its
`invoice.updated`. A refusal raises before anything is written.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from service.adapters.upstream import Upstream
from service.db import Conn
from service.domain import invoices as rules
from service.domain.events import Event, changed_attributes
from service.domain.ids import INVOICE_ITEM, INVOICE_LINE, new_id
from service.domain.invoices import InvoiceItem
from service.domain.ledger import Invoice
from service.domain.metadata import merge_metadata
from service.domain.money import MAX_AMOUNT
from service.errors import ConstraintConflict, InvalidRequest, NotFound, ResourceMissing
from service.operations.billing import billing
from service.operations.context import Caller
from service.operations.invoicing import invoice_object
from service.render.invoices import render_invoice_item
from service.store import events, invoice_items, invoices


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
    conn: Conn,
    caller: Caller,
    params: dict[str, Any],
    *,
    upstream: Upstream | None = None,
    now: int,
) -> InvoiceItem:
    """Create a pending invoice item, or add it to a draft invoice (`invoice=`).

    Adding to a draft locks the invoice, so it cannot be finalized meanwhile, and
    recomputes its total; `invoiceitem.created` (and `invoice.updated`) are written.
    A customer Tally has not seen is fetched from `upstream` and mirrored with it.
    """
    amount, unit_amount, quantity = _item_amounts(params)
    with billing(conn, caller, params["customer"], upstream, now=now):
        invoice_id = params.get("invoice")
        invoice = None
        if invoice_id is not None:
            invoice = invoices.get_for_update(conn, invoice_id, caller.livemode)
            if invoice is None:
                raise ResourceMissing(f"No such invoice: '{invoice_id}'", param="invoice")
            rules.check_items_addable(invoice.status, invoice_id)
            if invoice.customer != params["customer"]:
                raise InvalidRequest(
                    f"Invoice {invoice_id} belongs to customer {invoice.customer}, "
                    f"not {params['customer']}.",
                    param="invoice",
                )
            if invoice.currency != params["currency"]:
                raise InvalidRequest(
                    f"Invoice {invoice_id} is in {invoice.currency}; the item's currency "
                    f"({params['currency']}) must match it.",
                    param="invoice",
                )
        before = invoice_object(conn, invoice) if invoice is not None else None
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
            after = invoice_object(conn, invoices.refresh_total(conn, invoice.id))
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


def _locked_item(conn: Conn, caller: Caller, item_id: str) -> tuple[InvoiceItem, Invoice | None]:
    """The item and its invoice (None while pending), both locked: the invoice first,
    as the lock order says. An item can move between the read and the locks (a new
    draft pulling it in, a deleted draft releasing it), so the invoice is looked up
    again from the locked item until the two agree."""
    expected = invoice_items.get(conn, item_id, caller.livemode)
    for _ in range(3):
        if expected is None:
            raise NotFound(f"No such invoiceitem: '{item_id}'", param="id")
        invoice_id = expected.invoice
        invoice = invoices.get_for_update(conn, invoice_id, caller.livemode) if invoice_id else None
        item = invoice_items.get_for_update(conn, item_id, caller.livemode)
        if item is None or item.invoice == invoice_id:
            if item is None:
                raise NotFound(f"No such invoiceitem: '{item_id}'", param="id")
            return item, invoice
        expected = item
    # Stripe's code for an object another request holds (the SDK retries a 409).
    raise ConstraintConflict(
        "This invoice item is being changed by another request; retry.", code="lock_timeout"
    )


def _updated_amounts(item: InvoiceItem, params: dict[str, Any]) -> dict[str, int]:
    """The item's amounts after an update: a new `amount` replaces them (quantity 1),
    a new `unit_amount` or `quantity` is multiplied by the other's current value."""
    if "amount" in params:
        amount, unit_amount, quantity = _item_amounts(params)
    elif "unit_amount" in params or "quantity" in params:
        amount, unit_amount, quantity = _item_amounts(
            {
                "unit_amount": params.get("unit_amount", item.unit_amount),
                "quantity": params.get("quantity", item.quantity),
            }
        )
    else:
        return {}
    return {"amount": amount, "unit_amount": unit_amount, "quantity": quantity}


def _with_total(
    conn: Conn, caller: Caller, invoice: Invoice | None, before: dict[str, Any] | None, *, now: int
) -> list[Event]:
    """After a change to a draft's items: its total recomputed, and `invoice.updated`
    with what the change moved (nothing for a pending item)."""
    if invoice is None or before is None:
        return []
    after = invoice_object(conn, invoices.refresh_total(conn, invoice.id))
    previous = changed_attributes(before, after)
    if not previous:
        return []
    return [caller.event("invoice.updated", after, now=now, previous=previous)]


def update_invoice_item(
    conn: Conn, caller: Caller, item_id: str, params: dict[str, Any], *, now: int
) -> InvoiceItem:
    """Change a pending item, or one on a draft (amounts, description, metadata); the
    draft's total follows. Writes `invoiceitem.updated` with the previous values and,
    for a draft's item, `invoice.updated`; nothing when nothing changed. Refused, with
    nothing written, once the item's invoice is finalized."""
    with conn.transaction():
        item, invoice = _locked_item(conn, caller, item_id)
        rules.check_item_changeable(
            item_id,
            item.invoice,
            invoice.status if invoice else None,
            param=min(params, default=None),  # the first field it tried to change
        )
        changes: dict[str, Any] = _updated_amounts(item, params)
        if "description" in params:
            changes["description"] = params["description"] or None  # "" clears it
        if "metadata" in params:
            changes["metadata"] = merge_metadata(item.metadata, params["metadata"])
        updated = replace(item, **changes)
        if updated == item:
            return item
        before = invoice_object(conn, invoice) if invoice else None
        old = render_invoice_item(item)
        item = invoice_items.update(conn, updated)
        new = render_invoice_item(item)
        written = [
            caller.event("invoiceitem.updated", new, now=now, previous=changed_attributes(old, new))
        ]
        events.add_all(conn, written + _with_total(conn, caller, invoice, before, now=now))
    return item


def delete_invoice_item(conn: Conn, caller: Caller, item_id: str, *, now: int) -> None:
    """Delete a pending item, or take one off a draft, whose total follows. Writes
    `invoiceitem.deleted` (the item as it was) and, for a draft's item,
    `invoice.updated`. Refused, with nothing written, once the invoice is finalized."""
    with conn.transaction():
        item, invoice = _locked_item(conn, caller, item_id)
        rules.check_item_changeable(item_id, item.invoice, invoice.status if invoice else None)
        before = invoice_object(conn, invoice) if invoice else None
        invoice_items.delete(conn, item_id)
        written = [caller.event("invoiceitem.deleted", render_invoice_item(item), now=now)]
        events.add_all(conn, written + _with_total(conn, caller, invoice, before, now=now))
