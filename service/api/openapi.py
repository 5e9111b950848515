"""GET /openapi.json: every route of the URL map, with the parameters its view loads
(from its marshmallow request schema) and the objects it answers (from the render
schemas), as an OpenAPI 3.0 document."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint, Flask, current_app
from marshmallow import Schema

from service.api import expansion
from service.api.openapi_schemas import (
    annotation_schema,
    form_encoding,
    object_schema,
    query_parameters,
    request_body_schema,
)
from service.config import API_VERSION
from service.render.customers import BalanceTransactionSchema, CustomerSchema
from service.render.invoices import InvoiceItemSchema, InvoiceSchema, LineItemSchema
from service.render.payments import (
    InvoicePaymentSchema,
    PaymentIntentSchema,
    PaymentRecordSchema,
)

bp = Blueprint("openapi", __name__)

_PATH_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Operation:
    """What a view reads (the schema it loads from the parameters) and answers."""

    params: Schema | None
    returns: dict[str, Any]
    content_type: str = "application/json"
    statuses: tuple[int, ...] = ()
    extra: dict[str, Any] | None = None


def documented(
    params: Schema | None,
    returns: dict[str, Any],
    *,
    content_type: str = "application/json",
    statuses: tuple[int, ...] = (),
    extra: dict[str, Any] | None = None,
) -> Callable[[View], View]:
    """Describe a view in /openapi.json: `params` is the request schema it loads,
    `returns` the schema of its 200 body (see `ref` and `page_of`), `statuses` the
    error statuses it answers besides the API-wide ones, `extra` OpenAPI operation
    fields for a request no marshmallow schema describes."""

    def mark(view: View) -> View:
        # A function object takes attributes; typeshed's Callable declares none.
        view.openapi = Operation(params, returns, content_type, statuses, extra)  # type: ignore[attr-defined]
        return view

    return mark


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def page_of(name: str) -> dict[str, Any]:
    """A list object whose `data` holds `name` objects."""
    return ref(f"{name}_list")


def search_of(name: str) -> dict[str, Any]:
    """A search_result object whose `data` holds `name` objects."""
    return ref(f"{name}_search_result")


# The objects rendered with marshmallow; their fields are the schema's fields.
_RENDERED: dict[str, type[Schema]] = {
    "customer": CustomerSchema,
    "customer_balance_transaction": BalanceTransactionSchema,
    "invoice": InvoiceSchema,
    "invoiceitem": InvoiceItemSchema,
    "line_item": LineItemSchema,
    "invoice_payment": InvoicePaymentSchema,
    "payment_intent": PaymentIntentSchema,
    "payment_record": PaymentRecordSchema,
}
# Fields whose shape the render schema cannot tell (built as raw values).
_SHAPES: dict[tuple[str, str], dict[str, Any]] = {
    ("invoice", "lines"): page_of("line_item"),
    ("invoice", "payments"): page_of("invoice_payment"),
}

_STRING_OR_NULL = {"type": "string", "nullable": True}
_TIMESTAMP = {"type": "integer"}
_METADATA = {"type": "object", "additionalProperties": {"type": "string"}}

# Objects rendered by hand (render/webhook_endpoints.py, domain/events.py).
_HAND_RENDERED: dict[str, dict[str, Any]] = {
    "webhook_endpoint": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["webhook_endpoint"]},
            "api_version": _STRING_OR_NULL,
            "application": {"nullable": True, "enum": [None]},
            "created": _TIMESTAMP,
            "description": _STRING_OR_NULL,
            "enabled_events": {"type": "array", "items": {"type": "string"}},
            "livemode": {"type": "boolean"},
            "metadata": _METADATA,
            "secret": {
                "type": "string",
                "description": "The whsec_ signing secret: in the response that created "
                "the endpoint only.",
            },
            "status": {"type": "string", "enum": ["enabled", "disabled"]},
            "url": {"type": "string"},
        },
        "required": [
            "id",
            "object",
            "api_version",
            "application",
            "created",
            "description",
            "enabled_events",
            "livemode",
            "metadata",
            "status",
            "url",
        ],
    },
    **{
        f"deleted_{name}": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "object": {"type": "string", "enum": [name]},
                "deleted": {"type": "boolean", "enum": [True]},
            },
            "required": ["id", "object", "deleted"],
        }
        for name in ("customer", "webhook_endpoint", "invoice", "invoiceitem")
    },
    "event": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["event"]},
            "api_version": {"type": "string"},
            "created": _TIMESTAMP,
            "data": {
                "type": "object",
                "properties": {
                    "object": {"type": "object"},
                    "previous_attributes": {"type": "object"},
                },
                "required": ["object"],
            },
            "livemode": {"type": "boolean"},
            "pending_webhooks": {"type": "integer", "minimum": 0},
            "request": {
                "type": "object",
                "properties": {"id": _STRING_OR_NULL, "idempotency_key": _STRING_OR_NULL},
                "required": ["id", "idempotency_key"],
            },
            "type": {"type": "string"},
        },
        "required": [
            "id",
            "object",
            "api_version",
            "created",
            "data",
            "livemode",
            "pending_webhooks",
            "request",
            "type",
        ],
    },
    "error": {
        "description": "Stripe's error object.",
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "type": {
                        "type": "string",
                        "enum": [
                            "api_error",
                            "authentication_error",
                            "idempotency_error",
                            "invalid_request_error",
                            "rate_limit_error",
                        ],
                    },
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                    "param": {"type": "string"},
                },
                "required": ["type", "message"],
            }
        },
        "required": ["error"],
    },
}


def _components() -> dict[str, dict[str, Any]]:
    schemas: dict[str, dict[str, Any]] = {}
    for name, schema_class in _RENDERED.items():
        overrides = {field: shape for (obj, field), shape in _SHAPES.items() if obj == name}
        schemas[name] = _with_expansions(name, object_schema(schema_class(), overrides))
    schemas.update(_HAND_RENDERED)
    listed = [*_RENDERED, "webhook_endpoint", "event"]
    for name in listed:
        schemas[f"{name}_list"] = _list_schema(name)
    for name in _SEARCHED:
        schemas[f"{name}_search_result"] = _search_result_schema(name)
    return dict(sorted(schemas.items()))


def _with_expansions(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Expandable ids may come back as their objects; includable fields may be there."""
    properties = schema["properties"]
    for field, target in expansion.EXPANDABLE_FIELDS.get(name, {}).items():
        shape: dict[str, Any] = {"anyOf": [{"type": "string"}, ref(target)]}
        if properties[field].get("nullable"):
            shape["nullable"] = True
        properties[field] = shape
    for (obj, field), include in expansion.includers():
        if obj == name:
            properties[field] = _SHAPES.get((obj, field)) or annotation_schema(include)
    return schema


def _list_schema(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": ref(name)},
            "has_more": {"type": "boolean"},
            "url": {"type": "string"},
        },
        "required": ["object", "data", "has_more", "url"],
    }


# The objects GET /v1/<objects>/search finds.
_SEARCHED = ("customer", "invoice")


def _search_result_schema(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "object": {"type": "string", "enum": ["search_result"]},
            "data": {"type": "array", "items": ref(name)},
            "has_more": {"type": "boolean"},
            "next_page": _STRING_OR_NULL,
            "url": {"type": "string"},
        },
        "required": ["object", "data", "has_more", "next_page", "url"],
    }


_ERROR_DESCRIPTIONS = {
    400: "invalid_request_error: a missing, malformed or unknown parameter, or a state "
    "that forbids the request",
    401: "authentication_error: no API key, or an unknown one",
    404: "resource_missing: nothing with this id in the caller's mode",
    409: "idempotency_error: the first request with this Idempotency-Key is still running",
    413: "the request body is too large",
    429: "rate_limit_error: too many requests with this API key; retry after Retry-After",
    503: "api_error: PostgreSQL is unavailable; retry",
}


# The probes live in health.py, which stays free of API machinery.
_PROBES = {
    "health.healthz": Operation(
        None,
        {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}},
    ),
    "health.readyz": Operation(
        None,
        {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["ready", "unavailable"]},
                "checks": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["status", "checks"],
        },
    ),
}
_UNAVAILABLE = {
    "description": "Not ready: PostgreSQL does not answer",
    "content": {"application/json": {"schema": _PROBES["health.readyz"].returns}},
}


_HEADERS: dict[str, dict[str, Any]] = {
    "Request-Id": {
        "description": "This request's id, req_…",
        "required": True,
        "schema": {"type": "string", "pattern": "^req_"},
    }
}
_API_HEADERS: dict[str, dict[str, Any]] = {
    **_HEADERS,
    "Stripe-Version": {
        "description": "The API version objects are rendered in",
        "required": True,
        "schema": {"type": "string", "enum": [API_VERSION]},
    },
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A retry with the same key and parameters replays the first response; "
    "with other parameters it is a 400 idempotency_error.",
    "schema": {"type": "string", "maxLength": 255},
}
_IDEMPOTENT_HEADERS: dict[str, dict[str, Any]] = {
    "Idempotency-Key": {"description": "The request's key, echoed", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "Present on a replayed response",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Original-Request": {
        "description": "On a replay: the id of the request that ran",
        "schema": {"type": "string"},
    },
}


def _operation(method: str, path: str, endpoint: str, names: list[str]) -> dict[str, Any]:
    view = current_app.view_functions[endpoint]
    doc: Operation | None = getattr(view, "openapi", None) or _PROBES.get(endpoint)
    if doc is None:
        doc = Operation(None, {"type": "object"})
    api = path.startswith("/v1/")
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{endpoint.replace('.', '_')}",
        "parameters": [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
        ],
    }
    if (view.__doc__ or "").strip():
        operation["summary"] = (view.__doc__ or "").strip().splitlines()[0]
    if doc.params is not None and method in ("GET", "DELETE"):
        operation["parameters"] += query_parameters(doc.params)
    elif doc.params is not None:
        body = request_body_schema(doc.params)
        operation["requestBody"] = {
            "required": bool(body.get("required")),
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": body,
                    "encoding": form_encoding(body),
                },
                "application/json": {"schema": body},
            },
        }
    headers = dict(_API_HEADERS if api else _HEADERS)
    statuses = set(doc.statuses)
    if api:
        statuses |= {400, 401, 429, 503}
        if names:
            statuses.add(404)
        if method == "POST":
            statuses |= {409, 413}
            operation["parameters"].append(_IDEMPOTENCY_KEY)
            headers.update(_IDEMPOTENT_HEADERS)
        operation["security"] = [{"bearer": []}, {"basic": []}]
    else:
        operation["security"] = []
    responses: dict[str, Any] = {
        "200": {
            "description": "OK",
            "headers": headers,
            "content": {doc.content_type: {"schema": doc.returns}},
        }
    }
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": _ERROR_DESCRIPTIONS.get(status, "Stripe's error object"),
            "headers": headers,
            "content": {"application/json": {"schema": ref("error")}},
        }
    if endpoint == "health.readyz":
        responses["503"] = _UNAVAILABLE
    operation["responses"] = responses
    operation.update(doc.extra or {})
    return operation


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of `app`'s URL map."""
    paths: dict[str, dict[str, Any]] = {}
    with app.app_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            path = _PATH_PARAM.sub(r"{\1}", rule.rule)
            names = _PATH_PARAM.findall(rule.rule)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                operation = _operation(method, path, rule.endpoint, names)
                paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Tally",
            "version": API_VERSION,
            "description": "A Stripe-compatible invoice-payment service. Bodies are "
            "form-encoded with Stripe's bracket notation (or JSON); errors are Stripe's "
            'error object, {"error": {"type", "message", "code", "param"}}.',
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
            "schemas": _components(),
        },
        "paths": dict(sorted(paths.items())),
    }


@bp.get("/openapi.json")
@documented(None, {"type": "object", "description": "This document."})
def openapi() -> dict[str, Any]:
    return document(current_app)
