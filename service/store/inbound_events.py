"""Inbound Stripe events: stored by the intake before its 2xx, claimed by workers.

A row is `pending` until a worker settles it as `processed`, `ignored` or `failed`;
an error to be retried leaves it `pending` with `next_attempt_at` pushed back, and a
replay (`requeue`) makes a settled row `pending` again.

`claims` counts the claims of a pending row since it last settled: a worker commits
one (`take_due`) before its batch runs, so a batch whose process dies still counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.db import Conn


@dataclass(frozen=True, slots=True)
class Settlement:
    """What became of one claimed event: its new status, error and (if pending) delay."""

    id: str
    status: str
    error: str | None = None
    retry_in: float = 0.0


def insert_if_new(
    conn: Conn, *, event_id: str, event_type: str, livemode: bool, payload: str
) -> bool:
    """Store the raw JSON `payload` unless the id is known; True when it was new.

    One autocommit statement: once it returns, the event is durable.
    """
    row = conn.execute(
        """
        INSERT INTO inbound_events (id, type, livemode, payload)
        VALUES (%(id)s, %(type)s, %(livemode)s, %(payload)s::jsonb)
        ON CONFLICT (id) DO NOTHING
        RETURNING seq
        """,
        {"id": event_id, "type": event_type, "livemode": livemode, "payload": payload},
    ).fetchone()
    return row is not None


def take_due(
    conn: Conn, *, limit: int, max_claims: int, lease_seconds: float
) -> list[dict[str, Any]]:
    """Count a claim of up to `limit` pending events that are due, oldest first, skipping
    rows another worker holds, and commit it (call outside a transaction: one statement,
    autocommit); returns their id, type, status and claims.

    An event already claimed without settling since (its batch's process died) is taken
    alone, so a batch that kills its process takes no other event down with it next
    time; one claimed `max_claims` times so is not taken but quarantined, `failed` with
    the reason. The events taken stay due only after `lease_seconds`, so no other worker
    counts them between this commit and the batch's row locks.
    """
    return conn.execute(
        """
        WITH due AS (
            SELECT id, seq, claims FROM inbound_events
            WHERE status = 'pending' AND next_attempt_at <= now()
            ORDER BY seq
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        ), suspect AS (
            SELECT id FROM due WHERE claims > 0 ORDER BY seq LIMIT 1
        ), taken AS (
            SELECT id FROM suspect
            UNION ALL
            SELECT id FROM due WHERE NOT EXISTS (SELECT 1 FROM suspect)
        )
        UPDATE inbound_events e
        SET claims = e.claims + 1,
            next_attempt_at = now() + make_interval(secs => %(lease)s),
            status = CASE WHEN e.claims >= %(max_claims)s THEN 'failed' ELSE e.status END,
            processed_at = CASE WHEN e.claims >= %(max_claims)s THEN now() END,
            last_error = CASE WHEN e.claims >= %(max_claims)s
                THEN format('quarantined: claimed %%s times without settling (its processing'
                            ' ended its worker each time); replay it once that is fixed',
                            e.claims)
                ELSE e.last_error END
        FROM taken
        WHERE e.id = taken.id
        RETURNING e.seq, e.id, e.type, e.status, e.claims
        """,
        {"limit": limit, "max_claims": max_claims, "lease": lease_seconds},
    ).fetchall()


def claim_pending(conn: Conn, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Lock those of `ids` still pending, oldest first: the events a batch took
    (take_due), and again when it is redone event by event. Call inside the
    transaction that settles them.

    It waits for a row another transaction holds: the claim's lease keeps other
    batches off these events, so the holder is a moment's lock (a concurrent claim
    whose snapshot still saw the event due locks the row before finding it taken);
    skipping the row left the event to wait out the lease. An event settled by the
    holder is no longer pending when the lock comes, and is left out."""
    return conn.execute(
        """
        SELECT id, type, payload, attempts, received_at
        FROM inbound_events
        WHERE id = ANY(%(ids)s) AND status = 'pending'
        ORDER BY seq
        FOR UPDATE
        """,
        {"ids": list(ids)},
    ).fetchall()


def settle(conn: Conn, settlements: Sequence[Settlement]) -> None:
    """Record the outcome of each claimed event in one statement."""
    if not settlements:
        return
    conn.execute(
        """
        UPDATE inbound_events e
        SET status = v.status,
            attempts = e.attempts + 1,
            claims = 0,
            last_error = v.error,
            processed_at = CASE WHEN v.status = 'pending' THEN NULL ELSE now() END,
            next_attempt_at = CASE WHEN v.status = 'pending'
                THEN now() + make_interval(secs => v.retry_in) ELSE e.next_attempt_at END
        FROM unnest(%(ids)s::text[], %(statuses)s::text[], %(errors)s::text[],
                    %(delays)s::float8[]) AS v (id, status, error, retry_in)
        WHERE e.id = v.id
        """,
        {
            "ids": [s.id for s in settlements],
            "statuses": [s.status for s in settlements],
            "errors": [s.error for s in settlements],
            "delays": [s.retry_in for s in settlements],
        },
    )


def get(conn: Conn, event_id: str) -> dict[str, Any] | None:
    return conn.execute(
        """
        SELECT id, type, livemode, payload, status, outcome, attempts, last_error,
               received_at, processed_at, next_attempt_at
        FROM inbound_events WHERE id = %(id)s
        """,
        {"id": event_id},
    ).fetchone()


def count_stale(conn: Conn, *, grace_seconds: float) -> int:
    """Pending events that are due and were received more than `grace_seconds` ago."""
    row = conn.execute(
        """
        SELECT count(*) AS n FROM inbound_events
        WHERE status = 'pending' AND next_attempt_at <= now()
          AND received_at < now() - make_interval(secs => %(grace)s)
        """,
        {"grace": grace_seconds},
    ).fetchone()
    return int(row["n"]) if row else 0


def count_by_status(conn: Conn) -> dict[str, int]:
    """Pending and failed counts (both read from partial indexes, never the whole table)."""
    (row,) = conn.execute(
        """
        SELECT (SELECT count(*) FROM inbound_events WHERE status = 'pending') AS pending,
               (SELECT count(*) FROM inbound_events WHERE status = 'failed') AS failed
        """
    ).fetchall()
    return {"pending": int(row["pending"]), "failed": int(row["failed"])}


@dataclass(frozen=True, slots=True)
class Requeued:
    """An event put back to `pending`, and what it was before."""

    id: str
    type: str
    previous_status: str
    attempts: int
    last_error: str | None


def requeue(
    conn: Conn,
    *,
    ids: Sequence[str] | None,
    received_since: datetime | None,
    received_until: datetime | None,
    statuses: Sequence[str] | None,
) -> list[Requeued]:
    """Reset the chosen events to `pending`, due now, with a fresh retry budget; each
    filter left None matches everything. Oldest first."""
    rows = conn.execute(
        """
        UPDATE inbound_events e
        SET status = 'pending', attempts = 0, claims = 0, next_attempt_at = now(),
            processed_at = NULL
        FROM (
            SELECT id, status, attempts FROM inbound_events
            WHERE (%(ids)s::text[] IS NULL OR id = ANY(%(ids)s::text[]))
              AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s::timestamptz)
              AND (%(until)s::timestamptz IS NULL OR received_at < %(until)s::timestamptz)
              AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
            FOR UPDATE
        ) AS before
        WHERE e.id = before.id
        RETURNING e.seq, e.id, e.type, before.status, before.attempts, e.last_error
        """,
        {
            "ids": None if ids is None else list(ids),
            "since": received_since,
            "until": received_until,
            "statuses": None if statuses is None else list(statuses),
        },
    ).fetchall()
    return [
        Requeued(r["id"], r["type"], r["status"], r["attempts"], r["last_error"])
        for r in sorted(rows, key=lambda r: r["seq"])
    ]


def recent(
    conn: Conn, *, status: str | None, received_since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` events, newest first, optionally of one status and received since."""
    return conn.execute(
        """
        SELECT id, type, livemode, status, outcome, attempts, last_error, received_at,
            processed_at
        FROM inbound_events
        WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
          AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s::timestamptz)
        ORDER BY seq DESC
        LIMIT %(limit)s
        """,
        {"status": status, "since": received_since, "limit": limit},
    ).fetchall()


def note_outcome(conn: Conn, event_id: str, outcome: str) -> None:
    """Say why the event, being processed in this transaction, did what it did (an
    operator reads it in `tally inbound list`); settling it leaves the note alone."""
    conn.execute(
        "UPDATE inbound_events SET outcome = %(outcome)s WHERE id = %(id)s",
        {"id": event_id, "outcome": outcome},
    )


def statuses(conn: Conn, ids: Sequence[str]) -> dict[str, str]:
    """The status of each of `ids` that exists."""
    rows = conn.execute(
        "SELECT id, status FROM inbound_events WHERE id = ANY(%(ids)s::text[])",
        {"ids": list(ids)},
    ).fetchall()
    return {r["id"]: r["status"] for r in rows}
