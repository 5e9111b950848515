"""The customer balance: adjustments through the API, and the moves that customer
creation, finalize, void and an overpaying credit make on it.

Every move appends one immutable transaction and adds its amount to customers.balance
in one statement (store.balance_transactions.add), and writes `customer.updated` with
the previous balance, all in the caller's transaction. The customer's row is locked
after any invoice the move concerns (lock order: invoice -> invoice payment -> customer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from service.domain import balances as rules
from service.domain import money
from service.domain.balances import Customer
from service.domain.events import Event, changed_attributes
from service.domain.ids import BALANCE_TRANSACTION, new_id
from service.domain.ledger import Invoice, as_dict
from service.domain.metadata import merge_metadata
from service.errors import NotFound
from service.operations.context import Caller
from service.render.customers import render_customer
from service.store import balance_transactions, customers, events


@dataclass(frozen=True, slots=True)
class Applied:
    """What finalize applied of the customer's balance, and the events of that move."""

    starting_balance: int
    ending_balance: int
    events: list[Event]


def create_balance_transaction(
    conn: psycopg.Connection[Any],
    caller: Caller,
    customer_id: str,
    params: dict[str, Any],
    *,
    now: int,
) -> dict[str, Any]:
    """Add an `adjustment` to the customer's balance (a negative amount credits it) and
    write `customer.updated`. The first transaction sets the customer's currency; one in
    another currency is refused with nothing written."""
    with conn.transaction():
        customer = customers.get_for_update(conn, customer_id, caller.livemode)
        if customer is None:
            raise NotFound(f"No such customer: '{customer_id}'", param="customer")
        rules.check_currency(customer, params["currency"])
        txn, event = _move(
            conn,
            caller,
            customer,
            _transaction(
                caller,
                customer.id,
                rules.ADJUSTMENT,
                params["amount"],
                params["currency"],
                now=now,
                description=params.get("description"),
                metadata=params.get("metadata"),
            ),
        )
        events.add(conn, event)
    return txn


def update_balance_transaction(
    conn: psycopg.Connection[Any],
    caller: Caller,
    customer_id: str,
    txn_id: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Change a transaction's description or metadata, all that may change of it (Stripe
    announces no event for it)."""
    with conn.transaction():
        if customers.get(conn, customer_id, caller.livemode) is None:
            raise NotFound(f"No such customer: '{customer_id}'", param="customer")
        txn = balance_transactions.get_for_update(conn, customer_id, txn_id, caller.livemode)
        if txn is None:
            raise NotFound(f"No such customer_balance_transaction: '{txn_id}'", param="id")
        changes = {k: params[k] for k in ("description", "metadata") if k in params}
        if "metadata" in changes:
            changes["metadata"] = merge_metadata(txn["metadata"], changes["metadata"])
        if {**txn, **changes} == txn:
            return txn
        return balance_transactions.update_notes(conn, {**txn, **changes})


def open_balance(
    conn: psycopg.Connection[Any],
    caller: Caller,
    customer: dict[str, Any],
    amount: int,
    *,
    now: int,
) -> dict[str, Any]:
    """A new customer's `balance=`: its `initial` transaction, in the default currency
    (Stripe's customer create takes no currency). Returns the customer after it; no
    event, since the customer is created with it."""
    txn = balance_transactions.add(
        conn,
        _transaction(
            caller, customer["id"], rules.INITIAL, amount, money.DEFAULT_CURRENCY, now=now
        ),
    )
    if txn is None:  # refused only for a balance in another currency
        raise RuntimeError(f"new customer {customer['id']} already has a balance currency")
    return {**customer, "balance": txn["ending_balance"], "currency": txn["currency"]}


def apply_to_invoice(
    conn: psycopg.Connection[Any], caller: Caller, invoice: Invoice, *, now: int
) -> Applied:
    """Finalize's part: the customer's balance in the invoice's currency starts the
    invoice; a credit pays what it can of the total, a debit is added to it, and an
    `applied_to_invoice` transaction takes that from the balance."""
    customer = _locked_customer(conn, invoice)
    starting = rules.balance_in(customer, invoice.currency)
    ending = money.ending_balance(invoice.total, starting)
    if ending == starting:
        return Applied(starting, ending, [])
    event = _invoice_move(
        conn, caller, customer, invoice, rules.APPLIED_TO_INVOICE, ending - starting, now=now
    )
    return Applied(starting, ending, [event])


def return_from_invoice(
    conn: psycopg.Connection[Any], caller: Caller, invoice: Invoice, *, now: int
) -> list[Event]:
    """Void's part: what the invoice took from the balance at finalize goes back to it
    (`unapplied_from_invoice`). Returns the events of that move."""
    if invoice.ending_balance is None:  # only finalized invoices are voided
        raise ValueError(f"invoice {invoice.id} was never finalized")
    applied = invoice.ending_balance - invoice.starting_balance
    if applied == 0:
        return []
    customer = _locked_customer(conn, invoice)
    return [
        _invoice_move(
            conn, caller, customer, invoice, rules.UNAPPLIED_FROM_INVOICE, -applied, now=now
        )
    ]


def credit_overpayment(
    conn: psycopg.Connection[Any], caller: Caller, invoice: Invoice, growth: int, *, now: int
) -> list[Event]:
    """A credit's part when it made the invoice's amount_overpaid grow by `growth`: that
    much is credited to the customer's balance (`invoice_overpaid`). Returns the events.

    A balance holds one currency: an overpayment in another stays the invoice's
    amount_overpaid only (reconciliation knows).
    """
    customer = _locked_customer(conn, invoice)
    if not rules.holds(customer, invoice.currency):
        return []
    return [
        _invoice_move(conn, caller, customer, invoice, rules.INVOICE_OVERPAID, -growth, now=now)
    ]


def _locked_customer(conn: psycopg.Connection[Any], invoice: Invoice) -> Customer:
    customer = customers.get_for_update(conn, invoice.customer, invoice.livemode)
    if customer is None:  # invoices.customer references it
        raise RuntimeError(f"customer {invoice.customer} of invoice {invoice.id} is missing")
    return customer


def _invoice_move(
    conn: psycopg.Connection[Any],
    caller: Caller,
    customer: Customer,
    invoice: Invoice,
    type_: str,
    amount: int,
    *,
    now: int,
) -> Event:
    """A move of the locked customer's balance on account of `invoice`, in its currency."""
    txn = _transaction(
        caller, customer.id, type_, amount, invoice.currency, now=now, invoice=invoice.id
    )
    return _move(conn, caller, customer, txn)[1]


def _transaction(
    caller: Caller,
    customer_id: str,
    type_: str,
    amount: int,
    currency: str,
    *,
    now: int,
    invoice: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id(BALANCE_TRANSACTION),
        "livemode": caller.livemode,
        "customer": customer_id,
        "type": type_,
        "amount": amount,
        "currency": currency,
        "invoice": invoice,
        "description": description,
        "metadata": metadata or {},
        "created": now,
    }


def _move(
    conn: psycopg.Connection[Any], caller: Caller, customer: Customer, txn: dict[str, Any]
) -> tuple[dict[str, Any], Event]:
    """Append `txn` to the locked customer's balance; return it as written, with the
    `customer.updated` event of the change."""
    written = balance_transactions.add(conn, txn)
    if written is None:  # the customer is locked and its currency was checked
        raise RuntimeError(f"customer {customer.id} refused a {txn['currency']} transaction")
    before = render_customer(as_dict(customer))
    after = render_customer(
        {**as_dict(customer), "balance": written["ending_balance"], "currency": txn["currency"]}
    )
    event = caller.event(
        "customer.updated", after, now=txn["created"], previous=changed_attributes(before, after)
    )
    return written, event
