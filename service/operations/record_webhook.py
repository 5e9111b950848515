"""Recording an inbound Stripe webhook: verify, parse just enough, store once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.errors

from service.domain import signatures
from service.errors import InvalidRequest, PayloadTooLarge
from service.store import inbound_events

MAX_ID_LENGTH = 255
MAX_TYPE_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Recorded:
    event_id: str
    is_new: bool


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN/Infinity: PostgreSQL's jsonb refuses them


def record_webhook(
    conn: psycopg.Connection[Any],
    body: bytes,
    signature_header: str | None,
    *,
    secrets: Sequence[str],
    tolerance: int,
    max_bytes: int,
    now: int,
) -> Recorded:
    """Verify the raw `body` against `secrets`, then store the event unless its id is
    already known. One autocommit INSERT … ON CONFLICT DO NOTHING: when this returns,
    the event is durable, and a duplicate (even a concurrent one) was stored once.

    Raises SignatureInvalid / InvalidRequest / PayloadTooLarge having stored nothing.
    """
    if not secrets:
        raise InvalidRequest(
            "Inbound webhooks are refused: no signing secret (STRIPE_WEBHOOK_SECRETS) is set.",
            code="webhook_secret_missing",
        )
    if len(body) > max_bytes:
        raise PayloadTooLarge("The request body is too large.")
    signatures.verify(body, signature_header, secrets, now=now, tolerance=tolerance)
    try:
        text = body.decode("utf-8")
        event = json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        raise InvalidRequest("The webhook body is not valid JSON.") from None
    event_id, event_type, livemode = _event_header(event)
    try:
        is_new = inbound_events.insert_if_new(
            conn, event_id=event_id, event_type=event_type, livemode=livemode, payload=text
        )
    except psycopg.errors.DataError:
        # Valid JSON that jsonb cannot hold (e.g. "\u0000"): refuse it, nothing stored.
        raise InvalidRequest("The webhook body cannot be stored as JSON.") from None
    return Recorded(event_id=event_id, is_new=is_new)


def _event_header(event: Any) -> tuple[str, str, bool]:
    """The id, type and livemode of a Stripe event object, or InvalidRequest."""
    if not isinstance(event, dict) or event.get("object") != "event":
        raise InvalidRequest('The webhook body is not a Stripe event object ("object": "event").')
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id.startswith("evt_"):
        raise InvalidRequest("The event has no id starting with evt_.", param="id")
    if len(event_id) > MAX_ID_LENGTH:
        raise InvalidRequest("The event id is too long.", param="id")
    if not isinstance(event_type, str) or not event_type or len(event_type) > MAX_TYPE_LENGTH:
        raise InvalidRequest("The event has no type.", param="type")
    livemode = event.get("livemode", False)
    if not isinstance(livemode, bool):
        raise InvalidRequest("The event's livemode must be a boolean.", param="livemode")
    return event_id, event_type, livemode
