"""What /openapi.json describes, as marshmallow schemas for apispec: the render schemas
with what `expand` does to them, the objects built without one (events, errors,
lists, deleted objects, probes), and the headers of requests and responses."""

from __future__ import annotations

import functools
from typing import Any

from marshmallow import Schema, fields, validate

from service.api import expansion
from service.api.openapi_schemas import Answer, Component, Expandable, Included
from service.config import API_VERSION
from service.render.customers import BalanceTransactionSchema, CustomerSchema
from service.render.invoices import InvoiceItemSchema, InvoiceSchema, LineItemSchema
from service.render.payments import (
    InvoicePaymentSchema,
    PaymentIntentSchema,
    PaymentRecordSchema,
)
from service.render.webhook_endpoints import WebhookEndpointSchema

# The objects rendered with marshmallow, by the name Stripe gives them.
RENDERED: dict[str, type[Schema]] = {
    "customer": CustomerSchema,
    "customer_balance_transaction": BalanceTransactionSchema,
    "invoice": InvoiceSchema,
    "invoiceitem": InvoiceItemSchema,
    "line_item": LineItemSchema,
    "invoice_payment": InvoicePaymentSchema,
    "payment_intent": PaymentIntentSchema,
    "payment_record": PaymentRecordSchema,
    "webhook_endpoint": WebhookEndpointSchema,
}
# Fields in one response only: the signing secret, in the one that created it.
SOMETIMES = {"webhook_endpoint": {"secret"}}
# Lists inside an object (passed to the render schema, or includable), of what.
EMBEDDED_LISTS = {("invoice", "lines"): "line_item", ("invoice", "payments"): "invoice_payment"}
SEARCHED = ("customer", "invoice")
DELETABLE = ("customer", "webhook_endpoint", "invoice", "invoiceitem")


class EventData(Answer):
    optional = frozenset({"previous_attributes"})

    object = fields.Dict()
    previous_attributes = fields.Dict()


class EventRequest(Answer):
    id = fields.String(allow_none=True)
    idempotency_key = fields.String(allow_none=True)


class EventObject(Answer):
    """domain/events.py builds these."""

    component = "event"

    id = fields.String()
    object = fields.Constant("event")
    api_version = fields.String()
    created = fields.Integer()
    data = fields.Nested(EventData)
    livemode = fields.Boolean()
    pending_webhooks = fields.Integer(validate=validate.Range(min=0))
    request = fields.Nested(EventRequest)
    type = fields.String()


class ErrorBody(Answer):
    optional = frozenset({"code", "param"})

    type = fields.String(
        validate=validate.OneOf(
            [
                "api_error",
                "authentication_error",
                "idempotency_error",
                "invalid_request_error",
                "rate_limit_error",
            ]
        )
    )
    message = fields.String()
    code = fields.String()
    param = fields.String()


class ErrorObject(Answer):
    component = "error"

    class Meta(Answer.Meta):
        description = "Stripe's error object."

    error = fields.Nested(ErrorBody)


class Alive(Answer):
    status = fields.Constant("ok")


class Ready(Answer):
    optional = frozenset({"pending_migrations"})

    status = fields.String(validate=validate.OneOf(["ready", "unavailable"]))
    checks = fields.Dict(values=fields.String())
    pending_migrations = fields.List(fields.String())


class ResponseHeaders(Schema):
    """The headers of every response."""

    request_id = fields.String(
        data_key="Request-Id",
        required=True,
        validate=validate.Regexp("^req_"),
        metadata={"description": "This request's id, req_…"},
    )


class ApiResponseHeaders(ResponseHeaders):
    """The headers of every response of the API (/v1/)."""

    stripe_version = fields.String(
        data_key="Stripe-Version",
        required=True,
        validate=validate.OneOf([API_VERSION]),
        metadata={"description": "The API version objects are rendered in"},
    )


class IdempotentResponseHeaders(ApiResponseHeaders):
    """The headers of a response to a POST of the API."""

    idempotency_key = fields.String(
        data_key="Idempotency-Key", metadata={"description": "The request's key, echoed"}
    )
    idempotent_replayed = fields.String(
        data_key="Idempotent-Replayed",
        validate=validate.OneOf(["true"]),
        metadata={"description": "Present on a replayed response"},
    )
    original_request = fields.String(
        data_key="Original-Request",
        metadata={"description": "On a replay: the id of the request that ran"},
    )


class IdempotencyKeyHeader(Schema):
    """What a POST of the API may send besides its parameters."""

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=validate.Length(max=255),
        metadata={
            "description": "A retry with the same key and parameters replays the first "
            "response; with other parameters it is a 400 idempotency_error."
        },
    )


def path_parameters(names: list[str]) -> type[Schema]:
    """The parameters of a URL rule: each an id, a string."""
    return Schema.from_dict({name: fields.String(required=True) for name in names})


def _answer(name: str, schema: type[Schema], declared: dict[str, Any]) -> type[Answer]:
    """The component `name`: `schema` with the fields `declared`, as an Answer."""
    answer: type[Answer] = type(f"{name}_answer", (Answer, schema), declared)
    answer.component = name
    return answer


def _list_of(item: str, kind: str = "list", **more: fields.Field) -> type[Answer]:
    """Stripe's list object (or another `kind`, with `more` fields) whose `data` holds
    `item` objects."""
    return _answer(
        f"{item}_{kind}",
        Schema,
        {
            "object": fields.Constant(kind),
            "data": fields.List(Component(item)),
            "has_more": fields.Boolean(),
            "url": fields.String(),
            **more,
        },
    )


def _deleted(name: str) -> type[Answer]:
    """What a DELETE of a `name` answers."""
    return _answer(
        f"deleted_{name}",
        Schema,
        {"id": fields.String(), "object": fields.Constant(name), "deleted": fields.Constant(True)},
    )


def _rendered(name: str, schema: type[Schema]) -> type[Answer]:
    """A render schema's object, with its ids `expand` may turn into objects and the
    fields it may include."""
    declared: dict[str, Any] = {}
    optional = set(SOMETIMES.get(name, ()))
    for field, target in expansion.EXPANDABLE_FIELDS.get(name, {}).items():
        declared[field] = Expandable(target, allow_none=schema().fields[field].allow_none)
    for (obj, field), include in expansion.includers():
        if obj == name:
            declared[field] = Included(include)
            optional.add(field)
    for (obj, field), item in EMBEDDED_LISTS.items():
        if obj == name:
            declared[field] = Component(f"{item}_list")
    return _answer(name, schema, {**declared, "optional": frozenset(optional)})


@functools.cache
def objects() -> tuple[type[Answer], ...]:
    """Every object of components/schemas. (After the views are imported: they register
    the includable fields.)"""
    return (
        *(_rendered(name, schema) for name, schema in RENDERED.items()),
        *(_deleted(name) for name in DELETABLE),
        EventObject,
        ErrorObject,
        *(_list_of(name) for name in [*RENDERED, "event"]),
        *(
            _list_of(name, "search_result", next_page=fields.String(allow_none=True))
            for name in SEARCHED
        ),
    )
