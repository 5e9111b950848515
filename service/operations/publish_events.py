"""Relaying the outbox: events to the Redis stream, deliveries to the send task.

The stream `tally:events` gets one entry per event, in commit order per object:

    id        the evt_ id (consumers dedupe on it: publishing is at least once)
    type      e.g. invoice.paid
    livemode  "1" or "0"
    created   Unix seconds
    payload   the event as JSON, exactly as GET /v1/events/:id renders it

The stream is capped near STREAM_MAXLEN entries (approximate trimming); it is a
feed, not the record: PostgreSQL keeps every event.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg
import redis

from service import observability
from service.domain.events import render_event
from service.store import deliveries, outbox

log = logging.getLogger(__name__)

STREAM_KEY = "tally:events"
STREAM_MAXLEN = 100_000
PUBLISH_BATCH = 500
DISPATCH_BATCH = 200
# How long a dispatched delivery waits for its send task before it is due again: the
# time a lost task (Redis flushed or stopped, its worker killed) costs. The chaos run
# saw every such delivery wait out 300 s; a minute still covers a deliveries queue
# running behind. A re-dispatch never sends twice: the first task's lease token no
# longer matches when it finally runs (store/deliveries.py).
DISPATCH_LEASE_SECONDS = 60.0

# A send task carries at most this many deliveries, all to one endpoint: a slow
# receiver holds up only its own deliveries, and a fast one takes a batch per task.
DELIVERY_BATCH = 50

# enqueue([(delivery_id, lease_token), ...]): hands one batch to the send task.
EnqueueDeliveries = Callable[[list[tuple[int, int]]], None]


def publish_events(
    conn: psycopg.Connection[Any],
    stream: redis.Redis,
    *,
    limit: int = PUBLISH_BATCH,
    wait: bool = True,
) -> int | None:
    """XADD unpublished events to the stream, then mark them published; returns how many.

    One transaction per batch, publishers serialised by an advisory lock so the
    stream keeps the outbox's order. A crash between XADD and COMMIT republishes
    the batch (at least once). Redis errors propagate with nothing marked.

    With `wait=False`, returns None at once if another publisher holds the lock.
    """
    published = 0
    while True:
        with conn.transaction():
            if wait:
                outbox.lock_publisher(conn)
            elif not outbox.try_lock_publisher(conn):
                return None
            rows = outbox.claim_unpublished(conn, limit=limit)
            if not rows:
                break
            pipe = stream.pipeline(transaction=False)
            for row in rows:
                pipe.xadd(
                    STREAM_KEY,
                    {
                        "id": row["id"],
                        "type": row["type"],
                        "livemode": "1" if row["livemode"] else "0",
                        "created": row["created"],
                        "payload": _payload(row),
                    },
                    maxlen=STREAM_MAXLEN,
                    approximate=True,
                )
            pipe.execute()
            outbox.mark_published(conn, [row["id"] for row in rows])
        observability.observe_published(rows, time.time())
        published += len(rows)
        if len(rows) < limit:
            break
    return published


def publish_committed(
    conn: psycopg.Connection[Any],
    stream: redis.Redis,
    *,
    wake_publisher: Callable[[], object],
    enqueue: EnqueueDeliveries,
) -> None:
    """Publish what the caller just committed, from the caller's own process, then
    dispatch due deliveries: the drain does this for its batches (drain_inbound says
    when). Under steady traffic an `events.publish` task per batch cost more than the
    publishing (a message, a dispatch and an ack in two more processes), and its delay
    doubled a credit's latency.

    When another publisher holds the lock it may have claimed before the caller's
    commit, so the publish task is woken to take the rest (as the API does). A Redis
    failure leaves the events for the sweeper: the caller's commit stands.
    """
    try:
        published = publish_events(conn, stream, wait=False)
        if published is None:
            wake_publisher()
            return
        dispatch_due_deliveries(conn, enqueue)
    except redis.RedisError as exc:
        log.warning("publishing left to the sweeper, redis unavailable: %s", exc)


_RAW_DATA = "__tally_raw_event_data__"


def _payload(row: dict[str, Any]) -> str:
    """render_event's JSON, with the stored `data` text spliced in unparsed."""
    text = json.dumps(render_event({**row, "data": _RAW_DATA}), separators=(",", ":"))
    return text.replace(f'"{_RAW_DATA}"', row["data"], 1)


def dispatch_due_deliveries(
    conn: psycopg.Connection[Any],
    enqueue: EnqueueDeliveries,
    *,
    limit: int = DISPATCH_BATCH,
    lease_seconds: float = DISPATCH_LEASE_SECONDS,
    batch_size: int = DELIVERY_BATCH,
) -> int:
    """Lease due deliveries and enqueue them in batches by endpoint; returns how many.

    If enqueueing fails (Redis down) the leases simply run out and the sweeper
    dispatches the deliveries again.
    """
    dispatched = 0
    while True:
        leased = deliveries.lease_due(conn, limit=limit, lease_seconds=lease_seconds)
        by_endpoint: dict[str, list[tuple[int, int]]] = {}
        for row in leased:
            by_endpoint.setdefault(row["endpoint_id"], []).append((row["id"], row["lease"]))
        for batch in by_endpoint.values():
            for start in range(0, len(batch), batch_size):
                enqueue(batch[start : start + batch_size])
        dispatched += len(leased)
        if len(leased) < limit:
            return dispatched
