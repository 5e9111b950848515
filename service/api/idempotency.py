"""Stripe's Idempotency-Key: the response is stored in the same transaction as the change.

A POST with a key runs in one transaction on the request's connection, opened here
before the view. The key's lock is taken without waiting, so a concurrent request with
the same key gets a 409 and never runs a second time; a stored response is replayed.
The operation's own `conn.transaction()` becomes a savepoint of this transaction, and
after the view:
- a 2xx is stored and committed with the change: both happen, or neither;
- a refusal by the operation (a 4xx: attach to a paid invoice) rolls the change back
  and is stored alone, so a refusal changes nothing and its retry is refused again;
- a refusal by parameter validation (InvalidParameter, raised by the parsing layer)
  rolls back and stores nothing (`discard`), as Stripe does: "We save results only
  after the execution of an endpoint begins. If incoming parameters fail validation
  [...] no idempotent result is saved because no API endpoint began execution. You
  can retry these requests." (docs.stripe.com/idempotency), so a corrected retry
  with the same key runs;
- a 409, a 5xx, or a failure to store rolls everything back and stores nothing, so
  the SDK's retry with the same key runs the request afresh, once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from flask import Response, g, request

from service.api import deps
from service.db import Conn
from service.errors import IdempotencyInProgress, IdempotencyMismatch, InvalidRequest
from service.store import idempotency as store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Running:
    key: str
    fingerprint: str


def _in_progress() -> IdempotencyInProgress:
    return IdempotencyInProgress(
        "There is currently another in-progress request using this Idempotency-Key."
    )


def begin(params: dict[str, Any]) -> Response | None:
    """Open the request's transaction and claim its key; a stored response to replay,
    or None when the request is to run."""
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
    conn = deps.get_conn()
    # The one transaction the web layer opens: see the module docstring.
    conn.execute("BEGIN")
    g.idempotency = _Running(key, fingerprint)
    claim = store.claim(conn, g.api_key_hash, key)
    if claim.locked and (claim.request_hash is None or (claim.status_code is None and claim.stale)):
        return None
    g.pop("idempotency")
    conn.rollback()
    if not claim.locked:
        raise _in_progress()
    if claim.request_hash != fingerprint:
        raise IdempotencyMismatch(
            "Keys for idempotent requests can only be used with the same parameters "
            f"they were first used with. Try using a key other than '{key}'."
        )
    if claim.status_code is None or claim.response_body is None:
        raise _in_progress()
    response = Response(claim.response_body, status=claim.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    response.headers["Original-Request"] = claim.request_id or ""
    return response


def discard() -> None:
    """The request failed parameter validation: roll back and store nothing, so the key
    stays free for a corrected retry (see the module docstring)."""
    if g.pop("idempotency", None) is not None:
        _rollback(deps.get_conn())


def finish(response: Response) -> None:
    """Store `response` with the change and commit, or roll back (see the module
    docstring). Raises, having rolled back, when the response could not be stored:
    then the change did not happen either, and the caller must not claim it did."""
    running: _Running | None = g.pop("idempotency", None)
    if running is None:
        return
    conn = deps.get_conn()
    status = response.status_code
    try:
        if status >= 500 or status == 409:
            _rollback(conn)
            return
        if status >= 400:
            conn.rollback()  # the refusal is stored on its own, in autocommit
        stored = store.store_response(
            conn,
            api_key_hash=g.api_key_hash,
            key=running.key,
            request_hash=running.fingerprint,
            status_code=status,
            body=response.get_data(),
            request_id=g.request_id,
        )
        if not stored:
            # Another request with this key stored its response first (it committed
            # between our claim's snapshot and our lock): ours must not happen too.
            raise _in_progress()
        conn.commit()
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: Conn) -> None:
    """Roll back if the connection still can; a broken one has lost the transaction."""
    if conn.broken:
        return
    try:
        conn.rollback()
    except psycopg.OperationalError as exc:
        log.warning("rollback of %s failed: %s", g.get("request_id"), exc)
