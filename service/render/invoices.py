"""Invoices, their line items and invoice items in Stripe's shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, fields

from service.domain.invoices import InvoiceItem
from service.domain.ledger import as_dict
from service.domain.money import amount_due, overpaid, remaining
from service.render.compiled import compiled_dump
from service.render.lists import list_object

# How many lines an invoice embeds; the rest are at GET /v1/invoices/:id/lines.
EMBEDDED_LINES = 10


def _period(row: dict[str, Any]) -> dict[str, int]:
    return {"end": row["created"], "start": row["created"]}


def _pricing(row: dict[str, Any]) -> dict[str, Any]:
    # Tally has no prices or products: amounts are given directly, so no price_details
    # (which the SDKs declare may be left out, never null).
    return {"type": "price_details", "unit_amount_decimal": str(row["unit_amount"])}


def _quantity_decimal(row: dict[str, Any]) -> str:
    return str(row["quantity"])


class InvoiceItemSchema(Schema):
    id = fields.String()
    object = fields.Constant("invoiceitem")
    amount = fields.Integer()
    currency = fields.String()
    customer = fields.String()
    customer_account = fields.Constant(None)
    date = fields.Integer(attribute="created", dump_only=True)
    description = fields.String(allow_none=True)
    discountable = fields.Constant(True)
    discounts = fields.Constant[list[Any]]([])
    invoice = fields.String(allow_none=True)
    livemode = fields.Boolean()
    metadata = fields.Dict()
    parent = fields.Constant(None)
    period = fields.Function(_period)
    pricing = fields.Function(_pricing)
    proration = fields.Constant(False)
    quantity = fields.Integer()
    quantity_decimal = fields.Function(_quantity_decimal)
    tax_rates = fields.Constant[list[Any]]([])
    test_clock = fields.Constant(None)


class LineItemSchema(Schema):
    id = fields.String(attribute="line_id")
    object = fields.Constant("line_item")
    amount = fields.Integer()
    currency = fields.String()
    description = fields.String(allow_none=True)
    discount_amounts = fields.Constant[list[Any]]([])
    discountable = fields.Constant(True)
    discounts = fields.Constant[list[Any]]([])
    invoice = fields.String()
    livemode = fields.Boolean()
    metadata = fields.Dict()
    parent = fields.Method("_parent")
    period = fields.Function(_period)
    pretax_credit_amounts = fields.Constant[list[Any]]([])
    pricing = fields.Function(_pricing)
    quantity = fields.Integer()
    quantity_decimal = fields.Function(_quantity_decimal)
    subscription = fields.Constant(None)
    # Before discounts and taxes, which Tally does not apply.
    subtotal = fields.Integer(attribute="amount", dump_only=True)
    taxes = fields.Constant[list[Any]]([])

    def _parent(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": row["id"],
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
        }


class InvoiceSchema(Schema):
    """The invoice as the seed shows it, less the fields Stripe has removed since
    (`transfer_data` went in basil; `redaction` is a preview field the pinned version
    does not have), plus the fields the SDKs declare always present (stripe-node's
    types, tests/test_sdk.py); `lines` is passed in precomputed, `payments` and
    `amount_paid_off_stripe` are includable and added by expansion."""

    id = fields.String()
    object = fields.Constant("invoice")
    account_country = fields.Constant("US")
    account_name = fields.Constant("Tally")
    account_tax_ids = fields.Constant(None)
    amount_due = fields.Method("_amount_due")
    amount_paid = fields.Integer()
    amount_overpaid = fields.Method("_amount_overpaid")
    amount_remaining = fields.Method("_amount_remaining")
    amount_shipping = fields.Constant(0)
    application = fields.Constant(None)
    attempt_count = fields.Constant(0)
    attempted = fields.Constant(False)
    auto_advance = fields.Boolean()
    automatic_tax = fields.Constant(
        {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        }
    )
    automatically_finalizes_at = fields.Constant(None)
    billing_reason = fields.Constant("manual")
    collection_method = fields.String()
    created = fields.Integer()
    currency = fields.String()
    custom_fields = fields.Constant(None)
    customer = fields.String()
    customer_account = fields.Constant(None)
    customer_address = fields.Constant(None)
    customer_email = fields.String(allow_none=True)
    customer_name = fields.String(allow_none=True)
    customer_phone = fields.Constant(None)
    customer_shipping = fields.Constant(None)
    customer_tax_exempt = fields.Constant("none")
    customer_tax_ids = fields.Constant[list[Any]]([])
    default_payment_method = fields.Constant(None)
    default_source = fields.Constant(None)
    default_tax_rates = fields.Constant[list[Any]]([])
    description = fields.String(allow_none=True)
    discounts = fields.Constant[list[Any]]([])
    due_date = fields.Integer(allow_none=True)
    effective_at = fields.Integer(attribute="finalized_at", allow_none=True)
    ending_balance = fields.Integer(allow_none=True)
    footer = fields.String(allow_none=True)
    from_invoice = fields.Constant(None)
    hosted_invoice_url = fields.Constant(None)
    invoice_pdf = fields.Constant(None)
    issuer = fields.Constant({"type": "self"})
    last_finalization_error = fields.Constant(None)
    latest_revision = fields.Constant(None)
    lines = fields.Raw(attribute="_lines")
    livemode = fields.Boolean()
    metadata = fields.Dict()
    next_payment_attempt = fields.Constant(None)
    number = fields.String(allow_none=True)
    on_behalf_of = fields.Constant(None)
    parent = fields.Constant(None)
    payment_settings = fields.Constant(
        {"default_mandate": None, "payment_method_options": None, "payment_method_types": None}
    )
    period_end = fields.Integer(attribute="created", dump_only=True)
    period_start = fields.Integer(attribute="created", dump_only=True)
    post_payment_credit_notes_amount = fields.Constant(0)
    pre_payment_credit_notes_amount = fields.Constant(0)
    receipt_number = fields.Constant(None)
    rendering = fields.Constant(None)
    shipping_cost = fields.Constant(None)
    shipping_details = fields.Constant(None)
    starting_balance = fields.Integer()
    statement_descriptor = fields.Constant(None)
    status = fields.String()
    status_transitions = fields.Method("_status_transitions")
    subtotal = fields.Integer(attribute="total", dump_only=True)
    subtotal_excluding_tax = fields.Integer(attribute="total", dump_only=True)
    test_clock = fields.Constant(None)
    total = fields.Integer()
    total_discount_amounts = fields.Constant[list[Any]]([])
    total_excluding_tax = fields.Integer(attribute="total", dump_only=True)
    total_pretax_credit_amounts = fields.Constant[list[Any]]([])
    total_taxes = fields.Constant[list[Any]]([])
    webhooks_delivered_at = fields.Constant(None)

    def _amount_due(self, row: dict[str, Any]) -> int:
        return amount_due(row["total"], row["starting_balance"])

    def _amount_remaining(self, row: dict[str, Any]) -> int:
        return remaining(self._amount_due(row), row["amount_paid"])

    def _amount_overpaid(self, row: dict[str, Any]) -> int:
        return overpaid(self._amount_due(row), row["amount_paid"])

    def _status_transitions(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "finalized_at": row["finalized_at"],
            "marked_uncollectible_at": row["marked_uncollectible_at"],
            "paid_at": row["paid_at"],
            "voided_at": row["voided_at"],
        }


_invoice = compiled_dump(InvoiceSchema())
_line = compiled_dump(LineItemSchema())
_item = compiled_dump(InvoiceItemSchema())
# The fields a credit can change: credits.apply_credits moves amount_paid, status,
# paid_at and paid_out_of_band (not shown), and these are all that show them.
CREDIT_CHANGES = (
    "amount_paid",
    "amount_overpaid",
    "amount_remaining",
    "status",
    "status_transitions",
)
_credit_changes = compiled_dump(InvoiceSchema(only=CREDIT_CHANGES))


def render_line_item(row: dict[str, Any]) -> dict[str, Any]:
    """An invoice item bound to an invoice, as that invoice's line."""
    return _line(row)


def render_invoice_item(item: InvoiceItem | Mapping[str, Any]) -> dict[str, Any]:
    """An invoice item, typed (store.invoice_items) or as a list page's row."""
    return _item(as_dict(item) if isinstance(item, InvoiceItem) else item)


def render_deleted(object_name: str, object_id: str) -> dict[str, Any]:
    """Stripe's answer to a DELETE: `{"id", "object", "deleted": true}`."""
    return {"id": object_id, "object": object_name, "deleted": True}


def lines_url(invoice_id: str) -> str:
    return f"/v1/invoices/{invoice_id}/lines"


def render_lines(invoice_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The embedded `lines` list of an invoice, from up to EMBEDDED_LINES + 1 item rows."""
    return list_object(
        [render_line_item(r) for r in rows[:EMBEDDED_LINES]],
        has_more=len(rows) > EMBEDDED_LINES,
        url=lines_url(invoice_id),
    )


def render_invoice(row: dict[str, Any], line_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """An invoices row (from store.invoices) with its first lines embedded, from its
    newest EMBEDDED_LINES + 1 items (store.invoice_items.lines), which the caller reads."""
    return _invoice({**row, "_lines": render_lines(row["id"], line_rows)})


def render_credit_changes(row: dict[str, Any]) -> dict[str, Any]:
    """Of an invoice rendered, only the fields a credit can change: the "before" of a
    credit's previous_attributes, at a tenth of a full render's cost."""
    return _credit_changes(row)


def render_invoices(
    rows: list[dict[str, Any]], line_rows: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Many invoices rows rendered, each with its lines from `line_rows` (by invoice id,
    as store.invoice_items.lines_of reads them for a list page in one query)."""
    return [render_invoice(row, line_rows[row["id"]]) for row in rows]
