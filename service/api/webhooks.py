"""POST /webhooks/stripe: inbound signed Stripe events (the signature authenticates).

Verify the raw bytes, store the event (one INSERT), wake a drain task, answer 200.
Processing is the worker's; a duplicate id is acknowledged and not stored again.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, request
from marshmallow import EXCLUDE, Schema, fields

from service import observability
from service.api import deps
from service.api.openapi import documented
from service.api.openapi_schemas import Answer
from service.operations.record_webhook import MAX_READ_BYTES, record_webhook

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


class StripeEvent(Schema):
    """A Stripe event as a webhook delivers it (verified by its signature, not here)."""

    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True)
    object = fields.Constant("event", required=True)
    type = fields.String(required=True)
    livemode = fields.Boolean()
    data = fields.Dict()


class SignatureHeader(Schema):
    signature = fields.String(data_key="Stripe-Signature")


class Received(Answer):
    received = fields.Constant(True)


@bp.post("/stripe")
@documented(
    StripeEvent,
    Received,
    statuses=(400, 413, 503),
    body_types=("application/json",),
    headers=SignatureHeader,
)
def stripe_event() -> dict[str, Any]:
    """A Stripe event, signed with a secret of its own mode (STRIPE_WEBHOOK_SECRETS_TEST
    or STRIPE_WEBHOOK_SECRETS_LIVE)"""
    settings = deps.settings()
    # Past max_body_bytes too, up to a hard limit: an oversized event of a type Tally
    # ignores is verified and acknowledged rather than refused (record_webhook).
    request.max_content_length = MAX_READ_BYTES
    recorded = record_webhook(
        deps.get_conn(),
        request.get_data(cache=False),
        request.headers.get("Stripe-Signature"),
        secrets=settings.webhook_secrets,
        tolerance=settings.webhook_tolerance,
        max_bytes=settings.max_body_bytes,
        now=int(time.time()),
    )
    observability.bind(event_id=recorded.event_id)
    # After the INSERT (autocommit, so committed): the drain that this wakes, or the one
    # already queued, claims after it starts, so it sees the row. If Redis is down the
    # row waits for the sweeper.
    if recorded.is_new:
        deps.task_queue().wake_drain()
    return {"received": True}
