"""Webhook deliveries (one per event x subscribed endpoint) and their attempts.

No row lock is held across an HTTP call. Instead `next_attempt_at` doubles as a
lease: dispatching moves it forward and hands the new value (in microseconds since
the epoch) to the send task as a token; the task claims the delivery only if the
token still matches, so a delivery re-dispatched after its lease ran out is sent by
one task, not two. Claiming moves `next_attempt_at` again, past the HTTP timeout.
"""

from __future__ import annotations

from typing import Any

import psycopg

_LEASE_TOKEN = "(extract(epoch FROM next_attempt_at) * 1000000)::bigint"


def lease_due(
    conn: psycopg.Connection[Any], *, limit: int, lease_seconds: float
) -> list[dict[str, Any]]:
    """Lease up to `limit` due pending deliveries; returns their ids and lease tokens."""
    return conn.execute(
        """
        UPDATE webhook_deliveries
        SET next_attempt_at = now() + make_interval(secs => %(lease)s)
        WHERE id IN (
            SELECT id FROM webhook_deliveries
            WHERE status = 'pending' AND next_attempt_at <= now()
            ORDER BY next_attempt_at
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED)
        RETURNING id, """
        + _LEASE_TOKEN
        + " AS lease",
        {"limit": limit, "lease": lease_seconds},
    ).fetchall()


def claim(
    conn: psycopg.Connection[Any], delivery_id: int, *, lease: int | None, hold_seconds: float
) -> dict[str, Any] | None:
    """Take a leased delivery for one attempt (None if it is settled or re-leased).

    With `lease=None` the delivery is taken if it is due now.
    """
    return conn.execute(
        """
        UPDATE webhook_deliveries d
        SET next_attempt_at = now() + make_interval(secs => %(hold)s)
        FROM webhook_endpoints e
        WHERE d.id = %(id)s AND d.status = 'pending' AND e.id = d.endpoint_id
          AND CASE WHEN %(lease)s::bigint IS NULL THEN d.next_attempt_at <= now()
                   ELSE (extract(epoch FROM d.next_attempt_at) * 1000000)::bigint
                        = %(lease)s::bigint END
        RETURNING d.id, d.event_id, d.endpoint_id, d.attempts, e.url, e.secret, e.livemode,
                  e.status AS endpoint_status, e.deleted AS endpoint_deleted
        """,
        {"id": delivery_id, "lease": lease, "hold": hold_seconds},
    ).fetchone()


def add_attempt(
    conn: psycopg.Connection[Any],
    delivery_id: int,
    *,
    status_code: int | None,
    latency_ms: int,
    error: str | None,
) -> None:
    conn.execute(
        """
        INSERT INTO webhook_delivery_attempts (delivery_id, status_code, latency_ms, error)
        VALUES (%(id)s, %(status_code)s, %(latency_ms)s, %(error)s)
        """,
        {"id": delivery_id, "status_code": status_code, "latency_ms": latency_ms, "error": error},
    )


def mark_succeeded(conn: psycopg.Connection[Any], delivery_id: int) -> None:
    conn.execute(
        """
        UPDATE webhook_deliveries
        SET status = 'succeeded', attempts = attempts + 1, delivered_at = now()
        WHERE id = %(id)s
        """,
        {"id": delivery_id},
    )


def schedule_retry(conn: psycopg.Connection[Any], delivery_id: int, *, delay: float) -> None:
    conn.execute(
        """
        UPDATE webhook_deliveries
        SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => %(delay)s)
        WHERE id = %(id)s
        """,
        {"id": delivery_id, "delay": delay},
    )


def mark_failed(conn: psycopg.Connection[Any], delivery_id: int, *, count_attempt: bool) -> None:
    conn.execute(
        """
        UPDATE webhook_deliveries
        SET status = 'failed', attempts = attempts + %(inc)s
        WHERE id = %(id)s
        """,
        {"id": delivery_id, "inc": 1 if count_attempt else 0},
    )


def get(conn: psycopg.Connection[Any], delivery_id: int) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT id, event_id, endpoint_id, status, attempts, next_attempt_at, delivered_at"
        " FROM webhook_deliveries WHERE id = %(id)s",
        {"id": delivery_id},
    ).fetchone()


def attempts_of(conn: psycopg.Connection[Any], delivery_id: int) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT status_code, latency_ms, error, attempted_at FROM webhook_delivery_attempts"
        " WHERE delivery_id = %(id)s ORDER BY id",
        {"id": delivery_id},
    ).fetchall()


def counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Pending deliveries, and how many of them are due now (both from the partial index)."""
    row = conn.execute(
        """
        SELECT count(*) AS pending, count(*) FILTER (WHERE next_attempt_at <= now()) AS due
        FROM webhook_deliveries WHERE status = 'pending'
        """
    ).fetchone()
    assert row is not None
    return {"pending": int(row["pending"]), "due": int(row["due"])}
