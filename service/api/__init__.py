"""The HTTP layer: authentication, Request-Id, idempotency and error rendering
around the blueprints that parse parameters and render objects."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import logging

import psycopg
import psycopg.errors
from flask import Flask, Response, current_app, g, jsonify, make_response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from service.api import deps, idempotency, metrics
from service.api.params import request_params
from service.config import API_VERSION
from service.db import TRANSIENT_ERRORS
from service.domain.ids import REQUEST, new_id
from service.errors import (
    AuthenticationFailed,
    ConstraintConflict,
    InvalidParameter,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    TallyError,
)
from service.operations.context import Caller

log = logging.getLogger(__name__)


# The modules of the routes, each with its blueprint `bp`.
VIEWS = (
    "customers",
    "events",
    "health",
    "invoice_items",
    "invoice_payments",
    "invoices",
    "metrics",
    "openapi",
    "payment_intents",
    "payment_records",
    "webhook_endpoints",
    "webhooks",
)


def register(app: Flask) -> None:
    for name in VIEWS:
        app.register_blueprint(importlib.import_module(f"{__name__}.{name}").bp)
    app.before_request(_before)
    # Registered first, so it runs last: it sees the response _after finished.
    app.after_request(metrics.request_finished)
    app.after_request(_after)
    app.teardown_request(deps.release_conn)
    app.register_error_handler(TallyError, _render_error)
    app.register_error_handler(HTTPException, _render_http_error)
    app.register_error_handler(Exception, _render_unexpected)


def _before() -> Response | None:
    g.request_id = new_id(REQUEST)
    metrics.request_started(g.request_id)
    if not request.path.startswith("/v1/"):
        return None
    key = _authenticate(deps.settings().api_keys)
    g.api_key_hash = hashlib.sha256(key.encode()).hexdigest()[:32]
    current_app.extensions["rate_limiter"].check(g.api_key_hash)
    g.params = request_params(request)
    replay = idempotency.begin(g.params)
    g.caller = Caller(
        livemode=key.startswith("sk_live_"),
        request_id=g.request_id,
        idempotency_key=request.headers.get("Idempotency-Key")
        if request.method == "POST"
        else None,
    )
    if replay is None and request.method in ("POST", "DELETE"):
        deps.wake_publisher_after_commit()
    return replay


def _authenticate(keys: tuple[str, ...]) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            credential = base64.b64decode(credential, validate=True).decode().partition(":")[0]
        except ValueError:
            credential = ""
    elif scheme.lower() != "bearer":
        credential = ""
    credential = credential.strip()
    if not credential:
        raise AuthenticationFailed(
            "You did not provide an API key. Provide it in the Authorization header "
            "as 'Bearer sk_...' or as the HTTP Basic user name."
        )
    # Compare against every key so the timing reveals nothing about which matched.
    matched = [k for k in keys if hmac.compare_digest(k.encode(), credential.encode())]
    if not matched:
        # Stripe echoes a masked key ("sk_test_****1234"); Tally echoes no part of it,
        # since a response may be logged or shown where the key must not be.
        raise AuthenticationFailed("Invalid API Key provided.")
    return matched[0]


def _after(response: Response) -> Response:
    try:
        idempotency.finish(response)
    except Exception as error:  # raised here, Flask would answer its own error page
        response = make_response(_render_any(error))
    else:
        if response.status_code < 400:
            deps.run_after_commit()
    response.headers["Request-Id"] = g.get("request_id") or new_id(REQUEST)
    if request.method == "POST" and "Idempotency-Key" in request.headers:
        response.headers["Idempotency-Key"] = request.headers["Idempotency-Key"]
    if "Stripe-Version" in request.headers or request.path.startswith("/v1/"):
        response.headers["Stripe-Version"] = API_VERSION
    return response


def _render_error(error: TallyError) -> tuple[Response, int]:
    if isinstance(error, InvalidParameter):
        idempotency.discard()
    response = jsonify(error.to_dict())
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after)
    return response, error.status


def _render_http_error(error: HTTPException) -> tuple[Response, int]:
    if isinstance(error, RequestEntityTooLarge):
        return _render_error(PayloadTooLarge("The request body is too large."))
    if error.code in (404, 405):
        # Stripe answers an unknown path, or a known one with the wrong method, alike.
        return _render_error(
            NotFound(f"Unrecognized request URL ({request.method}: {request.path}).")
        )
    return _render_error(InvalidRequest(error.description or "Bad request."))


def _render_any(error: Exception) -> tuple[Response, int]:
    if isinstance(error, TallyError):
        return _render_error(error)
    return _render_unexpected(error)


def _render_unexpected(error: Exception) -> tuple[Response, int]:
    if isinstance(error, psycopg.IntegrityError):
        return _render_error(_refused_by_database(error))
    if isinstance(error, TRANSIENT_ERRORS):
        log.warning("database unavailable during %s: %s", g.get("request_id"), type(error).__name__)
        return _render_error(ServiceUnavailable("The service is temporarily unavailable; retry."))
    log.error("unexpected error in request %s", g.get("request_id"), exc_info=error)
    body = {"error": {"type": "api_error", "message": "An unexpected error occurred."}}
    return jsonify(body), 500


def _refused_by_database(error: psycopg.IntegrityError) -> TallyError:
    """A constraint the operation did not translate: a clean 4xx, never a 500. Logged
    loudly with the constraint's name, since it means a check is missing before the
    write; the caller hears no internal name."""
    constraint = error.diag.constraint_name or type(error).__name__
    log.error("constraint %s refused request %s", constraint, g.get("request_id"), exc_info=error)
    if isinstance(error, psycopg.errors.UniqueViolation | psycopg.errors.ExclusionViolation):
        return ConstraintConflict(
            "The request conflicts with an existing object; "
            "nothing was changed, and it may be retried."
        )
    return InvalidRequest("The request was refused by a database constraint; nothing was changed.")
