"""Creating, updating and deleting webhook endpoints."""

from __future__ import annotations

import secrets
from typing import Any

from service.db import Conn
from service.domain.ids import WEBHOOK_ENDPOINT, WEBHOOK_SECRET, new_id
from service.domain.metadata import merge_metadata
from service.domain.urls import check_webhook_url
from service.errors import NotFound
from service.operations.context import Caller
from service.store import webhook_endpoints


def _not_found(endpoint_id: str) -> NotFound:
    return NotFound(f"No such webhook endpoint: '{endpoint_id}'", param="id")


def create_webhook_endpoint(
    conn: Conn, caller: Caller, params: dict[str, Any], *, allow_private_urls: bool, now: int
) -> dict[str, Any]:
    """Store a new endpoint with a fresh `whsec_` secret (returned in the row)."""
    return webhook_endpoints.insert(
        conn,
        {
            "id": new_id(WEBHOOK_ENDPOINT),
            "livemode": caller.livemode,
            "url": check_webhook_url(
                params["url"], livemode=caller.livemode, allow_private=allow_private_urls
            ),
            "secret": f"{WEBHOOK_SECRET}_{secrets.token_urlsafe(32)}",
            "enabled_events": sorted(set(params["enabled_events"])),
            "description": params.get("description"),
            "api_version": params.get("api_version"),
            "metadata": params.get("metadata") or {},
            "created": now,
        },
    )


def update_webhook_endpoint(
    conn: Conn,
    caller: Caller,
    endpoint_id: str,
    params: dict[str, Any],
    *,
    allow_private_urls: bool,
) -> dict[str, Any]:
    """Change an endpoint; `disabled=false` re-enables one Tally disabled after failures."""
    changes: dict[str, Any] = {}
    if "url" in params:
        changes["url"] = check_webhook_url(
            params["url"], livemode=caller.livemode, allow_private=allow_private_urls
        )
    if "enabled_events" in params:
        changes["enabled_events"] = sorted(set(params["enabled_events"]))
    if "description" in params:
        changes["description"] = params["description"] or None
    if "disabled" in params:
        changes["status"] = "disabled" if params["disabled"] else "enabled"
    with conn.transaction():
        current = webhook_endpoints.get(conn, endpoint_id, caller.livemode)
        if current is None:
            raise _not_found(endpoint_id)
        if "metadata" in params:
            changes["metadata"] = merge_metadata(current["metadata"], params["metadata"])
        row = webhook_endpoints.update(conn, endpoint_id, caller.livemode, changes)
    if row is None:
        raise _not_found(endpoint_id)
    return row


def delete_webhook_endpoint(conn: Conn, caller: Caller, endpoint_id: str) -> None:
    """Soft-delete: no new deliveries; pending ones are dropped when next attempted."""
    if not webhook_endpoints.delete(conn, endpoint_id, caller.livemode):
        raise _not_found(endpoint_id)


def enable_webhook_endpoint(conn: Conn, endpoint_id: str) -> dict[str, Any]:
    """Re-enable an endpoint of either mode (the operator's command), e.g. one disabled
    after a failed retry schedule; returns it with `previous_status`. Deliveries that
    failed meanwhile stay failed until retried (`tally deliveries retry`)."""
    row = webhook_endpoints.enable(conn, endpoint_id)
    if row is None:
        raise _not_found(endpoint_id)
    return row
