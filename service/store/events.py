"""Events: written with the change that caused them, queued in event_outbox for the
Redis stream, with one delivery row per subscribed webhook endpoint."""

from __future__ import annotations

import functools
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json

from service.domain.events import API_VERSION, Event


def add(conn: psycopg.Connection[Any], event: Event) -> None:
    """Write one event and its deliveries; see add_all."""
    add_all(conn, [event])


def add_all(conn: psycopg.Connection[Any], events: list[Event]) -> None:
    """Write `events`, in order, and their deliveries in one statement; call inside the
    transaction of the change that caused them."""
    if not events:
        return
    params: list[Any] = []
    for event in events:
        params += [
            event.id,
            event.livemode,
            event.type,
            API_VERSION,
            event.created,
            Json(event.data),
            event.request_id,
            event.idempotency_key,
        ]
    conn.execute(_insert_events(len(events)), params)


@functools.lru_cache(maxsize=16)
def _insert_events(count: int) -> bytes:
    """The statement for `count` events, composed once per count: a credit runs one on
    the hot path, and composing it anew cost about as much as the rest of its Python."""
    row = sql.SQL("({})").format(sql.SQL(", ").join([sql.Placeholder()] * 8))
    return (
        sql.SQL(
            """
        WITH event AS (
            INSERT INTO events (id, livemode, type, api_version, created, data,
                                request_id, idempotency_key)
            VALUES {rows}
            RETURNING seq, id, livemode, type
        ),
        queued AS (
            INSERT INTO event_outbox (seq, event_id) SELECT seq, id FROM event
        )
        INSERT INTO webhook_deliveries (event_id, endpoint_id)
        SELECT event.id, e.id
        FROM event
        JOIN webhook_endpoints e ON e.livemode = event.livemode
        WHERE e.status = 'enabled' AND NOT e.deleted
          AND e.enabled_events && ARRAY['*', event.type]
        """
        )
        .format(rows=sql.SQL(", ").join([row] * count))
        .as_bytes(None)
    )


def get(conn: psycopg.Connection[Any], event_id: str, livemode: bool) -> dict[str, Any] | None:
    return conn.execute(
        """
        SELECT id, livemode, type, api_version, created, data, request_id, idempotency_key,
            (SELECT count(*) FROM webhook_deliveries d
             WHERE d.event_id = events.id AND d.status = 'pending') AS pending_webhooks
        FROM events WHERE id = %(id)s AND livemode = %(livemode)s
        """,
        {"id": event_id, "livemode": livemode},
    ).fetchone()


def find(conn: psycopg.Connection[Any], event_id: str) -> dict[str, Any] | None:
    """An event's mode and type, whatever its mode (for operators, not API callers)."""
    return conn.execute(
        "SELECT id, livemode, type FROM events WHERE id = %(id)s", {"id": event_id}
    ).fetchone()


def recent(
    conn: psycopg.Connection[Any], *, event_type: str | None, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` events of both modes, newest first, optionally of one type."""
    return conn.execute(
        """
        SELECT id, type, livemode, created,
               (SELECT count(*) FROM webhook_deliveries d
                WHERE d.event_id = events.id AND d.status = 'pending') AS pending_webhooks
        FROM events
        WHERE %(type)s::text IS NULL OR type = %(type)s::text
        ORDER BY seq DESC
        LIMIT %(limit)s
        """,
        {"type": event_type, "limit": limit},
    ).fetchall()
