"""Webhook endpoints: where Tally delivers its events. Deleting is a soft delete, so
their deliveries keep their foreign key."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb


def insert(conn: psycopg.Connection[Any], endpoint: dict[str, Any]) -> dict[str, Any]:
    (row,) = conn.execute(
        """
        INSERT INTO webhook_endpoints (id, livemode, url, secret, enabled_events, description,
            api_version, metadata, created)
        VALUES (%(id)s, %(livemode)s, %(url)s, %(secret)s, %(enabled_events)s, %(description)s,
            %(api_version)s, %(metadata)s, %(created)s)
        RETURNING secret, id, livemode, url, enabled_events, status, description, api_version,
            metadata, created
        """,
        {**endpoint, "metadata": Jsonb(endpoint["metadata"])},
    ).fetchall()
    return row


def get(conn: psycopg.Connection[Any], endpoint_id: str, livemode: bool) -> dict[str, Any] | None:
    return conn.execute(
        """
        SELECT id, livemode, url, enabled_events, status, description, api_version,
            metadata, created
        FROM webhook_endpoints
        WHERE id = %(id)s AND livemode = %(livemode)s AND NOT deleted
        """,
        {"id": endpoint_id, "livemode": livemode},
    ).fetchone()


def update(
    conn: psycopg.Connection[Any], endpoint_id: str, livemode: bool, changes: dict[str, Any]
) -> dict[str, Any] | None:
    """Apply `changes` (url, enabled_events, description, metadata, status) to a live endpoint."""
    allowed = ("url", "enabled_events", "description", "metadata", "status")
    sets = [
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k))
        for k in allowed
        if k in changes
    ]
    if not sets:
        return get(conn, endpoint_id, livemode)
    params = {**changes, "id": endpoint_id, "livemode": livemode}
    if "metadata" in params:
        params["metadata"] = Jsonb(params["metadata"])
    query = sql.SQL(
        """
        UPDATE webhook_endpoints SET {sets}
        WHERE id = %(id)s AND livemode = %(livemode)s AND NOT deleted
        RETURNING id, livemode, url, enabled_events, status, description, api_version,
            metadata, created
        """
    ).format(sets=sql.SQL(", ").join(sets))
    return conn.execute(query, params).fetchone()


def delete(conn: psycopg.Connection[Any], endpoint_id: str, livemode: bool) -> bool:
    row = conn.execute(
        """
        UPDATE webhook_endpoints SET deleted = true
        WHERE id = %(id)s AND livemode = %(livemode)s AND NOT deleted
        RETURNING id
        """,
        {"id": endpoint_id, "livemode": livemode},
    ).fetchone()
    return row is not None


def disable_if_failing_since(
    conn: psycopg.Connection[Any], endpoint_id: str, *, delivery_id: int
) -> bool:
    """Disable the endpoint if nothing was delivered to it since `delivery_id`'s first
    attempt (it has then failed for that delivery's whole retry schedule)."""
    row = conn.execute(
        """
        UPDATE webhook_endpoints e SET status = 'disabled'
        WHERE e.id = %(endpoint)s AND e.status = 'enabled'
          AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries d
              WHERE d.endpoint_id = e.id
                AND d.delivered_at >= (SELECT min(attempted_at) FROM webhook_delivery_attempts
                                       WHERE delivery_id = %(delivery)s))
        RETURNING id
        """,
        {"endpoint": endpoint_id, "delivery": delivery_id},
    ).fetchone()
    return row is not None


def count_disabled(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM webhook_endpoints WHERE status = 'disabled' AND NOT deleted"
    ).fetchone()
    return int(row["n"]) if row else 0


def find(conn: psycopg.Connection[Any], endpoint_id: str) -> dict[str, Any] | None:
    """An endpoint whatever its mode, deleted ones included (for operators)."""
    return conn.execute(
        """
        SELECT id, livemode, url, status, deleted
        FROM webhook_endpoints WHERE id = %(id)s
        """,
        {"id": endpoint_id},
    ).fetchone()


def subscribed(conn: psycopg.Connection[Any], *, livemode: bool, event_type: str) -> list[str]:
    """The enabled endpoints of this mode that take events of `event_type`, oldest first."""
    rows = conn.execute(
        """
        SELECT id FROM webhook_endpoints
        WHERE livemode = %(livemode)s AND status = 'enabled' AND NOT deleted
          AND enabled_events && ARRAY['*', %(type)s::text]
        ORDER BY seq
        """,
        {"livemode": livemode, "type": event_type},
    ).fetchall()
    return [r["id"] for r in rows]


def enable(conn: psycopg.Connection[Any], endpoint_id: str) -> dict[str, Any] | None:
    """Set a live (not deleted) endpoint's status to enabled, whatever its mode; returns it
    with its status before, or None if there is no such endpoint."""
    return conn.execute(
        """
        UPDATE webhook_endpoints e SET status = 'enabled'
        FROM (SELECT id, status FROM webhook_endpoints
              WHERE id = %(id)s AND NOT deleted FOR UPDATE) AS before
        WHERE e.id = before.id
        RETURNING e.id, e.livemode, e.url, e.status, before.status AS previous_status
        """,
        {"id": endpoint_id},
    ).fetchone()
