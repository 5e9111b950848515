"""The outbox: events queued in event_outbox until published to the Redis stream, and
the positions they were published at (event_positions)."""

from __future__ import annotations

from typing import Any

from service.db import Conn

# Any constant; serialises publishers so the stream keeps the outbox's commit order.
PUBLISH_LOCK_ID = 7_263_412


def try_lock_publisher(conn: Conn) -> bool:
    """Take the publisher lock unless another publisher holds it; held until the
    transaction ends."""
    row = conn.execute(
        "SELECT pg_try_advisory_xact_lock(%(id)s) AS locked", {"id": PUBLISH_LOCK_ID}
    ).fetchone()
    return bool(row and row["locked"])


def take_unpublished(conn: Conn, *, limit: int) -> list[dict[str, Any]]:
    """Take up to `limit` unpublished events out of the outbox, oldest first, and number
    them from the last position assigned; returns them in that order, each with its
    `position`, as store.events returns rows except `data`, which stays JSON text (the
    publisher copies it into the stream as is). Call holding try_lock_publisher(), before
    putting them on the stream. One statement: taking, numbering and reading them were
    three round trips per publish, which at a few events per batch cost more than the
    events.

    Positions follow the stream's order with no gap: publishers hold the lock until
    their transaction ends, so this statement, which starts after the lock is taken,
    sees every position an earlier publisher committed (read committed) and none is
    being assigned concurrently. A publisher that fails before its commit leaves no
    position behind, so the next one reuses its numbers: a consumer may see a
    position twice (for what it had already, or for other events), never skip one.
    """
    return conn.execute(
        """
        WITH taken AS (
            DELETE FROM event_outbox
            WHERE seq IN (SELECT seq FROM event_outbox ORDER BY seq LIMIT %(limit)s)
            RETURNING seq, event_id
        ),
        numbered AS (
            SELECT t.event_id, last.position + row_number() OVER (ORDER BY t.seq) AS position
            FROM taken t,
                 (SELECT coalesce(max(position), 0) AS position FROM event_positions) AS last
        ),
        placed AS (
            INSERT INTO event_positions (position, event_id)
            SELECT position, event_id FROM numbered
        )
        SELECT n.position, e.id, e.livemode, e.type, e.api_version, e.created,
               e.data::text AS data, e.request_id, e.idempotency_key, e.pending_webhooks
        -- Each event looked up by its key (LIMIT keeps the planner from turning this
        -- into a join): as a join, the rows taken looked like up to `limit`, and the
        -- plan read the whole of `events` into a hash, 9 ms a publish.
        FROM numbered n CROSS JOIN LATERAL (
            SELECT * FROM event_rows WHERE event_rows.id = n.event_id LIMIT 1
        ) AS e
        ORDER BY n.position
        """,
        {"limit": limit},
    ).fetchall()


def published_from(
    conn: Conn, *, position: int, created_since: int, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` published events at `position` or later and created at
    `created_since` or later, in position order; rows as take_unpublished returns
    them, with their `position`."""
    return conn.execute(
        """
        SELECT p.position, e.id, e.livemode, e.type, e.api_version, e.created,
               e.data::text AS data, e.request_id, e.idempotency_key, e.pending_webhooks
        FROM event_positions p JOIN event_rows e ON e.id = p.event_id
        WHERE p.position >= %(position)s AND e.created >= %(since)s
        ORDER BY p.position LIMIT %(limit)s
        """,
        {"position": position, "since": created_since, "limit": limit},
    ).fetchall()
