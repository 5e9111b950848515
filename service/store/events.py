"""The events table is the outbox: events are written with the change that caused
them, with one delivery row per subscribed webhook endpoint, and published later."""

from __future__ import annotations

from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from service.domain.events import API_VERSION, Event

COLUMNS: LiteralString = """
    id, livemode, type, api_version, created, data, request_id, idempotency_key,
    (SELECT count(*) FROM webhook_deliveries d
      WHERE d.event_id = events.id AND d.status = 'pending') AS pending_webhooks
"""


def add(conn: psycopg.Connection[Any], event: Event) -> None:
    """Write one event and its deliveries; see add_all."""
    add_all(conn, [event])


def add_all(conn: psycopg.Connection[Any], events: list[Event]) -> None:
    """Write `events` and their deliveries, in one round trip; call inside the
    transaction of the change that caused them."""
    conn.cursor().executemany(
        """
        WITH event AS (
            INSERT INTO events (id, livemode, type, api_version, created, data,
                                request_id, idempotency_key)
            VALUES (%(id)s, %(livemode)s, %(type)s, %(api_version)s, %(created)s,
                    %(data)s, %(request_id)s, %(idempotency_key)s)
            RETURNING id
        )
        INSERT INTO webhook_deliveries (event_id, endpoint_id)
        SELECT event.id, e.id
        FROM event, webhook_endpoints e
        WHERE e.livemode = %(livemode)s AND e.status = 'enabled' AND NOT e.deleted
          AND e.enabled_events && ARRAY['*', %(type)s]
        """,
        [
            {
                "id": event.id,
                "livemode": event.livemode,
                "type": event.type,
                "api_version": API_VERSION,
                "created": event.created,
                "data": Jsonb(event.data),
                "request_id": event.request_id,
                "idempotency_key": event.idempotency_key,
            }
            for event in events
        ],
    )


def get(conn: psycopg.Connection[Any], event_id: str, livemode: bool) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT " + COLUMNS + " FROM events WHERE id = %(id)s AND livemode = %(livemode)s",
        {"id": event_id, "livemode": livemode},
    ).fetchone()


LIST_COLUMNS = sql.SQL(COLUMNS)
