"""Customers: create, update, delete, and the invoice prefix each holds.

Each use case runs in one transaction and writes its event (customer.created,
customer.updated, customer.deleted) in it. A deleted customer is kept, marked: its
invoices keep their customer id and its ledger stays, but it is billed no more.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from service.db import Conn
from service.domain.balances import Customer
from service.domain.events import Event, changed_attributes
from service.domain.ids import CUSTOMER, new_id
from service.domain.invoices import new_invoice_prefix
from service.domain.metadata import merge_metadata, previous_metadata
from service.errors import InvalidRequest, NotFound
from service.operations.balances import open_balance, set_balance
from service.operations.context import Caller
from service.operations.invoicing import invoice_object
from service.render.customers import render_customer
from service.store import customers, events, invoices

PREFIX_ATTEMPTS = 5

# What POST /v1/customers/:id may change besides `balance`.
UPDATABLE = ("email", "name", "phone", "description", "metadata", "invoice_prefix")


def create_customer(conn: Conn, caller: Caller, params: dict[str, Any], *, now: int) -> Customer:
    """Store a new customer with its `invoice_prefix`, or one generated that no customer
    has held; a nonzero `balance` is its `initial` balance transaction. Writes
    `customer.created`, all in one transaction."""
    customer = {
        "id": new_id(CUSTOMER),
        "livemode": caller.livemode,
        "email": params.get("email"),
        "name": params.get("name"),
        "phone": params.get("phone"),
        "description": params.get("description"),
        "metadata": params.get("metadata") or {},
        "created": now,
    }
    with conn.transaction():
        if params.get("invoice_prefix") is not None:
            row = _insert_with_prefix(conn, customer, params["invoice_prefix"])
            if row is None:
                raise _prefix_taken(params["invoice_prefix"])
        else:
            row = _insert_with_generated_prefix(conn, customer)
        if params.get("balance"):
            row = open_balance(conn, caller, row, params["balance"], now=now)
        events.add(conn, caller.event("customer.created", render_customer(row), now=now))
    return row


def _insert_with_generated_prefix(conn: Conn, customer: dict[str, Any]) -> Customer:
    """Insert `customer` with a generated prefix. 16^8 prefixes: a clash is rare (it
    writes nothing and is retried); several in a row would mean a broken generator."""
    for _ in range(PREFIX_ATTEMPTS):
        row = _insert_with_prefix(conn, customer, new_invoice_prefix())
        if row is not None:
            return row
    raise RuntimeError(f"no free invoice prefix in {PREFIX_ATTEMPTS} attempts")


def _insert_with_prefix(conn: Conn, customer: dict[str, Any], prefix: str) -> Customer | None:
    """The customer inserted with `prefix`; None, and nothing written, when it is taken."""
    if not customers.claim_invoice_prefix(conn, prefix, customer["id"]):
        return None
    return customers.insert(conn, {**customer, "invoice_prefix": prefix})


def _prefix_taken(prefix: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invoice prefix '{prefix}' is already in use by another customer.",
        param="invoice_prefix",
    )


def _locked(conn: Conn, caller: Caller, customer_id: str) -> Customer:
    """The customer, locked; a deleted one is missing (Stripe: deleting a customer
    "prevents any further operations to be performed")."""
    customer = customers.get_for_update(conn, customer_id, caller.livemode)
    if customer is None or customer.deleted:
        raise NotFound(f"No such customer: '{customer_id}'", param="id")
    return customer


def update_customer(
    conn: Conn, caller: Caller, customer_id: str, params: dict[str, Any], *, now: int
) -> Customer:
    """Change the customer's details: metadata merges as Stripe's does, a new
    `invoice_prefix` numbers its next invoices (its sequence carries on), and `balance`
    writes the `adjustment` for the difference in its default currency. One
    `customer.updated`, with the previous values of what changed, in the same
    transaction; nothing when nothing changed.

    The customer's drafts show its new email and name, each with its `invoice.updated`
    (Stripe's invoice.customer_email: "Until the invoice is finalized, this field will
    equal customer.email"); finalized invoices keep theirs. The drafts are locked
    before the customer (the lock order), so none is finalized meanwhile."""
    with conn.transaction():
        follows = "email" in params or "name" in params
        drafts = invoices.lock_drafts_of(conn, customer_id, caller.livemode) if follows else []
        customer = _locked(conn, caller, customer_id)
        changes = {k: params[k] for k in UPDATABLE if k in params}
        if "metadata" in changes:
            changes["metadata"] = merge_metadata(customer.metadata, changes["metadata"])
        prefix = changes.get("invoice_prefix", customer.invoice_prefix)
        if prefix != customer.invoice_prefix and not customers.claim_invoice_prefix(
            conn, prefix, customer.id
        ):
            raise _prefix_taken(prefix)
        row = customer
        if replace(customer, **changes) != customer:
            updated = customers.update(conn, replace(customer, **changes))
            if updated is None:  # held by a customer the previous version created
                raise _prefix_taken(prefix)
            row = updated
        if "balance" in params and set_balance(conn, caller, customer, params["balance"], now=now):
            row = customers.get(conn, customer.id, caller.livemode) or row
        before, after = render_customer(customer), render_customer(row)
        previous = changed_attributes(before, after)
        if "metadata" in previous:
            previous["metadata"] = previous_metadata(before["metadata"], after["metadata"])
        if not previous:
            return row
        written = [caller.event("customer.updated", after, now=now, previous=previous)]
        if drafts:
            written += _drafts_shown(conn, caller, drafts, row, now=now)
        events.add_all(conn, written)
    return row


def _drafts_shown(
    conn: Conn, caller: Caller, drafts: list[dict[str, Any]], customer: Customer, *, now: int
) -> list[Event]:
    """Show the customer's email and name on its locked drafts; their invoice.updated."""
    before = {d["id"]: d for d in drafts}
    written = []
    for invoice in invoices.show_customer(conn, list(before), customer.email, customer.name):
        was = before[invoice.id]
        shown = {
            k: was[k] for k in ("customer_email", "customer_name") if was[k] != getattr(invoice, k)
        }
        obj = invoice_object(conn, invoice)
        written.append(caller.event("invoice.updated", obj, now=now, previous=shown))
    return written


def delete_customer(conn: Conn, caller: Caller, customer_id: str, *, now: int) -> None:
    """Mark the customer deleted and write `customer.deleted`, carrying the customer as
    it was (Stripe's payload is the customer object, not the deleted stub the API
    answers). Its invoices, items, payments and balance ledger stay as they are."""
    with conn.transaction():
        customer = _locked(conn, caller, customer_id)
        customers.mark_deleted(conn, customer.id)
        obj = render_customer(customer)
        events.add(conn, caller.event("customer.deleted", obj, now=now))
