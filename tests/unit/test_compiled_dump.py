"""Each compiled renderer gives what its schema's own dump gives: the same keys in the
same order, the same values, or the same exception."""

from __future__ import annotations

import random
from typing import Any

import pytest
from marshmallow import Schema, fields

from service.render.compiled import compiled_dump
from service.render.customers import BalanceTransactionSchema, CustomerSchema
from service.render.invoices import (
    CREDIT_CHANGES,
    InvoiceItemSchema,
    InvoiceSchema,
    LineItemSchema,
)
from service.render.payments import InvoicePaymentSchema, PaymentIntentSchema, PaymentRecordSchema
from service.render.webhook_endpoints import WebhookEndpointSchema

SCHEMAS = {
    "invoice": lambda: InvoiceSchema(),
    "credit_changes": lambda: InvoiceSchema(only=CREDIT_CHANGES),
    "line_item": lambda: LineItemSchema(),
    "invoiceitem": lambda: InvoiceItemSchema(),
    "customer": lambda: CustomerSchema(),
    "balance_transaction": lambda: BalanceTransactionSchema(),
    "webhook_endpoint": lambda: WebhookEndpointSchema(exclude=("secret",)),
    "webhook_endpoint_created": lambda: WebhookEndpointSchema(),
    "payment_intent": lambda: PaymentIntentSchema(),
    "payment_record": lambda: PaymentRecordSchema(),
    "invoice_payment": lambda: InvoicePaymentSchema(),
}

# Values each field type is given: the usual one first, then ones it converts.
VALUES: dict[type[fields.Field], list[Any]] = {
    fields.String: ["text", b"bytes", 12, None],
    fields.Integer: [7, True, "8", None],
    fields.Boolean: [True, 0, None],
    fields.Dict: [{"a": "b"}, [("c", "d")], None],
}


def outcome(dump: Any, row: Any) -> tuple[str, Any]:
    try:
        result = dump(row)
    except Exception as error:  # compared, not handled
        return "raised", type(error)
    return "dumped", (list(result), result)


def rows_for(schema: Schema, rng: random.Random) -> list[dict[str, Any]]:
    """A row with every attribute, rows with converted or None values, rows missing keys."""
    attributes = {(f.attribute or name): type(f) for name, f in schema.fields.items()}

    def row(choose: Any) -> dict[str, Any]:
        values = {
            a: choose(VALUES.get(kind, [{"object": "list"}])) for a, kind in attributes.items()
        }
        # What Method and Function fields read, besides the fields' own attributes.
        for key in ("total", "starting_balance", "amount_paid", "created", "unit_amount"):
            values.setdefault(key, 5)
        for key in ("finalized_at", "marked_uncollectible_at", "paid_at", "voided_at"):
            values.setdefault(key, None)
        values.setdefault("quantity", 1)
        values.setdefault("id", "x_1")
        return values

    usual = row(lambda options: options[0])
    rows = [usual]
    rows += [row(rng.choice) for _ in range(20)]
    for _ in range(20):
        partial = dict(usual)
        for key in rng.sample(sorted(partial), k=rng.randint(1, 3)):
            del partial[key]
        rows.append(partial)
    return rows


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_compiled_dump_is_the_schemas_dump(name):
    schema = SCHEMAS[name]()
    dump = compiled_dump(schema)
    for row in rows_for(schema, random.Random(name)):
        assert outcome(dump, row) == outcome(schema.dump, row), row


def test_a_field_type_it_does_not_compile_is_left_to_marshmallow():
    class WithNested(Schema):
        id = fields.String()
        tags = fields.List(fields.String())
        when = fields.Integer(attribute="at.second")

    schema = WithNested()
    row = {"id": "a", "tags": ["x", 1], "at": {"second": "3"}}
    assert (
        compiled_dump(schema)(row) == schema.dump(row) == {"id": "a", "tags": ["x", "1"], "when": 3}
    )
