"""The customer object and its balance transactions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, fields

from service.domain.balances import Customer
from service.domain.ledger import as_dict
from service.render.compiled import compiled_dump


class CustomerSchema(Schema):
    id = fields.String()
    object = fields.Constant("customer")
    address = fields.Constant(None)
    balance = fields.Integer()
    created = fields.Integer()
    currency = fields.String(allow_none=True)
    default_source = fields.Constant(None)
    delinquent = fields.Constant(False)
    description = fields.String(allow_none=True)
    discount = fields.Constant(None)
    email = fields.String(allow_none=True)
    invoice_prefix = fields.String()
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
    next_invoice_sequence = fields.Integer()
    phone = fields.String(allow_none=True)
    preferred_locales = fields.Constant[list[Any]]([])
    shipping = fields.Constant(None)
    tax_exempt = fields.Constant("none")
    test_clock = fields.Constant(None)


_schema = compiled_dump(CustomerSchema())


def render_customer(customer: Customer | Mapping[str, Any]) -> dict[str, Any]:
    """A customer, typed (store.customers) or as a list page's row."""
    return _schema(as_dict(customer) if isinstance(customer, Customer) else customer)


def render_deleted_customer(customer_id: str) -> dict[str, Any]:
    """What Stripe answers for a deleted customer, on delete and on retrieve."""
    return {"id": customer_id, "object": "customer", "deleted": True}


class BalanceTransactionSchema(Schema):
    id = fields.String()
    object = fields.Constant("customer_balance_transaction")
    amount = fields.Integer()
    checkout_session = fields.Constant(None)
    created = fields.Integer()
    credit_note = fields.Constant(None)
    currency = fields.String()
    customer = fields.String()
    customer_account = fields.Constant(None)
    description = fields.String(allow_none=True)
    ending_balance = fields.Integer()
    invoice = fields.String(allow_none=True)
    livemode = fields.Boolean()
    metadata = fields.Dict()
    type = fields.String()


_balance_transaction = compiled_dump(BalanceTransactionSchema())


def render_balance_transaction(row: dict[str, Any]) -> dict[str, Any]:
    return _balance_transaction(row)
