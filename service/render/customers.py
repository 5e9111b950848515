"""The customer object."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields


class CustomerSchema(Schema):
    id = fields.String()
    object = fields.Constant("customer")
    address = fields.Constant(None)
    balance = fields.Constant(0)
    created = fields.Integer()
    currency = fields.Constant(None)
    default_source = fields.Constant(None)
    delinquent = fields.Constant(False)
    description = fields.String(allow_none=True)
    discount = fields.Constant(None)
    email = fields.String(allow_none=True)
    invoice_prefix = fields.Constant(None)
    invoice_settings = fields.Constant(
        {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        }
    )
    livemode = fields.Boolean()
    metadata = fields.Dict()
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    preferred_locales = fields.Constant([])
    shipping = fields.Constant(None)
    tax_exempt = fields.Constant("none")
    test_clock = fields.Constant(None)


_schema = CustomerSchema()


def render_customer(row: dict[str, Any]) -> dict[str, Any]:
    return _schema.dump(row)  # type: ignore[no-any-return]
