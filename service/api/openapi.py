"""GET /openapi.json: every route of the URL map, with the parameters its view loads
(its marshmallow request schema) and the objects it answers (the render schemas), as
an OpenAPI 3.0 document that apispec builds from those schemas."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from apispec import APISpec
from apispec.utils import build_reference
from flask import Blueprint, Flask, current_app
from marshmallow import Schema, fields

from service.api.openapi_objects import (
    Alive,
    ApiResponseHeaders,
    ErrorObject,
    IdempotencyKeyHeader,
    IdempotentResponseHeaders,
    Ready,
    ResponseHeaders,
    objects,
    path_parameters,
)
from service.api.openapi_schemas import Answer, Converter, Plugin, form_encoding
from service.config import API_VERSION

bp = Blueprint("openapi", __name__)

_PATH_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
View = TypeVar("View", bound=Callable[..., Any])
# What a view answers: a component (`ref`), a schema, or a field for a plain value.
Returns = dict[str, Any] | type[Schema] | fields.Field
FORM_AND_JSON = ("application/x-www-form-urlencoded", "application/json")


@dataclass(frozen=True, slots=True)
class Operation:
    """What a view reads (the schema it loads from the parameters) and answers."""

    params: Schema | type[Schema] | None
    returns: Returns
    content_type: str = "application/json"
    statuses: tuple[int, ...] = ()
    body_types: tuple[str, ...] = FORM_AND_JSON
    headers: type[Schema] | None = None


def documented(
    params: Schema | type[Schema] | None,
    returns: Returns,
    *,
    content_type: str = "application/json",
    statuses: tuple[int, ...] = (),
    body_types: tuple[str, ...] = FORM_AND_JSON,
    headers: type[Schema] | None = None,
) -> Callable[[View], View]:
    """Describe a view in /openapi.json: `params` is the request schema it loads (the
    query of a GET or DELETE, else the body, sent as one of `body_types`), `returns`
    what its 200 answers (see `ref` and `page_of`), `statuses` the error statuses it
    answers besides the API-wide ones, `headers` the request headers it reads."""

    def mark(view: View) -> View:
        # A function object takes attributes; typeshed's Callable declares none.
        view.openapi = Operation(  # type: ignore[attr-defined]
            params, returns, content_type, statuses, body_types, headers
        )
        return view

    return mark


def ref(name: str) -> dict[str, Any]:
    """The object of components/schemas `name`."""
    return build_reference("schema", 3, name)


def page_of(name: str) -> dict[str, Any]:
    """A list object whose `data` holds `name` objects."""
    return ref(f"{name}_list")


def search_of(name: str) -> dict[str, Any]:
    """A search_result object whose `data` holds `name` objects."""
    return ref(f"{name}_search_result")


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
_PROBES = {"health.healthz": Operation(None, Alive), "health.readyz": Operation(None, Ready)}
# What a view no `documented` describes answers: an object, nothing more said.
_UNDESCRIBED = Operation(None, {"type": "object"})


def _schema(converter: Converter, returns: Returns) -> Any:
    if isinstance(returns, fields.Field):
        return converter.field2property(returns)
    return returns


def _operation(
    converter: Converter, method: str, path: str, endpoint: str, names: list[str]
) -> dict[str, Any]:
    view = current_app.view_functions[endpoint]
    doc: Operation = getattr(view, "openapi", None) or _PROBES.get(endpoint) or _UNDESCRIBED
    api = path.startswith("/v1/")
    operation: dict[str, Any] = {"operationId": f"{method.lower()}_{endpoint.replace('.', '_')}"}
    parameters: list[dict[str, Any]] = []
    if names:
        parameters.append({"in": "path", "schema": path_parameters(names)})
    summary = " ".join((view.__doc__ or "").strip().split("\n\n")[0].split())
    if summary:
        operation["summary"] = summary
    if doc.params is not None and method in ("GET", "DELETE"):
        parameters.append({"in": "query", "schema": doc.params})
    elif doc.params is not None:
        body = converter.resolve_nested_schema(doc.params)
        content = {media: {"schema": body} for media in doc.body_types}
        if "application/x-www-form-urlencoded" in content:
            content["application/x-www-form-urlencoded"]["encoding"] = form_encoding(body)
        operation["requestBody"] = {"required": bool(body.get("required")), "content": content}
    if doc.headers is not None:
        parameters.append({"in": "header", "schema": doc.headers})
    headers: type[Schema] = ApiResponseHeaders if api else ResponseHeaders
    statuses = set(doc.statuses)
    if api:
        statuses |= {400, 401, 429, 503}
        if names:
            statuses.add(404)
        if method == "POST":
            statuses |= {409, 413}
            parameters.append({"in": "header", "schema": IdempotencyKeyHeader})
            headers = IdempotentResponseHeaders
    operation["security"] = [{"bearer": []}, {"basic": []}] if api else []
    described = converter.schema2headers(headers)
    responses: dict[str, Any] = {
        "200": {
            "description": "OK",
            "headers": described,
            "content": {doc.content_type: {"schema": _schema(converter, doc.returns)}},
        }
    }
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": _ERROR_DESCRIPTIONS.get(status, "Stripe's error object"),
            "headers": described,
            "content": {"application/json": {"schema": ErrorObject}},
        }
    if endpoint == "health.readyz":
        responses["503"] = {
            "description": "Not ready: PostgreSQL does not answer",
            "content": {"application/json": {"schema": Ready}},
        }
    operation["parameters"] = parameters
    operation["responses"] = responses
    return operation


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of `app`'s URL map."""
    plugin = Plugin()
    spec = APISpec(
        title="Tally",
        version=API_VERSION,
        openapi_version="3.0.3",
        plugins=[plugin],
        info={
            "description": "A Stripe-compatible invoice-payment service. Bodies are "
            "form-encoded with Stripe's bracket notation (or JSON); errors are Stripe's "
            'error object, {"error": {"type", "message", "code", "param"}}.'
        },
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("basic", {"type": "http", "scheme": "basic"})
    converter = cast(Converter, plugin.converter)
    for answer in objects():
        # An object another refers to is registered when the first reference is met.
        if answer.component not in spec.components.schemas:
            spec.components.schema(answer.component, schema=answer)
    with app.app_context():
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if rule.endpoint == "static":
                continue
            path = _PATH_PARAM.sub(r"{\1}", rule.rule)
            names = _PATH_PARAM.findall(rule.rule)
            operations = {
                method.lower(): _operation(converter, method, path, rule.endpoint, names)
                for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
            }
            spec.path(path=path, operations=operations)
    return spec.to_dict()


class OpenAPIDocument(Answer):
    class Meta(Answer.Meta):
        description = "This document."

    openapi = fields.String()
    info = fields.Dict()
    paths = fields.Dict()
    components = fields.Dict()


@bp.get("/openapi.json")
@documented(None, OpenAPIDocument)
def openapi() -> dict[str, Any]:
    return document(current_app)
