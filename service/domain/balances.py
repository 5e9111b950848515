"""The customer balance's rules: one currency per customer, and what of the balance an
invoice in some currency can use."""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import InvalidRequest

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
    balance: int
    # Set by the customer's first balance transaction, and never changed after.
    currency: str | None


def holds(customer: Customer, currency: str) -> bool:
    """Whether the customer's balance can take a transaction in `currency`."""
    return customer.currency in (None, currency)


def balance_in(customer: Customer, currency: str) -> int:
    """What of the balance applies to an invoice in `currency`: all of it in the
    customer's currency, none in another."""
    return customer.balance if customer.currency == currency else 0


def check_currency(customer: Customer, currency: str) -> None:
    """Refuse a balance transaction in a currency other than the customer's."""
    if not holds(customer, currency):
        raise InvalidRequest(
            f"Customer {customer.id}'s balance is in {customer.currency}; a balance "
            f"transaction in {currency} cannot be added to it.",
            param="currency",
        )
