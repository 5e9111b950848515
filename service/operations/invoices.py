"""Invoice items and invoices: create, update, and the status moves of Stripe's lifecycle.

Every use case runs in one transaction. Those that change an invoice lock its row
first (`store.invoices.get_for_update`), then touch its items or read its payments,
and write their events in the same transaction. A refusal raises before anything is
written, so the rollback leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg

from service.adapters.upstream import Upstream
from service.domain import invoices as rules
from service.domain.events import Event, changed_attributes
from service.domain.ids import INVOICE, INVOICE_ITEM, INVOICE_LINE, new_id
from service.domain.ledger import Invoice
from service.domain.metadata import merge_metadata
from service.domain.money import DEFAULT_CURRENCY, MAX_AMOUNT, amount_due
from service.errors import ConstraintConflict, InvalidRequest, NotFound, ResourceMissing
from service.operations import balances
from service.operations.context import Caller
from service.operations.mirror_upstream import fetch_unknown_customer, mirror_customer
from service.render.customers import render_customer
from service.render.invoices import render_invoice, render_invoice_item
from service.store import customers, events, invoice_items, invoices

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


def _locked_item(
    conn: psycopg.Connection[Any], caller: Caller, item_id: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The item and its invoice (None while pending), both locked: the invoice first,
    as the lock order says. An item can move between the read and the locks (a new
    draft pulling it in, a deleted draft releasing it), so the invoice is looked up
    again from the locked item until the two agree."""
    expected = invoice_items.get(conn, item_id, caller.livemode)
    for _ in range(3):
        if expected is None:
            raise NotFound(f"No such invoiceitem: '{item_id}'", param="id")
        invoice_id = expected["invoice"]
        invoice = invoices.get_for_update(conn, invoice_id, caller.livemode) if invoice_id else None
        item = invoice_items.get_for_update(conn, item_id, caller.livemode)
        if item is None or item["invoice"] == invoice_id:
            if item is None:
                raise NotFound(f"No such invoiceitem: '{item_id}'", param="id")
            return item, invoice
        expected = item
    # Stripe's code for an object another request holds (the SDK retries a 409).
    raise ConstraintConflict(
        "This invoice item is being changed by another request; retry.", code="lock_timeout"
    )


def _updated_amounts(item: dict[str, Any], params: dict[str, Any]) -> dict[str, int]:
    """The item's amounts after an update: a new `amount` replaces them (quantity 1),
    a new `unit_amount` or `quantity` is multiplied by the other's current value."""
    if "amount" in params:
        amount, unit_amount, quantity = _item_amounts(params)
    elif "unit_amount" in params or "quantity" in params:
        amount, unit_amount, quantity = _item_amounts(
            {
                "unit_amount": params.get("unit_amount", item["unit_amount"]),
                "quantity": params.get("quantity", item["quantity"]),
            }
        )
    else:
        return {}
    return {"amount": amount, "unit_amount": unit_amount, "quantity": quantity}


def _with_total(
    conn: psycopg.Connection[Any],
    caller: Caller,
    invoice: dict[str, Any] | None,
    before: dict[str, Any] | None,
    *,
    now: int,
) -> list[Event]:
    """After a change to a draft's items: its total recomputed, and `invoice.updated`
    with what the change moved (nothing for a pending item)."""
    if invoice is None or before is None:
        return []
    after = render_invoice(conn, invoices.refresh_total(conn, invoice["id"]))
    previous = changed_attributes(before, after)
    if not previous:
        return []
    return [caller.event("invoice.updated", after, now=now, previous=previous)]


def update_invoice_item(
    conn: psycopg.Connection[Any],
    caller: Caller,
    item_id: str,
    params: dict[str, Any],
    *,
    now: int,
) -> dict[str, Any]:
    """Change a pending item, or one on a draft (amounts, description, metadata); the
    draft's total follows. Writes `invoiceitem.updated` with the previous values and,
    for a draft's item, `invoice.updated`; nothing when nothing changed. Refused, with
    nothing written, once the item's invoice is finalized."""
    with conn.transaction():
        item, invoice = _locked_item(conn, caller, item_id)
        rules.check_item_changeable(
            item_id,
            item["invoice"],
            invoice["status"] if invoice else None,
            param=min(params, default=None),  # the first field it tried to change
        )
        updated = {**item, **_updated_amounts(item, params)}
        if "description" in params:
            updated["description"] = params["description"] or None  # "" clears it
        if "metadata" in params:
            updated["metadata"] = merge_metadata(item["metadata"], params["metadata"])
        if updated == item:
            return item
        before = render_invoice(conn, invoice) if invoice else None
        old = render_invoice_item(item)
        item = invoice_items.update(conn, updated)
        new = render_invoice_item(item)
        written = [
            caller.event("invoiceitem.updated", new, now=now, previous=changed_attributes(old, new))
        ]
        events.add_all(conn, written + _with_total(conn, caller, invoice, before, now=now))
    return item


def delete_invoice_item(
    conn: psycopg.Connection[Any], caller: Caller, item_id: str, *, now: int
) -> None:
    """Delete a pending item, or take one off a draft, whose total follows. Writes
    `invoiceitem.deleted` (the item as it was) and, for a draft's item,
    `invoice.updated`. Refused, with nothing written, once the invoice is finalized."""
    with conn.transaction():
        item, invoice = _locked_item(conn, caller, item_id)
        rules.check_item_changeable(
            item_id, item["invoice"], invoice["status"] if invoice else None
        )
        before = render_invoice(conn, invoice) if invoice else None
        invoice_items.delete(conn, item_id)
        written = [caller.event("invoiceitem.deleted", render_invoice_item(item), now=now)]
        events.add_all(conn, written + _with_total(conn, caller, invoice, before, now=now))


def create_invoice(
    conn: psycopg.Connection[Any],
    caller: Caller,
    params: dict[str, Any],
    *,
    upstream: Upstream | None = None,
    now: int,
) -> dict[str, Any]:
    """Create a draft invoice; with `pending_invoice_items_behavior=include` the customer's
    pending items in its currency become its lines. Writes `invoice.created`, then
    `invoiceitem.updated` (previous `invoice` null) for each item it took. A customer
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
        bound: list[dict[str, Any]] = []
        if params.get("pending_invoice_items_behavior") == "include":
            pending = invoice_items.pending_ids_for_update(
                conn, customer["id"], currency, caller.livemode
            )
            if pending:
                bound = invoice_items.bind(
                    conn, invoice["id"], {item: new_id(INVOICE_LINE) for item in pending}
                )
                invoice = invoices.refresh_total(conn, invoice["id"])
        written = [caller.event("invoice.created", render_invoice(conn, invoice), now=now)]
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


def delete_invoice(
    conn: psycopg.Connection[Any], caller: Caller, invoice_id: str, *, now: int
) -> None:
    """Delete a draft for good; a finalized invoice is refused (it can be voided).

    Its items are not lost with it: they become pending again, for the customer's next
    invoice, each with `invoiceitem.updated` (previous `invoice`); then `invoice.deleted`
    carries the draft as it was. A draft has no payments and no balance transactions
    (both come with finalizing), so nothing else refers to it.
    """
    with conn.transaction():
        invoice = _locked(conn, caller, invoice_id)
        rules.check_move(invoice["status"], "delete")
        last = render_invoice(conn, invoice)
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
    conn: psycopg.Connection[Any],
    caller: Caller,
    invoice_id: str,
    params: dict[str, Any],
    *,
    now: int,
) -> dict[str, Any]:
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
        events.add_all(
            conn,
            written
            + _with_sequence_moved(conn, caller, invoice, applied.events, sequence, now=now),
        )
    return invoice


def _with_sequence_moved(
    conn: psycopg.Connection[Any],
    caller: Caller,
    invoice: dict[str, Any],
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
    customer = customers.get(conn, invoice["customer"], invoice["livemode"])
    if customer is None:  # never: take_invoice_number found it, and its row is locked
        return []
    return [caller.event("customer.updated", render_customer(customer), now=now, previous=moved)]


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
