"""The outbox: events queued in event_outbox until published to the Redis stream, and
the positions they were published at (event_positions)."""

from __future__ import annotations

from collections.abc import Sequence
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


def claim_unpublished(conn: Conn, *, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` unpublished events, oldest first. Call holding try_lock_publisher():
    publishers take turns, so no row lock is needed.

    Rows as store.events returns them, except `data`, which stays JSON text: the
    publisher copies it into the stream as is, rather than parsing and re-dumping it.
    """
    return conn.execute(
        """
        SELECT e.id, e.livemode, e.type, e.api_version, e.created, e.data::text AS data,
               e.request_id, e.idempotency_key, e.pending_webhooks
        FROM event_outbox o JOIN event_rows e ON e.id = o.event_id
        ORDER BY o.seq LIMIT %(limit)s
        """,
        {"limit": limit},
    ).fetchall()


def mark_published(conn: Conn, event_ids: Sequence[str]) -> dict[str, int]:
    """Take `event_ids` out of the outbox and number them, in the order given, from the
    last position assigned; returns each one's position. Call holding try_lock_publisher(),
    before putting them on the stream.

    Positions follow the stream's order with no gap: publishers hold the lock until
    their transaction ends, so this statement, which starts after the lock is taken,
    sees every position an earlier publisher committed (read committed) and none is
    being assigned concurrently. A publisher that fails before its commit leaves no
    position behind, so the next one reuses its numbers: a consumer may see a
    position twice (for what it had already, or for other events), never skip one.
    """
    rows = conn.execute(
        """
        WITH unqueued AS (
            DELETE FROM event_outbox WHERE event_id = ANY(%(ids)s)
        )
        INSERT INTO event_positions (position, event_id)
        SELECT last.position + t.n, t.id
        FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS t (id, n),
             (SELECT coalesce(max(position), 0) AS position FROM event_positions) AS last
        RETURNING event_id, position
        """,
        {"ids": list(event_ids)},
    ).fetchall()
    return {row["event_id"]: row["position"] for row in rows}


def published_from(
    conn: Conn, *, position: int, created_since: int, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` published events at `position` or later and created at
    `created_since` or later, in position order; rows as claim_unpublished returns
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
