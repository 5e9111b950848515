"""Relaying the outbox: events to the Redis stream, deliveries to the send task.

The stream `tally:events` gets one entry per event, in commit order per object:

    position  1, 2, 3, ...: the event's place in publishing order, assigned by
              PostgreSQL with no gaps (store/outbox.py says how), so a consumer that
              sees a jump knows it missed entries and can ask for them again
    id        the evt_ id (consumers dedupe on it: publishing is at least once, and
              `tally events republish` puts events back with their positions)
    type      e.g. invoice.paid
    livemode  "1" or "0"
    created   Unix seconds
    payload   the event as JSON, exactly as GET /v1/events/:id renders it

The stream is trimmed by age (entries older than `retention`, 7 days by default;
approximate trimming, so a few older ones may linger): it is a feed, not the
record. PostgreSQL keeps every event, and republish_events reads them back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Literal, overload

import psycopg
import redis

from service import observability
from service.config import DEFAULT_STREAM_RETENTION
from service.domain.events import render_event
from service.store import deliveries, outbox

log = logging.getLogger(__name__)

STREAM_KEY = "tally:events"
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


@overload
def publish_events(
    conn: psycopg.Connection[Any],
    stream: redis.Redis,
    *,
    limit: int = ...,
    wait: Literal[True] = ...,
    retention: float = ...,
) -> int: ...
@overload
def publish_events(
    conn: psycopg.Connection[Any],
    stream: redis.Redis,
    *,
    limit: int = ...,
    wait: bool,
    retention: float = ...,
) -> int | None: ...
def publish_events(
    conn: psycopg.Connection[Any],
    stream: redis.Redis,
    *,
    limit: int = PUBLISH_BATCH,
    wait: bool = True,
    retention: float = DEFAULT_STREAM_RETENTION,
) -> int | None:
    """Number unpublished events and XADD them to the stream; returns how many.

    One transaction per batch, publishers serialised by an advisory lock so the
    stream keeps the outbox's order. A crash between XADD and COMMIT republishes
    the batch (at least once). Redis errors propagate with nothing marked.
    Entries older than `retention` seconds are trimmed as new ones are added.

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
            positions = outbox.mark_published(conn, [row["id"] for row in rows])
            _xadd(stream, [{**row, "position": positions[row["id"]]} for row in rows], retention)
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
    retention: float = DEFAULT_STREAM_RETENTION,
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
        published = publish_events(conn, stream, wait=False, retention=retention)
        if published is None:
            wake_publisher()
            return
        dispatch_due_deliveries(conn, enqueue)
    except redis.RedisError as exc:
        log.warning("publishing left to the sweeper, redis unavailable: %s", exc)


def republish_events(
    conn: psycopg.Connection[Any],
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
        _xadd(stream, rows, retention)
        count += len(rows)
        first = rows[0]["position"] if first is None else first
        last = rows[-1]["position"]
        position = last + 1
    return count, first, last


def _xadd(stream: redis.Redis, rows: list[dict[str, Any]], retention: float) -> None:
    """One stream entry per row, in order, trimming entries older than `retention`."""
    # Stream entry ids start with their Unix time in milliseconds.
    oldest_kept = f"{int((time.time() - retention) * 1000)}-0"
    pipe = stream.pipeline(transaction=False)
    for row in rows:
        pipe.xadd(
            STREAM_KEY,
            {
                "position": row["position"],
                "id": row["id"],
                "type": row["type"],
                "livemode": "1" if row["livemode"] else "0",
                "created": row["created"],
                "payload": _payload(row),
            },
            minid=oldest_kept,
            approximate=True,
        )
    pipe.execute()


_RAW_DATA = "__tally_raw_event_data__"


def _payload(row: dict[str, Any]) -> str:
    """render_event's JSON, with the stored `data` text spliced in unparsed."""
    text = json.dumps(render_event({**row, "data": _RAW_DATA}), separators=(",", ":"))
    return text.replace(f'"{_RAW_DATA}"', row["data"], 1)


def dispatch_due_deliveries(
    conn: psycopg.Connection[Any],
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
    leased = deliveries.lease_due(conn, batch_size=batch_size, lease_seconds=lease_seconds)
    by_endpoint: dict[str, list[tuple[int, int]]] = {}
    # An UPDATE returns its rows in no set order; a batch goes oldest first.
    for row in sorted(leased, key=lambda r: r["id"]):
        by_endpoint.setdefault(row["endpoint_id"], []).append((row["id"], row["lease"]))
    for batch in by_endpoint.values():
        enqueue(batch)
    return len(leased)
