"""The customer balance: adjustments through the API, and the moves that customer
creation, finalize, void and an overpaying credit make on it.

The balance holds every currency (Stripe's `invoice_credit_balance`); `balance` is the
one in the customer's default currency. Every move appends one immutable transaction
and adds its amount to its currency's balance in one statement
(store.balance_transactions.add), and writes `customer.updated`, all in the caller's
transaction. The customer's row is locked
after any invoice the move concerns (lock order: invoice -> invoice payment -> customer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from service.db import Conn
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
    conn: Conn, caller: Caller, customer_id: str, params: dict[str, Any], *, now: int
) -> dict[str, Any]:
    """Add an `adjustment` to the customer's balance in its currency (a negative amount
    credits it) and write `customer.updated`. Any currency is accepted; the first
    transaction sets the customer's default currency."""
    with conn.transaction():
        customer = customers.get_for_update(conn, customer_id, caller.livemode)
        if customer is None or customer.deleted:  # a deleted customer is billed no more
            raise NotFound(f"No such customer: '{customer_id}'", param="customer")
        txn, event = _move(
            conn,
            caller,
            customer,
            _adjustment(
                caller,
                customer.id,
                params["amount"],
                params["currency"],
                now=now,
                description=params.get("description"),
                metadata=params.get("metadata"),
            ),
        )
        events.add(conn, event)
    return txn


def set_balance(
    conn: Conn, caller: Caller, customer: Customer, balance: int, *, now: int
) -> dict[str, Any] | None:
    """A customer update's `balance=`: the `adjustment` that moves the locked customer's
    balance in its default currency to `balance` (Stripe: "You may modify the value
    directly by using the update customer API, or by creating a Customer Balance
    Transaction"; either way the ledger holds the move). Returns the transaction, or
    None when the balance is already that; no event, since the update writes the
    customer.updated of its whole change."""
    if balance == customer.balance:
        return None
    currency = customer.currency or money.DEFAULT_CURRENCY
    return balance_transactions.add(
        conn, _adjustment(caller, customer.id, balance - customer.balance, currency, now=now)
    )


def update_balance_transaction(
    conn: Conn, caller: Caller, customer_id: str, txn_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Change a transaction's description or metadata, all that may change of it (Stripe
    announces no event for it)."""
    with conn.transaction():
        if customers.get(conn, customer_id, caller.livemode) is None:
            raise NotFound(f"No such customer: '{customer_id}'", param="customer")
        txn = balance_transactions.get_for_update(conn, customer_id, txn_id, caller.livemode)
        if txn is None:
            raise NotFound(f"No such customer_balance_transaction: '{txn_id}'", param="id")
        changes: dict[str, Any] = {k: params[k] for k in ("description", "metadata") if k in params}
        if "metadata" in changes:
            changes["metadata"] = merge_metadata(txn["metadata"], changes["metadata"])
        if {**txn, **changes} == txn:
            return txn
        return balance_transactions.update_notes(conn, {**txn, **changes})


def open_balance(
    conn: Conn, caller: Caller, customer: Customer, amount: int, *, now: int
) -> Customer:
    """A new customer's `balance=`: its `initial` transaction, in the default currency
    (Stripe's customer create takes no currency). Returns the customer after it; no
    event, since the customer is created with it."""
    txn = balance_transactions.add(
        conn,
        _transaction(caller, customer.id, rules.INITIAL, amount, money.DEFAULT_CURRENCY, now=now),
    )
    return replace(customer, balance=txn["ending_balance"], currency=txn["currency"])


def apply_to_invoice(conn: Conn, caller: Caller, invoice: Invoice, *, now: int) -> Applied:
    """Finalize's part: the customer's balance in the invoice's currency starts the
    invoice, and only that one (Stripe: "A CAD invoice doesn't apply a customer credit
    balance denominated in USD or any other currency other than CAD"); a credit pays what
    it can of the total, a debit is added to it, and an `applied_to_invoice` transaction
    moves the difference.

    A negative total (negative items are credits) leaves amount_due 0 and its credit on
    the balance: ending = min(total + starting, 0), so the transaction's amount is
    negative, a credit to the customer. Stripe's transaction types have none of their own
    for this, and finalize is the one move an invoice makes on the balance, so it stays
    `applied_to_invoice`: one transaction per invoice holds all finalize did, and void's
    `unapplied_from_invoice` reverses exactly it. The invoice, with nothing due, is paid at
    finalize (rules.finalized_status)."""
    customer = _locked_customer(conn, invoice)
    starting = customers.balance_in(conn, customer.id, invoice.currency)
    ending = money.ending_balance(invoice.total, starting)
    if ending == starting:
        return Applied(starting, ending, [])
    event = _invoice_move(
        conn, caller, customer, invoice, rules.APPLIED_TO_INVOICE, ending - starting, now=now
    )
    return Applied(starting, ending, [event])


def return_from_invoice(conn: Conn, caller: Caller, invoice: Invoice, *, now: int) -> list[Event]:
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
    conn: Conn, caller: Caller, invoice: Invoice, growth: int, *, now: int
) -> list[Event]:
    """A credit's part when it made the invoice's amount_overpaid grow by `growth`: that
    much is credited to the customer's balance in the invoice's currency
    (`invoice_overpaid`). Returns the events."""
    customer = _locked_customer(conn, invoice)
    return [
        _invoice_move(conn, caller, customer, invoice, rules.INVOICE_OVERPAID, -growth, now=now)
    ]


def _locked_customer(conn: Conn, invoice: Invoice) -> Customer:
    customer = customers.get_for_update(conn, invoice.customer, invoice.livemode)
    if customer is None:  # invoices.customer references it
        raise RuntimeError(f"customer {invoice.customer} of invoice {invoice.id} is missing")
    return customer


def _invoice_move(
    conn: Conn,
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


def _adjustment(
    caller: Caller,
    customer_id: str,
    amount: int,
    currency: str,
    *,
    now: int,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An `adjustment` (what the API adds to a balance), to append."""
    return _transaction(
        caller,
        customer_id,
        rules.ADJUSTMENT,
        amount,
        currency,
        now=now,
        description=description,
        metadata=metadata,
    )


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
    conn: Conn, caller: Caller, customer: Customer, txn: dict[str, Any]
) -> tuple[dict[str, Any], Event]:
    """Append `txn` to the locked customer's balance; return it as written, with the
    `customer.updated` event of the change.

    A move in the default currency shows in `balance` (and sets `currency` when it is
    the customer's first). A move in another currency shows in no field a customer is
    rendered with: only in `invoice_credit_balance`, which is includable and so left out
    of events. Stripe's customer.updated "Occurs whenever any property of a customer
    changes", and invoice_credit_balance is one, so that event includes the field, and
    its previous_attributes name the currency that moved and its balance before.
    """
    written = balance_transactions.add(conn, txn)
    before = render_customer(as_dict(customer))
    if customer.currency in (None, txn["currency"]):
        after = render_customer(
            {**as_dict(customer), "balance": written["ending_balance"], "currency": txn["currency"]}
        )
        previous = changed_attributes(before, after)
    else:
        after = {**before, "invoice_credit_balance": customers.balances(conn, customer.id)}
        was = written["ending_balance"] - written["amount"]
        previous = {"invoice_credit_balance": {written["currency"]: was}}
    event = caller.event("customer.updated", after, now=txn["created"], previous=previous)
    return written, event
