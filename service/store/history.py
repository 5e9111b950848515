"""Pruning history: events with their deliveries, settled inbound events. Each call
deletes at most `limit` rows of its kind, oldest first, skipping rows another
transaction holds; the indexes of migration 0024 make each a range scan that stops
at the cutoff. Ledger tables are never touched."""

from __future__ import annotations

from dataclasses import dataclass

from service.db import Conn


@dataclass(frozen=True, slots=True)
class PrunedEvents:
    events: int
    deliveries: int
    attempts: int


# An event still to be published, or with a delivery still to succeed, is kept
# whatever its age.
_PRUNABLE_EVENTS = """
    SELECT e.id FROM events e
    WHERE e.created < %(before)s
      AND NOT EXISTS (SELECT 1 FROM event_outbox o WHERE o.event_id = e.id)
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                      WHERE d.event_id = e.id AND d.status = 'pending')
"""


def prune_events(conn: Conn, *, created_before: int, limit: int) -> PrunedEvents:
    """Delete up to `limit` events created before `created_before` (Unix seconds), with
    their deliveries, delivery attempts and stream positions, in one statement."""
    row = conn.execute(
        f"""
        WITH doomed AS (
            {_PRUNABLE_EVENTS}
            ORDER BY e.created LIMIT %(limit)s
            FOR UPDATE OF e SKIP LOCKED
        ),
        deliveries AS (
            DELETE FROM webhook_deliveries d USING doomed
            WHERE d.event_id = doomed.id RETURNING d.id
        ),
        attempts AS (
            DELETE FROM webhook_delivery_attempts a USING deliveries
            WHERE a.delivery_id = deliveries.id RETURNING 1
        ),
        positions AS (
            DELETE FROM event_positions p USING doomed WHERE p.event_id = doomed.id
        ),
        pruned AS (
            DELETE FROM events e USING doomed WHERE e.id = doomed.id RETURNING 1
        )
        SELECT (SELECT count(*) FROM pruned) AS events,
               (SELECT count(*) FROM deliveries) AS deliveries,
               (SELECT count(*) FROM attempts) AS attempts
        """,  # noqa: S608  (a constant fragment, no input)
        {"before": created_before, "limit": limit},
    ).fetchone()
    if row is None:  # never: a SELECT of three counts is one row
        return PrunedEvents(0, 0, 0)
    return PrunedEvents(row["events"], row["deliveries"], row["attempts"])


def count_prunable_events(conn: Conn, *, created_before: int) -> PrunedEvents:
    """What prune_events would delete, were it given no limit."""
    row = conn.execute(
        f"""
        WITH prunable AS ({_PRUNABLE_EVENTS}),
        deliveries AS (
            SELECT d.id FROM webhook_deliveries d JOIN prunable p ON p.id = d.event_id
        )
        SELECT (SELECT count(*) FROM prunable) AS events,
               (SELECT count(*) FROM deliveries) AS deliveries,
               (SELECT count(*) FROM webhook_delivery_attempts a
                JOIN deliveries d ON d.id = a.delivery_id) AS attempts
        """,  # noqa: S608
        {"before": created_before},
    ).fetchone()
    if row is None:
        return PrunedEvents(0, 0, 0)
    return PrunedEvents(row["events"], row["deliveries"], row["attempts"])


# Failed inbound events wait for an operator's replay, and pending ones for a worker:
# only settled ones (processed, ignored) are history.
_SETTLED_INBOUND = """
    SELECT id FROM inbound_events
    WHERE status IN ('processed', 'ignored') AND processed_at < to_timestamp(%(before)s)
"""


def prune_inbound_events(conn: Conn, *, settled_before: int, limit: int) -> int:
    """Delete up to `limit` inbound events settled before `settled_before` (Unix seconds)."""
    cur = conn.execute(
        f"""
        DELETE FROM inbound_events WHERE id IN (
            {_SETTLED_INBOUND}
            ORDER BY processed_at LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        )
        """,  # noqa: S608
        {"before": settled_before, "limit": limit},
    )
    return cur.rowcount


def count_prunable_inbound_events(conn: Conn, *, settled_before: int) -> int:
    row = conn.execute(
        f"SELECT count(*) AS n FROM ({_SETTLED_INBOUND}) AS prunable",  # noqa: S608
        {"before": settled_before},
    ).fetchone()
    return int(row["n"]) if row else 0
