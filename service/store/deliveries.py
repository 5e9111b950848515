"""Webhook deliveries (one per event x subscribed endpoint) and their attempts.

No row lock is held across an HTTP call. Instead `next_attempt_at` doubles as a
lease: dispatching moves it forward and hands the new value (in microseconds since
the epoch) to the send task as a token; the task claims the delivery only if the
token still matches, so a delivery re-dispatched after its lease ran out is sent by
one task, not two. Claiming moves `next_attempt_at` again, past the HTTP timeout.

The endpoint is leased the same way, with the same token: `webhook_endpoints.
sending_until` is set with its deliveries' `next_attempt_at`, so at most one batch is in
flight per endpoint, and a batch that outlived its hold cannot send beside the next.

Endpoints are locked FOR NO KEY UPDATE, never FOR UPDATE: every transaction that
writes a delivery holds its endpoint FOR KEY SHARE (the foreign key's check) until it
commits, which FOR UPDATE waits for, and SKIP LOCKED skips. Under steady crediting
some batch is nearly always open, so dispatch skipped the endpoint most of the time,
and deliveries waited for the sweeper or a lucky moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from service.db import Conn


def lease_due(conn: Conn, *, batch_size: int, lease_seconds: float) -> list[dict[str, Any]]:
    """Lease a batch of due pending deliveries, oldest due first, for each endpoint that
    has some, is not held by a batch, and whose circuit is not open; hold each such
    endpoint under the same lease. A half-open circuit (its cool-down over) lets one
    delivery through. Endpoints that are disabled or deleted get their batch whatever
    their circuit (it is refused at once, with no POST). Returns the deliveries' ids,
    endpoints and lease tokens (one token per endpoint: its hold's token as well).

    Runs endpoint by endpoint, so deliveries waiting for a busy or open endpoint cost
    nothing however many they are."""
    return conn.execute(
        """
        WITH ready AS (
            SELECT e.id,
                   e.circuit_open_until IS NOT NULL AND e.status = 'enabled' AND NOT e.deleted
                       AS half_open
            FROM webhook_endpoints e
            WHERE (e.sending_until IS NULL OR e.sending_until <= now())
              AND (e.circuit_open_until IS NULL OR e.circuit_open_until <= now()
                   OR e.status <> 'enabled' OR e.deleted)
              AND EXISTS (SELECT 1 FROM webhook_deliveries d
                          WHERE d.endpoint_id = e.id AND d.status = 'pending'
                            AND d.next_attempt_at <= now())
            FOR NO KEY UPDATE OF e SKIP LOCKED
        ),
        picked AS (
            SELECT due.id, ready.id AS endpoint_id
            FROM ready CROSS JOIN LATERAL (
                SELECT d.id FROM webhook_deliveries d
                WHERE d.endpoint_id = ready.id AND d.status = 'pending'
                  AND d.next_attempt_at <= now()
                ORDER BY d.next_attempt_at
                LIMIT CASE WHEN ready.half_open THEN 1 ELSE %(batch)s END
                FOR UPDATE SKIP LOCKED
            ) AS due
        ),
        held AS (
            UPDATE webhook_endpoints e
            SET sending_until = now() + make_interval(secs => %(lease)s)
            WHERE e.id IN (SELECT endpoint_id FROM picked)
        )
        UPDATE webhook_deliveries d
        SET next_attempt_at = now() + make_interval(secs => %(lease)s)
        -- An array, not a join: a join may be planned as a scan of every delivery.
        WHERE d.id = ANY(ARRAY(SELECT id FROM picked))
        RETURNING d.id, d.endpoint_id,
                  (extract(epoch FROM d.next_attempt_at) * 1000000)::bigint AS lease
        """,
        {"batch": batch_size, "lease": lease_seconds},
    ).fetchall()


def claim(
    conn: Conn, leased: Sequence[tuple[int, int | None]], *, hold_seconds: float
) -> list[dict[str, Any]]:
    """Take leased deliveries for one attempt each; returns those still pending whose
    lease token matches (a None token: those due now) and whose endpoint is free or held
    under that same lease, in id order, with their endpoint and a new token, `claim`,
    that recording the attempt must present. The endpoints of the deliveries returned
    are held under `claim` too, until webhook_endpoints.release.

    Run it in a transaction: it locks the endpoints first, in id order, then the
    deliveries in id order, as recording a batch does, so no two can deadlock.
    """
    params = {
        "ids": [delivery_id for delivery_id, _ in leased],
        "leases": [lease for _, lease in leased],
        "hold": hold_seconds,
    }
    conn.execute(
        """
        SELECT id FROM webhook_endpoints
        WHERE id IN (SELECT endpoint_id FROM webhook_deliveries WHERE id = ANY(%(ids)s::bigint[]))
        ORDER BY id
        FOR NO KEY UPDATE
        """,
        params,
    )
    return conn.execute(
        """
        WITH wanted AS (
            SELECT d.id FROM webhook_deliveries d
            JOIN unnest(%(ids)s::bigint[], %(leases)s::bigint[]) AS t(id, lease) ON t.id = d.id
            JOIN webhook_endpoints e ON e.id = d.endpoint_id
            WHERE d.status = 'pending'
              AND CASE WHEN t.lease IS NULL THEN d.next_attempt_at <= now()
                       ELSE (extract(epoch FROM d.next_attempt_at) * 1000000)::bigint
                            = t.lease END
              AND (e.sending_until IS NULL OR e.sending_until <= now()
                   OR (extract(epoch FROM e.sending_until) * 1000000)::bigint = t.lease)
            ORDER BY d.id
            FOR UPDATE OF d
        ),
        claimed AS (
            UPDATE webhook_deliveries d
            SET next_attempt_at = now() + make_interval(secs => %(hold)s)
            FROM wanted
            WHERE d.id = wanted.id
            RETURNING d.id, d.event_id, d.endpoint_id, d.attempts,
                      (extract(epoch FROM d.next_attempt_at) * 1000000)::bigint AS claim
        ),
        held AS (
            UPDATE webhook_endpoints e
            SET sending_until = now() + make_interval(secs => %(hold)s)
            WHERE e.id IN (SELECT endpoint_id FROM claimed)
            RETURNING e.id, e.url, e.secret, e.livemode, e.status, e.deleted,
                      e.consecutive_failures
        )
        SELECT claimed.*, held.url, held.secret, held.livemode,
               held.status AS endpoint_status, held.deleted AS endpoint_deleted,
               held.consecutive_failures
        FROM claimed JOIN held ON held.id = claimed.endpoint_id
        ORDER BY claimed.id
        """,
        params,
    ).fetchall()


class Attempt(Protocol):
    """A POST's result (adapters.http.Response)."""

    @property
    def status_code(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def latency_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Settled:
    """A claimed delivery's outcome: `succeeded`, `retrying` (due again in `retry_in` s),
    `failed` (its last attempt), `refused` (failed with no attempt: its endpoint is
    gone), or `returned` (due now, not attempted); `attempt`, the POST made, if any."""

    id: int
    claim: int
    outcome: str
    retry_in: float = 0
    attempt: Attempt | None = None


# An outcome's status, and whether it counts as an attempt.
_STATUS_ATTEMPTED = {
    "succeeded": ("succeeded", 1),
    "retrying": ("pending", 1),
    "failed": ("failed", 1),
    "refused": ("failed", 0),
    "returned": ("pending", 0),
}


def settle_all(conn: Conn, settled: Sequence[Settled]) -> set[int]:
    """Record the outcomes of claimed deliveries, and their attempts, in one statement,
    each only if its claim still stands (a claim outlived by its task was taken over;
    the new holder records instead). Returns the ids whose claim stood."""
    if not settled:
        return set()
    statuses = [_STATUS_ATTEMPTED[s.outcome] for s in settled]
    rows = conn.execute(
        """
        WITH t AS (
            SELECT * FROM unnest(%(ids)s::bigint[], %(claims)s::bigint[], %(statuses)s::text[],
                                 %(attempted)s::int[], %(retry_in)s::float8[],
                                 %(posted)s::boolean[], %(codes)s::int[], %(latency)s::int[],
                                 %(errors)s::text[])
                AS t(id, claim, status, attempted, retry_in, posted, status_code, latency_ms,
                     error)
        ),
        settled AS (
            UPDATE webhook_deliveries d
            SET status = t.status,
                attempts = d.attempts + t.attempted,
                delivered_at = CASE WHEN t.status = 'succeeded' THEN now() ELSE d.delivered_at END,
                next_attempt_at = CASE WHEN t.status = 'pending'
                                       THEN now() + make_interval(secs => t.retry_in)
                                       ELSE d.next_attempt_at END
            FROM t
            WHERE d.id = t.id AND d.status = 'pending'
              AND (extract(epoch FROM d.next_attempt_at) * 1000000)::bigint = t.claim
            RETURNING d.id
        ),
        attempts AS (
            INSERT INTO webhook_delivery_attempts (delivery_id, status_code, latency_ms, error)
            SELECT t.id, t.status_code, t.latency_ms, t.error
            FROM t JOIN settled USING (id)
            WHERE t.posted
            ORDER BY t.id
        )
        SELECT id FROM settled
        """,
        {
            "ids": [s.id for s in settled],
            "claims": [s.claim for s in settled],
            "statuses": [status for status, _ in statuses],
            "attempted": [attempted for _, attempted in statuses],
            "retry_in": [float(s.retry_in) for s in settled],
            "posted": [s.attempt is not None for s in settled],
            "codes": [s.attempt.status_code if s.attempt else None for s in settled],
            "latency": [s.attempt.latency_ms if s.attempt else None for s in settled],
            "errors": [s.attempt.error if s.attempt else None for s in settled],
        },
    ).fetchall()
    return {row["id"] for row in rows}


def get(conn: Conn, delivery_id: int) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT id, event_id, endpoint_id, status, attempts, next_attempt_at, delivered_at"
        " FROM webhook_deliveries WHERE id = %(id)s",
        {"id": delivery_id},
    ).fetchone()


def attempts_of(conn: Conn, delivery_id: int) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT status_code, latency_ms, error, attempted_at FROM webhook_delivery_attempts"
        " WHERE delivery_id = %(id)s ORDER BY id",
        {"id": delivery_id},
    ).fetchall()


def counts(conn: Conn) -> dict[str, int]:
    """Pending deliveries, and how many of them are due now (both from the partial index)."""
    (row,) = conn.execute(
        """
        SELECT count(*) AS pending, count(*) FILTER (WHERE next_attempt_at <= now()) AS due
        FROM webhook_deliveries WHERE status = 'pending'
        """
    ).fetchall()
    return {"pending": int(row["pending"]), "due": int(row["due"])}


def make_due(conn: Conn, event_id: str, endpoint_ids: list[str]) -> list[dict[str, Any]]:
    """A delivery of the event to each endpoint, pending and due now, with a fresh retry
    schedule: a new row, or the existing one reset (UNIQUE (event_id, endpoint_id); its
    attempts stay in webhook_delivery_attempts). Returns each with its status before
    (None when new)."""
    return conn.execute(
        """
        WITH before AS (
            SELECT endpoint_id, status FROM webhook_deliveries
            WHERE event_id = %(event)s AND endpoint_id = ANY(%(endpoints)s::text[])
        ),
        due AS (
            INSERT INTO webhook_deliveries (event_id, endpoint_id)
            SELECT %(event)s, endpoint_id FROM unnest(%(endpoints)s::text[]) AS endpoint_id
            ON CONFLICT ON CONSTRAINT webhook_deliveries_event_endpoint_key DO UPDATE
            SET status = 'pending', attempts = 0, next_attempt_at = now()
            RETURNING id, endpoint_id
        )
        SELECT due.id, due.endpoint_id, before.status AS previous_status
        FROM due LEFT JOIN before USING (endpoint_id)
        ORDER BY due.id
        """,
        {"event": event_id, "endpoints": endpoint_ids},
    ).fetchall()


def retry_failed(conn: Conn, endpoint_id: str, *, events_since: int) -> list[dict[str, Any]]:
    """Put the endpoint's failed deliveries of events created at or after `events_since`
    (Unix seconds) back to pending, due now, with a fresh retry schedule."""
    return conn.execute(
        """
        UPDATE webhook_deliveries d
        SET status = 'pending', attempts = 0, next_attempt_at = now()
        FROM events ev
        WHERE d.endpoint_id = %(endpoint)s AND d.status = 'failed'
          AND ev.id = d.event_id AND ev.created >= %(since)s
        RETURNING d.id, d.event_id, ev.type, ev.created
        """,
        {"endpoint": endpoint_id, "since": events_since},
    ).fetchall()


def attempts_to(
    conn: Conn, endpoint_id: str, *, failed_only: bool, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` of an endpoint's delivery attempts, newest first, after its deliveries
    not attempted yet; `failed_only` keeps failed attempts and failed deliveries never
    attempted (the endpoint was disabled or deleted when their turn came)."""
    return conn.execute(
        """
        SELECT d.id AS delivery, d.event_id, ev.type, d.status, a.attempted_at,
               a.status_code, a.latency_ms, a.error
        FROM webhook_deliveries d
        JOIN events ev ON ev.id = d.event_id
        LEFT JOIN webhook_delivery_attempts a ON a.delivery_id = d.id
        WHERE d.endpoint_id = %(endpoint)s
          AND (NOT %(failed)s
               OR (a.id IS NULL AND d.status = 'failed')
               OR (a.id IS NOT NULL AND coalesce(a.status_code NOT BETWEEN 200 AND 299, true)))
        ORDER BY a.attempted_at DESC NULLS FIRST, d.id DESC, a.id DESC
        LIMIT %(limit)s
        """,
        {"endpoint": endpoint_id, "failed": failed_only, "limit": limit},
    ).fetchall()
