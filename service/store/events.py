"""Events: written with the change that caused them, queued in event_outbox for the
Redis stream, with one delivery row per subscribed webhook endpoint. Read through the
view event_rows (migration 0037), which counts each one's pending_webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Json

from service.db import Conn
from service.domain.events import API_VERSION, Event

# What follows a CTE `event` of inserted events (seq, id, livemode, type): each one
# queued for the stream, and a delivery for each endpoint subscribed to it. add_all's
# tail; bench/crediting.py ends its pgbench copy of add_all with it.
FAN_OUT = """
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


def add(conn: Conn, event: Event) -> None:
    """Write one event and its deliveries; see add_all."""
    add_all(conn, [event])


def add_all(conn: Conn, events: list[Event]) -> None:
    """Write `events`, in order, and their deliveries in one statement; call inside the
    transaction of the change that caused them.

    The events travel as JSON arrays, so the statement is the same for any number of
    them: parsed and prepared once per connection (a VALUES list per count cost a
    batch of credits more than its inserts). Their objects travel apart, each once:
    a credit's invoice.updated, invoice.paid and invoice.payment_succeeded share one
    rendered invoice, which was encoded and parsed three times per credit when every
    event carried its own copy.
    """
    if not events:
        return
    objects: list[dict[str, Any]] = []
    index: dict[int, int] = {}  # id() of a shared object -> its place in `objects`
    rows = []
    for e in events:
        n = index.setdefault(id(e.object), len(objects))
        if n == len(objects):
            objects.append(e.object)
        rows.append(
            {
                "id": e.id,
                "livemode": e.livemode,
                "type": e.type,
                "created": e.created,
                "object": n,
                "previous": e.previous_attributes,
                "request_id": e.request_id,
                "idempotency_key": e.idempotency_key,
            }
        )
    conn.execute(
        """
        WITH object AS (
            SELECT n - 1 AS n, object
            FROM ROWS FROM (json_array_elements(%(objects)s)) WITH ORDINALITY AS o (object, n)
        ),
        event AS (
            INSERT INTO events (id, livemode, type, api_version, created, data,
                                request_id, idempotency_key)
            SELECT e.id, e.livemode, e.type, %(api_version)s, e.created,
                   CASE WHEN e.previous IS NULL THEN json_build_object('object', o.object)
                        ELSE json_build_object('object', o.object,
                                               'previous_attributes', e.previous) END,
                   e.request_id, e.idempotency_key
            FROM ROWS FROM (
                json_to_recordset(%(rows)s)
                    AS (id text, livemode boolean, type text, created bigint, object int,
                        previous json, request_id text, idempotency_key text)
            ) WITH ORDINALITY AS e (id, livemode, type, created, object, previous,
                                    request_id, idempotency_key, n)
            JOIN object o ON o.n = e.object
            ORDER BY e.n
            RETURNING seq, id, livemode, type
        ),
        """  # noqa: S608  (a constant fragment, no input)
        + FAN_OUT,
        {"api_version": API_VERSION, "objects": Json(objects), "rows": Json(rows)},
    )


def get(conn: Conn, event_id: str, livemode: bool) -> dict[str, Any] | None:
    return get_many(conn, [(event_id, livemode)]).get(event_id)


# Each event looked up by its key (LIMIT keeps the planner from making it a join,
# which while `events` is small it plans as a hash of the whole table).
_BY_KEYS = """
    FROM unnest(%(ids)s::text[], %(modes)s::boolean[]) AS k(key, mode)
    CROSS JOIN LATERAL (
        SELECT * FROM event_rows e WHERE e.id = k.key AND e.livemode = k.mode LIMIT 1
    ) AS event_rows
"""
_GET_MANY = (
    "SELECT id, livemode, type, api_version, created, data, request_id, idempotency_key,"
    " pending_webhooks" + _BY_KEYS
)
# data left as its JSON text, for domain.events.event_json
_GET_MANY_AS_SENT = (
    "SELECT id, livemode, type, api_version, created, data::text AS data, request_id,"
    " idempotency_key, pending_webhooks, data->'object'->>'id' AS object_id" + _BY_KEYS
)


def get_many(conn: Conn, keys: Sequence[tuple[str, bool]]) -> dict[str, dict[str, Any]]:
    """The events named by (id, livemode) pairs, as `get` reads them, by id."""
    return _by_id(conn.execute(_GET_MANY, _keys(keys)).fetchall())


def get_many_as_sent(conn: Conn, keys: Sequence[tuple[str, bool]]) -> dict[str, dict[str, Any]]:
    """As get_many, with each event's `data` left as its JSON text (a delivery sends it
    as stored: domain.events.event_json), and the id of its object, `object_id`."""
    return _by_id(conn.execute(_GET_MANY_AS_SENT, _keys(keys)).fetchall())


def _keys(keys: Sequence[tuple[str, bool]]) -> dict[str, list[Any]]:
    return {"ids": [i for i, _ in keys], "modes": [m for _, m in keys]}


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


def find(conn: Conn, event_id: str) -> dict[str, Any] | None:
    """An event's mode and type, whatever its mode (for operators, not API callers)."""
    return conn.execute(
        "SELECT id, livemode, type FROM events WHERE id = %(id)s", {"id": event_id}
    ).fetchone()


def recent(conn: Conn, *, event_type: str | None, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` events of both modes, newest first, optionally of one type."""
    return conn.execute(
        """
        SELECT id, type, livemode, created, pending_webhooks
        FROM event_rows
        WHERE %(type)s::text IS NULL OR type = %(type)s::text
        ORDER BY seq DESC
        LIMIT %(limit)s
        """,
        {"type": event_type, "limit": limit},
    ).fetchall()
