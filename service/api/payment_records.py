"""/v1/payment_records: payments made outside Stripe, reported to Tally."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, g
from marshmallow import Schema, fields, validate

from service.api import deps
from service.api.expansion import expand, expandable
from service.api.lists import add_list, add_retrieve, each, fetcher
from service.api.openapi import documented, ref
from service.api.params import load
from service.api.schemas import (
    Currency,
    ListParamsSchema,
    Metadata,
    ObjectId,
    RequestSchema,
    amount,
    text,
)
from service.domain.payment_records import OUTCOMES
from service.errors import InvalidRequest, ResourceMissing
from service.operations.payment_records import (
    report_payment,
    report_payment_attempt,
    report_payment_attempt_outcome,
    report_payment_informational,
    report_refund,
)
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


class CanceledSchema(Schema):
    canceled_at = _timestamp(required=True)


class ProcessorDetailsSchema(Schema):
    type = fields.String(validate=validate.OneOf(["custom"]), load_default="custom")
    custom = fields.Dict()


class AttemptSchema(RequestSchema):
    """What a payment attempt is reported with: its start, and its outcome if it has
    ended (none: it is initiated, and a later report ends it)."""

    initiated_at = _timestamp(required=True)
    outcome = fields.String(validate=validate.OneOf(OUTCOMES), load_default=None)
    guaranteed = fields.Nested(GuaranteedSchema)
    failed = fields.Nested(FailedSchema)
    canceled = fields.Nested(CanceledSchema)
    payment_method_details = fields.Nested(PaymentMethodDetailsSchema, load_default=dict)
    shipping_details = fields.Dict()
    description = text(5000)
    metadata = Metadata()


class ReportPaymentSchema(AttemptSchema):
    amount_requested = fields.Nested(AmountSchema, required=True)
    customer_details = fields.Nested(CustomerDetailsSchema, load_default=dict)
    customer_presence = fields.String(validate=validate.OneOf(["on_session", "off_session"]))
    processor_details = fields.Nested(ProcessorDetailsSchema)
    payment_reference = text(200)


class ReportGuaranteedSchema(RequestSchema):
    guaranteed_at = _timestamp(required=True)
    metadata = Metadata()


class ReportFailedSchema(RequestSchema):
    failed_at = _timestamp(required=True)
    metadata = Metadata()


class ReportCanceledSchema(RequestSchema):
    canceled_at = _timestamp(required=True)
    metadata = Metadata()


class ReportInformationalSchema(RequestSchema):
    customer_details = fields.Nested(CustomerDetailsSchema)
    description = text(5000)
    metadata = Metadata()
    # Accepted, as on report_payment; Tally keeps no shipping details ("" clears them).
    shipping_details = fields.Raw(
        validate=lambda value: value == "" or isinstance(value, dict),
    )


class RefundProcessorCustomSchema(Schema):
    refund_reference = text(200, required=True)


class RefundProcessorDetailsSchema(Schema):
    type = fields.String(validate=validate.OneOf(["custom"]), required=True)
    custom = fields.Nested(RefundProcessorCustomSchema)


class RefundedSchema(Schema):
    refunded_at = _timestamp(required=True)


class ReportRefundSchema(RequestSchema):
    outcome = fields.String(validate=validate.OneOf(["refunded"]), required=True)
    processor_details = fields.Nested(RefundProcessorDetailsSchema, required=True)
    amount = fields.Nested(AmountSchema)
    initiated_at = _timestamp()
    refunded = fields.Nested(RefundedSchema)
    metadata = Metadata()


_report = ReportPaymentSchema()
_attempt = AttemptSchema()
_informational = ReportInformationalSchema()
_refund = ReportRefundSchema()
_list = ListParamsSchema()
_guaranteed = ReportGuaranteedSchema()
_failed = ReportFailedSchema()
_canceled = ReportCanceledSchema()


def _outcome_at(params: dict[str, Any]) -> int | None:
    """The time of the reported outcome, from its hash (`guaranteed[guaranteed_at]`).
    A hash of another outcome than the one reported (or of none) is refused, naming it."""
    outcome = params["outcome"]
    for name in OUTCOMES:
        if name in params and name != outcome:
            raise InvalidRequest(
                f"{name} can only be given with outcome={name}"
                + (f", not outcome={outcome}." if outcome else "; this attempt has no outcome."),
                param=name,
            )
    return (params.get(outcome) or {}).get(f"{outcome}_at") if outcome else None


fetch_payment_record = expandable("pr")(fetcher(payment_records.get, render_payment_record))


def _respond(row: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return expand(render_payment_record(row), params["expand"], deps.caller().livemode)


@bp.post("/report_payment")
@documented(_report, ref("payment_record"))
def report() -> dict[str, Any]:
    params = load(_report, g.params)
    outcome_at = _outcome_at(params)
    caller = deps.caller()
    conn = deps.get_conn()
    customer = params["customer_details"].get("customer")
    if customer and customers.get_billable(conn, customer, caller.livemode) is None:
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
            "outcome_at": outcome_at,
            "payment_method_type": params["payment_method_details"].get("type", "custom"),
            "payment_reference": params.get("payment_reference")
            or (processor.get("custom") or {}).get("payment_reference"),
            "description": params.get("description"),
            "initiated_at": params["initiated_at"],
            "metadata": params.get("metadata"),
        },
        now=int(time.time()),
    )
    return _respond(row, params)


@bp.post("/<record_id>/report_payment_attempt")
@documented(_attempt, ref("payment_record"))
def report_attempt(record_id: str) -> dict[str, Any]:
    params = load(_attempt, g.params)
    outcome_at = _outcome_at(params)
    attempt: dict[str, Any] = {
        key: params[key] for key in ("initiated_at", "outcome", "description", "metadata")
        if key in params
    }  # fmt: skip
    if "type" in params["payment_method_details"]:
        attempt["payment_method_type"] = params["payment_method_details"]["type"]
    row = report_payment_attempt(
        deps.get_conn(),
        deps.caller(),
        record_id,
        {**attempt, "outcome_at": outcome_at},
        now=int(time.time()),
    )
    return _respond(row, params)


def _report_outcome(record_id: str, outcome: str, schema: RequestSchema) -> dict[str, Any]:
    """report_payment_attempt_<outcome>: end the record's initiated attempt."""
    params = load(schema, g.params)
    row = report_payment_attempt_outcome(
        deps.get_conn(),
        deps.caller(),
        record_id,
        outcome,
        at=params[f"{outcome}_at"],
        metadata=params.get("metadata"),
        now=int(time.time()),
    )
    return _respond(row, params)


@bp.post("/<record_id>/report_payment_attempt_guaranteed")
@documented(_guaranteed, ref("payment_record"))
def report_guaranteed(record_id: str) -> dict[str, Any]:
    return _report_outcome(record_id, "guaranteed", _guaranteed)


@bp.post("/<record_id>/report_payment_attempt_failed")
@documented(_failed, ref("payment_record"))
def report_failed(record_id: str) -> dict[str, Any]:
    return _report_outcome(record_id, "failed", _failed)


@bp.post("/<record_id>/report_payment_attempt_canceled")
@documented(_canceled, ref("payment_record"))
def report_canceled(record_id: str) -> dict[str, Any]:
    return _report_outcome(record_id, "canceled", _canceled)


@bp.post("/<record_id>/report_payment_attempt_informational")
@documented(_informational, ref("payment_record"))
def report_informational(record_id: str) -> dict[str, Any]:
    params = load(_informational, g.params)
    changes: dict[str, Any] = {
        key: params[key] for key in ("description", "metadata") if key in params
    }
    if "customer_details" in params and "customer" in params["customer_details"]:
        changes["customer"] = params["customer_details"]["customer"]
    row = report_payment_informational(deps.get_conn(), deps.caller(), record_id, changes)
    return _respond(row, params)


@bp.post("/<record_id>/report_refund")
@documented(_refund, ref("payment_record"))
def report_refund_view(record_id: str) -> dict[str, Any]:
    params = load(_refund, g.params)
    amount = params.get("amount") or {}
    row = report_refund(
        deps.get_conn(),
        deps.caller(),
        record_id,
        {
            "amount": amount.get("value"),
            "currency": amount.get("currency"),
            "refund_reference": (params["processor_details"].get("custom") or {}).get(
                "refund_reference"
            ),
            "initiated_at": params.get("initiated_at"),
            "refunded_at": (params.get("refunded") or {}).get("refunded_at"),
            "metadata": params.get("metadata"),
        },
        now=int(time.time()),
    )
    return _respond(row, params)


add_retrieve(bp, "/<record_id>", fetch_payment_record, "payment_record", ref("payment_record"))


add_list(
    bp,
    "list_payment_records",
    "payment_records",
    each(render_payment_record),
    _list,
    "payment_record",
)
