"""/v1/payment_intents: Tally's mirror of PaymentIntents, kept current by webhooks."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, g
from marshmallow import fields, validate

from service.api import deps
from service.api.expansion import expand, expandable
from service.api.lists import add_list, add_retrieve, each, fetcher
from service.api.openapi import documented, ref
from service.api.params import load
from service.api.schemas import (
    CreatedListParamsSchema,
    Currency,
    Metadata,
    ObjectId,
    RequestSchema,
    amount,
    text,
)
from service.operations.payments import cancel_payment_intent, create_payment_intent
from service.render.payments import render_payment_intent
from service.store import payment_intents

bp = Blueprint("payment_intents", __name__, url_prefix="/v1/payment_intents")


class CreatePaymentIntentSchema(RequestSchema):
    amount = amount(required=True)
    currency = Currency(required=True)
    customer = ObjectId("cus")
    description = text(1000)
    metadata = Metadata()
    # Accepted for the SDK's sake; Tally is not a processor and does not confirm.
    payment_method_types = fields.List(text(50))
    receipt_email = text(800)


class CancelSchema(RequestSchema):
    cancellation_reason = fields.String(
        validate=validate.OneOf(["duplicate", "fraudulent", "requested_by_customer", "abandoned"]),
        load_default=None,
    )


class ListPaymentIntentsSchema(CreatedListParamsSchema):
    customer = ObjectId("cus", load_default=None)


_create = CreatePaymentIntentSchema()
_cancel = CancelSchema()
_list = ListPaymentIntentsSchema()


fetch_payment_intent = expandable("pi")(fetcher(payment_intents.get, render_payment_intent))


@bp.post("")
@documented(_create, ref("payment_intent"))
def create() -> dict[str, Any]:
    params = load(_create, g.params)
    row = create_payment_intent(
        deps.get_conn(), deps.caller(), params, upstream=deps.upstream(), now=int(time.time())
    )
    return expand(render_payment_intent(row), params["expand"], deps.caller().livemode)


add_retrieve(bp, "/<pi_id>", fetch_payment_intent, "payment_intent", ref("payment_intent"))


add_list(
    bp,
    "list_payment_intents",
    "payment_intents",
    each(render_payment_intent),
    _list,
    "payment_intent",
)


@bp.post("/<pi_id>/cancel")
@documented(_cancel, ref("payment_intent"))
def cancel(pi_id: str) -> dict[str, Any]:
    params = load(_cancel, g.params)
    row = cancel_payment_intent(
        deps.get_conn(),
        deps.caller(),
        pi_id,
        reason=params["cancellation_reason"],
        upstream=deps.upstream(),
        now=int(time.time()),
    )
    return expand(render_payment_intent(row), params["expand"], deps.caller().livemode)
