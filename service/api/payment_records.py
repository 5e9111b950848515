"""/v1/payment_records: payments made outside Stripe, reported to Tally."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, g
from marshmallow import Schema, fields, validate

from service.api import deps
from service.api.expansion import expand, expandable
from service.api.lists import RETRIEVE, retrieve_response
from service.api.openapi import documented, ref
from service.api.params import load
from service.api.schemas import Currency, Metadata, ObjectId, RequestSchema, amount, text
from service.errors import ResourceMissing
from service.operations.payments import report_payment
from service.render.payments import render_payment_record
from service.store import customers, payment_records

bp = Blueprint("payment_records", __name__, url_prefix="/v1/payment_records")


class AmountSchema(Schema):
    value = amount(required=True)
    currency = Currency(required=True)


class CustomerDetailsSchema(Schema):
    customer = ObjectId("cus")
    email = text(800)
    name = text(256)
    phone = text(30)


class PaymentMethodDetailsSchema(Schema):
    type = fields.String(validate=validate.OneOf(["custom"]), load_default="custom")
    custom = fields.Dict()
    billing_details = fields.Dict()
    payment_method = text(200)


def _timestamp(**kwargs: Any) -> fields.Integer:
    """Unix seconds that fit the bigint columns (a larger one was a 500)."""
    return fields.Integer(strict=False, validate=validate.Range(0, 2**31 - 1), **kwargs)


class GuaranteedSchema(Schema):
    guaranteed_at = _timestamp(required=True)


class FailedSchema(Schema):
    failed_at = _timestamp(required=True)


class ProcessorDetailsSchema(Schema):
    type = fields.String(validate=validate.OneOf(["custom"]), load_default="custom")
    custom = fields.Dict()


class ReportPaymentSchema(RequestSchema):
    amount_requested = fields.Nested(AmountSchema, required=True)
    initiated_at = _timestamp(required=True)
    payment_method_details = fields.Nested(PaymentMethodDetailsSchema, load_default=dict)
    customer_details = fields.Nested(CustomerDetailsSchema, load_default=dict)
    customer_presence = fields.String(validate=validate.OneOf(["on_session", "off_session"]))
    outcome = fields.String(validate=validate.OneOf(["guaranteed", "failed"]), load_default=None)
    guaranteed = fields.Nested(GuaranteedSchema)
    failed = fields.Nested(FailedSchema)
    processor_details = fields.Nested(ProcessorDetailsSchema)
    shipping_details = fields.Dict()
    description = text(5000)
    payment_reference = text(200)
    metadata = Metadata()


_report = ReportPaymentSchema()


@expandable("pr")
def fetch_payment_record(record_id: str, livemode: bool) -> dict[str, Any] | None:
    row = payment_records.get(deps.get_conn(), record_id, livemode)
    return render_payment_record(row) if row else None


@bp.post("/report_payment")
@documented(_report, ref("payment_record"))
def report() -> dict[str, Any]:
    params = load(_report, g.params)
    caller = deps.caller()
    conn = deps.get_conn()
    customer = params["customer_details"].get("customer")
    if customer and customers.get(conn, customer, caller.livemode) is None:
        raise ResourceMissing(f"No such customer: '{customer}'", param="customer_details[customer]")
    processor = params.get("processor_details") or {}
    row = report_payment(
        conn,
        caller,
        {
            "amount": params["amount_requested"]["value"],
            "currency": params["amount_requested"]["currency"],
            "customer": customer,
            "outcome": params["outcome"],
            "payment_method_type": params["payment_method_details"].get("type", "custom"),
            "payment_reference": params.get("payment_reference")
            or (processor.get("custom") or {}).get("payment_reference"),
            "description": params.get("description"),
            "initiated_at": params["initiated_at"],
            "guaranteed_at": (params.get("guaranteed") or {}).get("guaranteed_at"),
            "failed_at": (params.get("failed") or {}).get("failed_at"),
            "metadata": params.get("metadata"),
        },
        now=int(time.time()),
    )
    return expand(render_payment_record(row), params["expand"], caller.livemode)


@bp.get("/<record_id>")
@documented(RETRIEVE, ref("payment_record"))
def retrieve(record_id: str) -> dict[str, Any]:
    return retrieve_response(fetch_payment_record, record_id, "payment_record")
