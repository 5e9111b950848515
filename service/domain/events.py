"""Stripe's event object, built from the snapshot of an object after a change."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from service.config import API_VERSION
from service.domain.ids import EVENT, new_id


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    livemode: bool
    created: int
    object: dict[str, Any]
    previous_attributes: dict[str, Any] | None = None
    request_id: str | None = None
    idempotency_key: str | None = None
    id: str = field(default_factory=lambda: new_id(EVENT))


def changed_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The top-level values of `before` that differ in `after` (Stripe's previous_attributes)."""
    return {k: v for k, v in before.items() if after.get(k) != v}


def event_object(
    *,
    id: str,
    type: str,
    created: int,
    data: Any,
    livemode: bool,
    pending_webhooks: int = 0,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    api_version: str = API_VERSION,
) -> dict[str, Any]:
    """Stripe's event object: what Tally emits, and what Stripe sends Tally."""
    return {
        "id": id,
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": data,
        "livemode": livemode,
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type,
    }


def render_event(row: dict[str, Any]) -> dict[str, Any]:
    """An events row (with its pending delivery count) in Stripe's shape."""
    return event_object(
        id=row["id"],
        type=row["type"],
        created=row["created"],
        data=row["data"],
        livemode=row["livemode"],
        pending_webhooks=row["pending_webhooks"],
        request_id=row["request_id"],
        idempotency_key=row["idempotency_key"],
        api_version=row["api_version"],
    )


_RAW_DATA = "__tally_raw_event_data__"


def event_json(row: dict[str, Any]) -> str:
    """render_event's JSON for an events row whose `data` is the stored JSON text, which
    is spliced in unparsed: parsing and re-dumping it cost a delivery or a stream entry
    more than all the rest of its rendering."""
    text = json.dumps(render_event({**row, "data": _RAW_DATA}), separators=(",", ":"))
    return text.replace(f'"{_RAW_DATA}"', row["data"], 1)


# The PaymentIntent status each payment_intent.* event type carries.
PAYMENT_INTENT_STATUSES = {
    "payment_intent.created": "requires_payment_method",
    "payment_intent.requires_action": "requires_action",
    "payment_intent.processing": "processing",
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "requires_payment_method",
    "payment_intent.canceled": "canceled",
}


# The event of a move of Tally's copy of a PaymentIntent to each status, as Stripe
# names them. Back at requires_payment_method is a failed attempt ("payment_intent.
# payment_failed: Occurs when a PaymentIntent has failed the attempt to create a
# payment method or a payment"); requires_confirmation and requires_capture have none.
PAYMENT_INTENT_MOVES = {
    "requires_payment_method": "payment_intent.payment_failed",
    "requires_action": "payment_intent.requires_action",
    "processing": "payment_intent.processing",
    "succeeded": "payment_intent.succeeded",
    "canceled": "payment_intent.canceled",
}


def payment_intent_event_types(status: str, *, inserted: bool, status_moved: bool) -> list[str]:
    """The payment_intent.* events of one change to Tally's copy of a PaymentIntent in
    `status`: a new copy is `payment_intent.created`, then its status's event unless it
    still awaits its payment method (Stripe sends both for one it sees succeed at once);
    a moved status is that status's event; a change of amounts alone has no type."""
    moved = PAYMENT_INTENT_MOVES.get(status)
    if inserted:
        later = [moved] if moved and status != "requires_payment_method" else []
        return ["payment_intent.created", *later]
    return [moved] if moved and status_moved else []


def payment_intent_event(event_type: str, pi: dict[str, Any], *, now: int) -> dict[str, Any]:
    """A payment_intent.* event as Stripe sends it, carrying `pi` (id, amount,
    currency, and optionally customer, livemode, …) in the state the type implies.
    For `python -m service.trigger`, the tests and the benchmarks."""
    status = PAYMENT_INTENT_STATUSES[event_type]
    obj = {
        "id": pi["id"],
        "object": "payment_intent",
        "amount": pi["amount"],
        "amount_capturable": 0,
        "amount_received": pi["amount"] if status == "succeeded" else 0,
        "canceled_at": now if status == "canceled" else None,
        "cancellation_reason": "requested_by_customer" if status == "canceled" else None,
        "capture_method": "automatic",
        "created": pi.get("created") or now,
        "currency": pi["currency"],
        "customer": pi.get("customer"),
        "description": pi.get("description"),
        "last_payment_error": (
            {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}
            if event_type == "payment_intent.payment_failed"
            else None
        ),
        "livemode": bool(pi.get("livemode", False)),
        "metadata": pi.get("metadata") or {},
        "payment_method_types": ["card"],
        "status": status,
    }
    return event_object(
        id=new_id(EVENT),
        type=event_type,
        created=now,
        data={"object": obj},
        livemode=obj["livemode"],
        pending_webhooks=1,
    )


__all__ = [
    "API_VERSION",
    "PAYMENT_INTENT_MOVES",
    "PAYMENT_INTENT_STATUSES",
    "Event",
    "changed_attributes",
    "event_json",
    "event_object",
    "payment_intent_event",
    "payment_intent_event_types",
    "render_event",
]
