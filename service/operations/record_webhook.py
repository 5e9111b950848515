"""Recording an inbound Stripe webhook: verify, parse just enough, store once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.errors

from service.db import Conn
from service.domain import json_input, signatures
from service.domain.signatures import WebhookSecrets
from service.errors import InvalidRequest, PayloadTooLarge, SignatureInvalid
from service.operations.process_inbound import HANDLERS
from service.store import inbound_events

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 255
MAX_TYPE_LENGTH = 255
# Bytes the intake reads of a body; the web tier refuses a longer one unread (413).
# Above max_body_bytes, up to this, an event is read only to verify it and learn its
# type: Stripe retries a refused event for three days, so one Tally ignores anyway is
# acknowledged instead. Stripe's events are a few kilobytes.
MAX_READ_BYTES = 1024 * 1024
# Levels of nesting an event may have (an object or array is one): Stripe's are about
# ten deep. Bounded explicitly, so a worker that parses the stored payload again (at
# another stack depth) never meets what the intake could only just parse.
MAX_EVENT_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Recorded:
    event_id: str
    is_new: bool


def record_webhook(
    conn: Conn,
    body: bytes,
    signature_header: str | None,
    *,
    secrets: WebhookSecrets,
    tolerance: int,
    max_bytes: int,
    now: int,
) -> Recorded:
    """Verify the raw `body` with a secret of the event's own mode, then store the
    event unless its id is already known. One autocommit INSERT … ON CONFLICT DO
    NOTHING: when this returns, the event is durable, and a duplicate (even a
    concurrent one) was stored once. A signed event over `max_bytes` of a type no
    handler takes is acknowledged and not stored.

    Raises SignatureInvalid / InvalidRequest / PayloadTooLarge having stored nothing.
    """
    if not secrets.all:
        raise InvalidRequest(
            "Inbound webhooks are refused: no signing secret "
            "(STRIPE_WEBHOOK_SECRETS_TEST, STRIPE_WEBHOOK_SECRETS_LIVE) is set.",
            code="webhook_secret_missing",
        )
    # The whole raw body, before anything in it is believed.
    modes = signatures.verified_modes(body, signature_header, secrets, now=now, tolerance=tolerance)
    try:
        text = body.decode("utf-8")
        event = json_input.loads(text, max_depth=MAX_EVENT_DEPTH)
    except ValueError as refused:  # JSONRefused, UnicodeDecodeError
        reason = refused if isinstance(refused, json_input.JSONRefused) else "it is not UTF-8"
        raise InvalidRequest(f"The webhook body is not a JSON event: {reason}.") from None
    event_id, event_type, livemode = _event_header(event)
    if livemode not in modes:
        raise _not_signed_by_its_mode(livemode, secrets)
    if len(body) > max_bytes:
        return _oversized(event_id, event_type, len(body), max_bytes)
    try:
        is_new = inbound_events.insert_if_new(
            conn, event_id=event_id, event_type=event_type, livemode=livemode, payload=text
        )
    except psycopg.errors.DataError:
        # Valid JSON that jsonb cannot hold (e.g. "\u0000"): refuse it, nothing stored.
        raise InvalidRequest("The webhook body cannot be stored as JSON.") from None
    return Recorded(event_id=event_id, is_new=is_new)


def _not_signed_by_its_mode(livemode: bool, secrets: WebhookSecrets) -> InvalidRequest:
    mode = "live" if livemode else "test"
    if not secrets.of_mode(livemode):
        return InvalidRequest(
            f"Inbound {mode}-mode webhooks are refused: no {mode}-mode signing secret "
            f"(STRIPE_WEBHOOK_SECRETS_{mode.upper()}) is set.",
            code="webhook_secret_missing",
        )
    return SignatureInvalid(
        f"The event is a {mode}-mode event, and no {mode}-mode signing secret verifies it."
    )


def _oversized(event_id: str, event_type: str, size: int, max_bytes: int) -> Recorded:
    if event_type in HANDLERS:
        log.warning(
            "inbound event %s (%s) of %d bytes refused: over the limit of %d",
            event_id, event_type, size, max_bytes,
        )  # fmt: skip
        raise PayloadTooLarge(f"The event is larger than {max_bytes} bytes.")
    log.info(
        "inbound event %s (%s) of %d bytes acknowledged, not stored: over the limit of %d, "
        "and a type Tally ignores",
        event_id, event_type, size, max_bytes,
    )  # fmt: skip
    return Recorded(event_id=event_id, is_new=False)


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
    # Every Stripe event says its mode; the secret that must verify it depends on it.
    livemode = event.get("livemode")
    if not isinstance(livemode, bool):
        raise InvalidRequest("The event's livemode must be true or false.", param="livemode")
    return event_id, event_type, livemode
