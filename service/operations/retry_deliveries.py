"""Retrying an endpoint's failed deliveries, once the endpoint works again."""

from __future__ import annotations

from typing import Any

from service.db import Conn
from service.errors import InvalidRequest, NotFound
from service.store import deliveries, webhook_endpoints


def retry_deliveries(conn: Conn, endpoint_id: str, *, events_since: int) -> list[dict[str, Any]]:
    """Put the endpoint's failed deliveries of events created at or after `events_since`
    (Unix seconds) back to pending, due now, with a fresh retry schedule (their attempts
    stay recorded); returns them (id, event_id, type, created). One transaction.

    Raises NotFound for an unknown or deleted endpoint, and InvalidRequest for a disabled
    one (its deliveries would fail again at once); nothing is changed then.
    """
    with conn.transaction():
        endpoint = webhook_endpoints.find(conn, endpoint_id)
        if endpoint is None or endpoint["deleted"]:
            raise NotFound(f"No such webhook endpoint: '{endpoint_id}'", param="endpoint")
        if endpoint["status"] != "enabled":
            raise InvalidRequest(f"{endpoint_id} is disabled: enable it first.", param="endpoint")
        return deliveries.retry_failed(conn, endpoint_id, events_since=events_since)
