"""The outbox: events queued in event_outbox until published to the Redis stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

# Any constant; serialises publishers so the stream keeps the outbox's commit order.
PUBLISH_LOCK_ID = 7_263_412


def lock_publisher(conn: psycopg.Connection[Any]) -> None:
    """Wait for other publishers; held until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%(id)s)", {"id": PUBLISH_LOCK_ID})


def try_lock_publisher(conn: psycopg.Connection[Any]) -> bool:
    """Take the publisher lock unless another publisher holds it; held until the
    transaction ends."""
    row = conn.execute(
        "SELECT pg_try_advisory_xact_lock(%(id)s) AS locked", {"id": PUBLISH_LOCK_ID}
    ).fetchone()
    return bool(row and row["locked"])


def claim_unpublished(conn: psycopg.Connection[Any], *, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` unpublished events, oldest first. Call holding lock_publisher():
    publishers take turns, so no row lock is needed.

    Rows as store.events returns them, except `data`, which stays JSON text: the
    publisher copies it into the stream as is, rather than parsing and re-dumping it.
    """
    return conn.execute(
        """
        SELECT e.id, e.livemode, e.type, e.api_version, e.created, e.data::text AS data,
               e.request_id, e.idempotency_key,
               (SELECT count(*) FROM webhook_deliveries d
                 WHERE d.event_id = e.id AND d.status = 'pending') AS pending_webhooks
        FROM event_outbox o JOIN events e ON e.id = o.event_id
        ORDER BY o.seq LIMIT %(limit)s
        """,
        {"limit": limit},
    ).fetchall()


def mark_published(conn: psycopg.Connection[Any], event_ids: Sequence[str]) -> None:
    conn.execute("DELETE FROM event_outbox WHERE event_id = ANY(%(ids)s)", {"ids": list(event_ids)})


def count_unpublished(conn: psycopg.Connection[Any], *, older_than: float = 0) -> int:
    row = conn.execute(
        """
        SELECT count(*) AS n FROM event_outbox o JOIN events e ON e.id = o.event_id
        WHERE to_timestamp(e.created) <= now() - make_interval(secs => %(age)s)
        """,
        {"age": older_than},
    ).fetchone()
    return int(row["n"]) if row else 0
