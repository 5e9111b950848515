"""The webhook_endpoint object; its `secret` appears only in the response that created it."""

from __future__ import annotations

from typing import Any


def render_webhook_endpoint(row: dict[str, Any], *, with_secret: bool = False) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": row["id"],
        "object": "webhook_endpoint",
        "api_version": row["api_version"],
        "application": None,
        "created": row["created"],
        "description": row["description"],
        "enabled_events": list(row["enabled_events"]),
        "livemode": row["livemode"],
        "metadata": row["metadata"],
    }
    if with_secret:
        obj["secret"] = row["secret"]
    obj["status"] = row["status"]
    obj["url"] = row["url"]
    return obj


def render_deleted_webhook_endpoint(endpoint_id: str) -> dict[str, Any]:
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}
