"""Relaying the outbox: events to the Redis stream (adapters/stream.py says what an
entry holds), deliveries to the send task.

Publishers are serialised by a lock in PostgreSQL, so the stream keeps the outbox's
order, and none waits for it: one that finds it taken leaves the holder a note
(service/wakeups.py, PUBLISH_AGAIN) and goes. A publish task waiting for the lock held
a worker slot a drain needed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import redis

from service import observability
from service.adapters.stream import add_entries
from service.config import DEFAULT_STREAM_RETENTION
from service.db import Conn
from service.store import deliveries, outbox
from service.wakeups import PUBLISH_AGAIN

log = logging.getLogger(__name__)

PUBLISH_BATCH = 500
# How long a dispatched delivery waits for its send task before it is due again: the
# time a lost task (Redis flushed or stopped, its worker killed) costs. The chaos run
# saw every such delivery wait out 300 s; a minute still covers a deliveries queue
# running behind. A re-dispatch never sends twice: the first task's lease token no
# longer matches when it finally runs (store/deliveries.py).
DISPATCH_LEASE_SECONDS = 60.0

# A send task carries at most this many deliveries, all to one endpoint, and each
# endpoint has at most one in flight (operations/deliver.py): a slow or dead receiver
# holds up only its own deliveries, and a fast one takes a batch per task.
DELIVERY_BATCH = 50

# enqueue([(delivery_id, lease_token), ...]): hands one batch to the send task.
EnqueueDeliveries = Callable[[list[tuple[int, int]]], None]


def publish_events(
    conn: Conn,
    stream: redis.Redis,
    *,
    limit: int = PUBLISH_BATCH,
    retention: float = DEFAULT_STREAM_RETENTION,
) -> int:
    """Number unpublished events and XADD them to the stream; returns how many this
    call published.

    One transaction per batch, under the publishers' lock. A crash between XADD and
    COMMIT republishes the batch (at least once). Redis errors propagate with nothing
    marked. Entries older than `retention` seconds are trimmed as new ones are added.

    If another publisher holds the lock it may have claimed before the caller's commit:
    this call leaves it PUBLISH_AGAIN, tries once more (it may have let go meanwhile),
    and returns. A holder takes the note after it lets go of the lock, and publishes
    again if there was one: every note is taken by a publisher that claims after it.
    """
    return _publish(conn, stream, limit, retention)[0]


def _publish(conn: Conn, stream: redis.Redis, limit: int, retention: float) -> tuple[int, bool]:
    """publish_events, and whether it left the rest to the lock's holder."""
    published = 0
    while True:
        count = _publish_batch(conn, stream, limit, retention)
        if count is None:
            stream.set(PUBLISH_AGAIN, b"1")
            count = _publish_batch(conn, stream, limit, retention)
            if count is None:
                return published, True  # the holder will take the note
        published += count
        if count < limit and not stream.delete(PUBLISH_AGAIN):
            return published, False


def _publish_batch(conn: Conn, stream: redis.Redis, limit: int, retention: float) -> int | None:
    """Publish up to `limit` events; None if another publisher holds the lock."""
    with conn.transaction():
        if not outbox.try_lock_publisher(conn):
            return None
        rows = outbox.take_unpublished(conn, limit=limit)
        if not rows:
            return 0
        add_entries(stream, rows, retention)
    observability.observe_published(rows, time.time())
    return len(rows)


class PublishTasks(Protocol):
    """What the publish task needs of the task queue (service.queue.TaskQueue)."""

    def publisher_started(self) -> None: ...
    def send_deliveries(self, leased: list[tuple[int, int]]) -> None: ...


def publish_woken(
    conn: Conn,
    stream: redis.Redis,
    tasks: PublishTasks,
    *,
    retention: float = DEFAULT_STREAM_RETENTION,
) -> int:
    """The `events.publish` task: let go of its wake-up flag (service/wakeups.py), publish
    what is unpublished, then dispatch due deliveries; returns how many it published."""
    tasks.publisher_started()
    published = publish_events(conn, stream, retention=retention)
    dispatch_due_deliveries(conn, tasks.send_deliveries)
    return published


def publish_committed(
    conn: Conn,
    stream: redis.Redis,
    enqueue: EnqueueDeliveries,
    *,
    retention: float = DEFAULT_STREAM_RETENTION,
) -> None:
    """Publish what the caller just committed, from the caller's own process, then
    dispatch due deliveries: the drain does this for its batches (drain_inbound says
    when). Under steady traffic an `events.publish` task per batch cost more than the
    publishing (a message, a dispatch and an ack in two more processes), and its delay
    doubled a credit's latency. A Redis failure leaves the events for the sweeper: the
    caller's commit stands. Every publisher dispatches after publishing, so one that
    left the rest to the lock's holder leaves it the dispatch too.
    """
    try:
        _, left_to_holder = _publish(conn, stream, PUBLISH_BATCH, retention)
    except redis.RedisError as exc:
        log.warning("publishing left to the sweeper, redis unavailable: %s", exc)
        return
    if not left_to_holder:  # else the holder dispatches once it has published
        dispatch_due_deliveries(conn, enqueue)


def republish_events(
    conn: Conn,
    stream: redis.Redis,
    *,
    from_position: int = 1,
    created_since: int = 0,
    retention: float = DEFAULT_STREAM_RETENTION,
    limit: int = PUBLISH_BATCH,
) -> tuple[int, int | None, int | None]:
    """Put published events back on the stream from PostgreSQL, in position order,
    each with its own position: from `from_position` on, created at `created_since` or
    later. Returns (how many, first position, last position). At least once, like
    publishing: consumers dedupe on the event id.

    Events still in the outbox are the publisher's; they reach the stream anyway.
    """
    count, first, last = 0, None, None
    position = from_position
    while rows := outbox.published_from(
        conn, position=position, created_since=created_since, limit=limit
    ):
        add_entries(stream, rows, retention)
        count += len(rows)
        first = rows[0]["position"] if first is None else first
        last = rows[-1]["position"]
        position = last + 1
    return count, first, last


def dispatch_due_deliveries(
    conn: Conn,
    enqueue: EnqueueDeliveries,
    *,
    lease_seconds: float = DISPATCH_LEASE_SECONDS,
    batch_size: int = DELIVERY_BATCH,
) -> int:
    """Lease a batch of due deliveries for each endpoint that is not sending one already
    and whose circuit lets it, and enqueue each batch; returns how many deliveries.
    The rest of an endpoint's due deliveries go when its batch is done (the send task
    dispatches again then).

    If enqueueing fails (Redis down) the leases simply run out and the sweeper
    dispatches the deliveries again.
    """
    batches = lease_due_batches(conn, lease_seconds=lease_seconds, batch_size=batch_size)
    for batch in batches.values():
        enqueue(batch)
    return sum(map(len, batches.values()))


def lease_due_batches(
    conn: Conn,
    *,
    lease_seconds: float = DISPATCH_LEASE_SECONDS,
    batch_size: int = DELIVERY_BATCH,
) -> dict[str, list[tuple[int, int]]]:
    """dispatch_due_deliveries' leases, each endpoint's batch by its id, not enqueued: a
    batch left neither enqueued nor sent is due again when its lease runs out."""
    leased = deliveries.lease_due(conn, batch_size=batch_size, lease_seconds=lease_seconds)
    by_endpoint: dict[str, list[tuple[int, int]]] = {}
    # An UPDATE returns its rows in no set order; a batch goes oldest first.
    for row in sorted(leased, key=lambda r: r["id"]):
        by_endpoint.setdefault(row["endpoint_id"], []).append((row["id"], row["lease"]))
    return by_endpoint
