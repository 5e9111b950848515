"""Stripe's event object, built from the snapshot of an object after a change."""

from __future__ import annotations

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

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"object": self.object}
        if self.previous_attributes is not None:
            data["previous_attributes"] = self.previous_attributes
        return data


def changed_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The top-level values of `before` that differ in `after` (Stripe's previous_attributes)."""
    return {k: v for k, v in before.items() if after.get(k) != v}


def render_event(row: dict[str, Any]) -> dict[str, Any]:
    """An events row (with its pending delivery count) in Stripe's shape."""
    return {
        "id": row["id"],
        "object": "event",
        "api_version": row["api_version"],
        "created": row["created"],
        "data": row["data"],
        "livemode": row["livemode"],
        "pending_webhooks": row["pending_webhooks"],
        "request": {"id": row["request_id"], "idempotency_key": row["idempotency_key"]},
        "type": row["type"],
    }


__all__ = ["API_VERSION", "Event", "changed_attributes", "render_event"]
