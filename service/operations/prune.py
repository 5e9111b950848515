"""Bounded history: what Tally keeps only for a while, pruned a bounded batch at a
time, each batch its own short transaction. Ledger objects (customers, invoices,
items, payments, records, balance transactions) are never pruned.

Defaults are Stripe's own windows: events 30 days (Stripe lists events "going back
up to 30 days"), their webhook deliveries and attempts with them (a delivery is
about its event), settled inbound events 30 days, Idempotency-Key results 24 hours.
beat runs prune_events and expire_idempotency_keys every minute, each its own entry;
`tally prune [--dry-run]` runs both.

Batches rather than time partitions (the README's Retention section has the
measurements): a batch's cost follows what it deletes, not the table's size, as a
partition drop's does, without partitioning the hot tables, whose primary keys
(the evt_ ids the API serves) would then have to carry the partition key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from service.config import Retention
from service.db import Conn
from service.store import history, idempotency

log = logging.getLogger(__name__)

BATCH = 5_000
# A run deletes at most this many batches of each kind: 100,000 events a minute is
# about 144 million a day, far beyond the traffic the rest of Tally takes.
MAX_BATCHES = 20


@dataclass(slots=True)
class PruneReport:
    """Rows pruned (or, for a dry run, that would be), by kind."""

    events: int = 0
    deliveries: int = 0
    delivery_attempts: int = 0
    inbound_events: int = 0
    idempotency_keys: int = 0
    # Whether a kind still had rows beyond this run's batches.
    unfinished: list[str] = field(default_factory=list)


def prune_events(
    conn: Conn,
    retention: Retention,
    *,
    now: float,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
) -> PruneReport:
    """Delete events (with their deliveries) and settled inbound events older than
    `retention`, at most `max_batches` batches of `batch` rows per kind, one
    transaction each; a later run takes the rest."""
    report = PruneReport()
    events_before = int(now - retention.events_days * 86_400)
    inbound_before = int(now - retention.inbound_days * 86_400)
    for _ in range(max_batches):
        with conn.transaction():
            pruned = history.prune_events(conn, created_before=events_before, limit=batch)
        report.events += pruned.events
        report.deliveries += pruned.deliveries
        report.delivery_attempts += pruned.attempts
        if pruned.events < batch:
            break
    else:
        report.unfinished.append("events")
    for _ in range(max_batches):
        with conn.transaction():
            count = history.prune_inbound_events(conn, settled_before=inbound_before, limit=batch)
        report.inbound_events += count
        if count < batch:
            break
    else:
        report.unfinished.append("inbound_events")
    if report.events or report.inbound_events:
        log.info("prune: %s", report)
    return report


def expire_idempotency_keys(conn: Conn, retention: Retention) -> int:
    """Forget Idempotency-Key results older than `retention`; returns how many."""
    with conn.transaction():
        expired = idempotency.delete_older_than(conn, retention.idempotency_hours)
    if expired:
        log.info("idempotency keys expired: %d", expired)
    return expired


def prunable(conn: Conn, retention: Retention, *, now: float) -> PruneReport:
    """What prune_events and expire_idempotency_keys would delete now, without the batch
    limits (a dry run)."""
    events = history.count_prunable_events(
        conn, created_before=int(now - retention.events_days * 86_400)
    )
    return PruneReport(
        events=events.events,
        deliveries=events.deliveries,
        delivery_attempts=events.attempts,
        inbound_events=history.count_prunable_inbound_events(
            conn, settled_before=int(now - retention.inbound_days * 86_400)
        ),
        idempotency_keys=idempotency.count_older_than(conn, retention.idempotency_hours),
    )
