"""Invoice status rules: Stripe's moves, each one record, and what finalizing produces."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from service.errors import InvalidRequest, PaymentStateConflict

STATUSES = ("draft", "open", "paid", "void", "uncollectible")

# Fields POST /v1/invoices/:id may change, by status. Monetary values and
# collection_method freeze at finalization; paid and void invoices keep only notes.
UPDATABLE: dict[str, frozenset[str]] = {
    "draft": frozenset(
        {"description", "footer", "metadata", "auto_advance", "due_date", "collection_method"}
    ),
    "open": frozenset({"description", "footer", "metadata", "auto_advance", "due_date"}),
    "uncollectible": frozenset({"description", "footer", "metadata", "auto_advance", "due_date"}),
    "paid": frozenset({"description", "footer", "metadata"}),
    "void": frozenset({"description", "footer", "metadata"}),
}


@dataclass(frozen=True, slots=True)
class InvoiceItem:
    """An invoice_items row (service.store.invoice_items): a customer's pending charge,
    or, with its `invoice` and `line_id`, a line of that invoice."""

    id: str
    line_id: str | None
    livemode: bool
    customer: str
    invoice: str | None
    amount: int
    unit_amount: int
    quantity: int
    currency: str
    description: str | None
    metadata: dict[str, str]
    created: int


@dataclass(frozen=True, slots=True)
class Move:
    """One of Stripe's invoice moves: its name, the verb a refusal uses, the statuses it
    may start from, and the statuses of invoice payments that block it (DESIGN.md,
    "The ledger")."""

    name: str
    verb: str
    from_statuses: tuple[str, ...]
    blocking_payments: tuple[str, ...] = ()
    # What the refusal says instead, by the status the invoice is in.
    refusals: Mapping[str, str] = field(default_factory=dict)

    def check(self, status: str) -> None:
        """Refuse the move on an invoice in `status`."""
        if status in self.from_statuses:
            return
        message = self.refusals.get(status) or (
            f"You can only {self.verb} an invoice whose status is "
            f"{' or '.join(self.from_statuses)}; this invoice is {status}."
        )
        raise PaymentStateConflict(message, code="invoice_not_editable")

    def check_payments(self, invoice_id: str, blocked: bool) -> None:
        """Refuse the move when the invoice has invoice payments that block it."""
        if blocked:
            kinds = " or ".join(self.blocking_payments)
            raise PaymentStateConflict(
                f"Invoice {invoice_id} has {kinds} invoice payments, so you cannot {self.verb} it.",
                code="invoice_payment_in_progress",
            )


_FINALIZED = "This invoice is already finalized; only a draft invoice can be finalized."

# Stripe's invoice lifecycle.
FINALIZE = Move(
    "finalize",
    "finalize",
    ("draft",),
    refusals={status: _FINALIZED for status in STATUSES if status != "draft"},
)
VOID = Move("void", "void", ("open", "uncollectible"), blocking_payments=("open", "paid"))
MARK_UNCOLLECTIBLE = Move(
    "mark_uncollectible", "mark as uncollectible", ("open",), blocking_payments=("open",)
)
PAY = Move(
    "pay", "pay", ("open", "uncollectible"), refusals={"paid": "This invoice is already paid."}
)
# Stripe: "Permanently deletes a one-off invoice draft. [...] Attempts to delete
# invoices that are no longer in a draft state will fail".
DELETE = Move("delete", "delete", ("draft",))


def check_items_addable(status: str, invoice_id: str) -> None:
    """Items can only be added to a draft: a finalized invoice's total is frozen."""
    if status != "draft":
        raise InvalidRequest(
            f"Invoice {invoice_id} is {status}; invoice items can only be added to a draft "
            "invoice.",
            param="invoice",
            code="invoice_not_editable",
        )


def check_item_changeable(
    item_id: str, invoice_id: str | None, status: str | None, *, param: str | None = None
) -> None:
    """An invoice item can be updated or deleted while pending or on a draft (Stripe:
    "only possible when they're not attached to invoices, or if it's attached to a
    draft invoice"); a finalized invoice's lines are frozen. `param` names the field
    an update tried to change."""
    if invoice_id is not None and status != "draft":
        raise InvalidRequest(
            f"This invoice is no longer editable: invoice item {item_id} is on invoice "
            f"{invoice_id}, which is {status}.",
            param=param,
            code="invoice_not_editable",
        )


def check_update(status: str, fields: set[str]) -> None:
    """Refuse changes to fields the invoice's status has frozen."""
    frozen = sorted(fields - UPDATABLE[status])
    if frozen:
        raise InvalidRequest(
            f"You cannot update {frozen[0]} on an invoice whose status is {status}.",
            param=frozen[0],
            code="invoice_not_editable",
        )


def finalized_status(amount_due: int) -> str:
    """A finalized invoice with nothing due is paid at once, as in Stripe."""
    return "paid" if amount_due == 0 else "open"


def new_invoice_prefix() -> str:
    """A random prefix of 8 hex digits, like Stripe's `invoice_prefix`. Unique across
    customers by a constraint (customers_invoice_prefix_key); a clash is retried."""
    return secrets.token_hex(4).upper()


def invoice_number(prefix: str, sequence: int) -> str:
    """Stripe's default numbering: the customer's prefix and its own sequence. Prefixes
    are unique and hold no '-', so no two customers' numbers can ever be equal."""
    return f"{prefix}-{sequence:04d}"
