"""Stripe's Idempotency-Key: the first response is stored in PostgreSQL and replayed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Response, g, request

from service.api import deps
from service.errors import IdempotencyInProgress, IdempotencyMismatch, InvalidRequest
from service.store import idempotency as store


def begin(params: dict[str, Any]) -> Response | None:
    """Reserve the request's key; return the stored response if it is a replay."""
    key = request.headers.get("Idempotency-Key")
    if not key or request.method != "POST":
        return None
    if len(key) > 255:
        raise InvalidRequest(
            "Idempotency-Key must be at most 255 characters.", param="Idempotency-Key"
        )
    fingerprint = hashlib.sha256(
        json.dumps([request.path, params], sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    existing = store.reserve(deps.get_conn(), g.api_key_hash, key, fingerprint)
    if existing is None:
        g.idempotency_key = key
        return None
    if existing["request_hash"] != fingerprint:
        raise IdempotencyMismatch(
            "Keys for idempotent requests can only be used with the same parameters "
            f"they were first used with. Try using a key other than '{key}'."
        )
    if existing["status_code"] is None:
        raise IdempotencyInProgress(
            "There is currently another in-progress request using this Idempotency-Key."
        )
    response = Response(
        bytes(existing["response_body"]),
        status=existing["status_code"],
        mimetype="application/json",
    )
    response.headers["Idempotent-Replayed"] = "true"
    response.headers["Original-Request"] = existing["request_id"] or ""
    return response


def finish(response: Response) -> None:
    """Store the response under the reserved key; server errors are not stored."""
    key = g.pop("idempotency_key", None)
    if key is None:
        return
    conn = deps.get_conn()
    if response.status_code >= 500:
        store.release(conn, g.api_key_hash, key)
    else:
        store.complete(
            conn, g.api_key_hash, key, response.status_code, response.get_data(), g.request_id
        )
