"""The customer balance: its transaction types, and the customer row its moves lock."""

from __future__ import annotations

from dataclasses import dataclass

# Transaction types Tally writes (Stripe's names).
ADJUSTMENT = "adjustment"
INITIAL = "initial"
INVOICE_OVERPAID = "invoice_overpaid"
APPLIED_TO_INVOICE = "applied_to_invoice"
UNAPPLIED_FROM_INVOICE = "unapplied_from_invoice"


@dataclass(frozen=True, slots=True)
class Customer:
    """A customers row (service.store.customers), read locked before its balance moves."""

    id: str
    livemode: bool
    email: str | None
    name: str | None
    phone: str | None
    description: str | None
    metadata: dict[str, str]
    created: int
    # The balance in the customer's default currency; every currency's is in
    # customer_balances (service.store.customers.balance_in).
    balance: int
    # The default currency: set by the customer's first balance transaction, and never
    # changed after.
    currency: str | None
    invoice_prefix: str
    next_invoice_sequence: int
    deleted: bool
