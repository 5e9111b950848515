"""POST /webhooks/stripe: inbound signed Stripe events (the signature authenticates).

Verify the raw bytes, store the event (one INSERT), wake a worker, answer 200.
Processing is the worker's; a duplicate id is acknowledged and not stored again.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, request

from service import observability
from service.api import deps
from service.api.openapi import documented
from service.operations.record_webhook import record_webhook
from service.wake import Waker

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _waker() -> Waker:
    waker: Waker | None = current_app.extensions.get("waker")
    if waker is None:
        waker = current_app.extensions.setdefault("waker", Waker(deps.redis_client()))
    return waker


@bp.post("/stripe")
@documented(
    None,
    {"type": "object", "properties": {"received": {"type": "boolean", "enum": [True]}}},
    statuses=(400, 413, 503),
    extra={
        "summary": "A Stripe event, signed with one of STRIPE_WEBHOOK_SECRETS",
        "parameters": [{"name": "Stripe-Signature", "in": "header", "schema": {"type": "string"}}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "object": {"type": "string", "enum": ["event"]},
                            "type": {"type": "string"},
                            "data": {"type": "object"},
                        },
                    }
                }
            },
        },
    },
)
def stripe_event() -> dict[str, Any]:
    settings = deps.settings()
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
    # After the INSERT (autocommit, so committed): a wake-up for a row not yet visible
    # would be wasted. If Redis is down the row waits for a consumer's poll or the sweeper.
    if recorded.is_new:
        _waker().wake(recorded.event_id)
    return {"received": True}
