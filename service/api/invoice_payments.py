"""/v1/invoice_payments, the includable `payments` and `amount_paid_off_stripe` of an
invoice, and attach_payment."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, g
from marshmallow import Schema, fields, validate, validates_schema
from marshmallow import ValidationError as SchemaError

from service.api import deps
from service.api.expansion import expand, expandable, includable
from service.api.lists import RETRIEVE, each, list_response, retrieve_response
from service.api.openapi import documented, page_of, ref
from service.api.params import load
from service.api.schemas import CreatedListParamsSchema, ObjectId, RequestSchema
from service.errors import InvalidParameter
from service.operations.attach import attach_payment
from service.render.invoices import render_invoice
from service.render.lists import list_object
from service.render.payments import render_invoice_payment
from service.store import invoice_payments

bp = Blueprint("invoice_payments", __name__)

# How many payments an invoice shows inline when `payments` is expanded.
INCLUDED_PAYMENTS = 10


class AttachPaymentSchema(RequestSchema):
    payment_intent = ObjectId("pi", load_default=None)
    payment_record = ObjectId("pr", load_default=None)


class PaymentFilterSchema(Schema):
    type = fields.String(validate=validate.OneOf(["payment_intent", "payment_record"]))
    payment_intent = ObjectId("pi")
    payment_record = ObjectId("pr")


class ListInvoicePaymentsSchema(CreatedListParamsSchema):
    invoice = ObjectId("in", load_default=None)
    status = fields.String(validate=validate.OneOf(["open", "paid", "canceled"]), load_default=None)
    payment = fields.Nested(PaymentFilterSchema, load_default=dict)

    @validates_schema
    def _one_payment_kind(self, data: dict[str, Any], **_: Any) -> None:
        payment = data.get("payment") or {}
        if payment.get("payment_intent") and payment.get("payment_record"):
            raise SchemaError("give payment_intent or payment_record, not both.", "payment")


_attach = AttachPaymentSchema()
_list = ListInvoicePaymentsSchema()


@expandable("inpay")
def fetch_invoice_payment(payment_id: str, livemode: bool) -> dict[str, Any] | None:
    row = invoice_payments.get(deps.get_conn(), payment_id, livemode)
    return render_invoice_payment(row) if row else None


@includable("invoice", "payments")
def include_payments(invoice: dict[str, Any], livemode: bool) -> dict[str, Any]:
    rows = invoice_payments.for_invoice(deps.get_conn(), invoice["id"], INCLUDED_PAYMENTS + 1)
    return list_object(
        [render_invoice_payment(r) for r in rows[:INCLUDED_PAYMENTS]],
        has_more=len(rows) > INCLUDED_PAYMENTS,
        url=f"/v1/invoices/{invoice['id']}/payments",
    )


@includable("invoice", "amount_paid_off_stripe")
def include_amount_paid_off_stripe(invoice: dict[str, Any], livemode: bool) -> int:
    return invoice_payments.paid_off_stripe(deps.get_conn(), invoice["id"])


@bp.post("/v1/invoices/<invoice_id>/attach_payment")
@documented(_attach, ref("invoice"))
def attach(invoice_id: str) -> dict[str, Any]:
    params = load(_attach, g.params)
    if (params["payment_intent"] is None) == (params["payment_record"] is None):
        raise InvalidParameter(
            "Provide exactly one of payment_intent or payment_record.",
            param="payment_intent" if params["payment_intent"] is None else "payment_record",
        )
    caller = deps.caller()
    conn = deps.get_conn()
    attached = attach_payment(
        conn,
        caller,
        invoice_id,
        payment_intent=params["payment_intent"],
        payment_record=params["payment_record"],
        upstream=deps.upstream(),
        now=int(time.time()),
    )
    if not attached.wrote_events:
        deps.no_events_written()
    invoice = render_invoice(attached.invoice, attached.line_rows)
    return expand(invoice, params["expand"], caller.livemode)


@bp.get("/v1/invoice_payments/<payment_id>")
@documented(RETRIEVE, ref("invoice_payment"))
def retrieve(payment_id: str) -> dict[str, Any]:
    return retrieve_response(fetch_invoice_payment, payment_id, "invoice_payment")


@bp.get("/v1/invoice_payments")
@documented(_list, page_of("invoice_payment"))
def list_payments() -> dict[str, Any]:
    def filters(args: dict[str, Any]) -> dict[str, Any]:
        payment = args["payment"]
        return {
            "invoice": args["invoice"],
            "status": args["status"],
            "payment_intent": payment.get("payment_intent"),
            "payment_record": payment.get("payment_record"),
            "created": args["created"],
        }

    return list_response(
        "/v1/invoice_payments",
        "invoice_payments",
        each(render_invoice_payment),
        _list,
        filters=filters,
    )
