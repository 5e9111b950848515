"""The pipeline's backlog as /metrics reports it: how much waits, and since when.

One statement of scalar subqueries, each served by a partial index on the rows
still waiting (pending inbound events, the outbox, pending deliveries), so a
scrape costs the same whatever the size of the history. Ages are seconds, 0 when
nothing waits.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.rows import class_row

from service.db import Conn


@dataclass(frozen=True, slots=True)
class Backlog:
    inbound_pending: int
    inbound_failed: int
    # Since the oldest pending inbound event became due: received, or its retry came due.
    inbound_oldest_due_age: float
    events_unpublished: int
    events_oldest_unpublished_age: float
    deliveries_pending: int
    deliveries_due: int
    deliveries_oldest_due_age: float
    endpoints_disabled: int
    # Unix time the sweeper last completed a pass (store/sweeper_passes.py); None before.
    sweep_completed_at: float | None


def snapshot(conn: Conn) -> Backlog:
    with conn.cursor(row_factory=class_row(Backlog)) as cur:
        (row,) = cur.execute(
            """
            SELECT
              (SELECT count(*) FROM inbound_events WHERE status = 'pending') AS inbound_pending,
              (SELECT count(*) FROM inbound_events WHERE status = 'failed') AS inbound_failed,
              (SELECT coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0)::float8
                 FROM inbound_events
                WHERE status = 'pending' AND next_attempt_at <= now()) AS inbound_oldest_due_age,
              (SELECT count(*) FROM event_outbox) AS events_unpublished,
              (SELECT coalesce(max(extract(epoch FROM now())::float8 - e.created), 0)
                 FROM (SELECT event_id FROM event_outbox ORDER BY seq LIMIT 1) o
                 JOIN events e ON e.id = o.event_id) AS events_oldest_unpublished_age,
              (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')
                AS deliveries_pending,
              (SELECT count(*) FROM webhook_deliveries
                WHERE status = 'pending' AND next_attempt_at <= now()) AS deliveries_due,
              (SELECT coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0)::float8
                 FROM webhook_deliveries
                WHERE status = 'pending' AND next_attempt_at <= now())
                AS deliveries_oldest_due_age,
              (SELECT count(*) FROM webhook_endpoints WHERE status = 'disabled' AND NOT deleted)
                AS endpoints_disabled,
              (SELECT extract(epoch FROM completed_at)::float8 FROM sweeper_passes)
                AS sweep_completed_at
            """
        ).fetchall()
    return row
