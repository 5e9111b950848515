"""Draining pending inbound events: batch after batch for as long as they keep coming.

Each batch is one transaction (operations/process_inbound.py). A drain holds its
wake-up flag while it runs and lets go of it only when idle (a DrainShift: the
protocol is service/wakeups.py's), so under steady traffic one task runs many
batches instead of paying Celery's dispatch per batch. A full batch means a backlog,
and brings in a helper; one drain runs at most `max_batches` batches that claimed
events, so a task stays short enough for its time limit and a warm shutdown waits for
one batch at most, and a drain that stops with work possibly left sends a successor.

A drain publishes the events its batches committed itself, then dispatches due
deliveries (publish_events.publish_committed): once a batch came back short of full
(the drain has caught up), while full batches keep coming once their events are
PUBLISH_WITHIN old, and before it returns. A publish after every batch made each
batch's events wait for the previous batch's publishing; one publish now serves
several batches.

A drain that has caught up claims at most once every CLAIM_EVERY seconds: a batch
short of full waits out the rest of that interval before the next claim, so events
trickling in are credited, published and delivered a few at a time instead of one
by one. Every batch costs a claim, a transaction, a publish, a dispatch and a
delivery batch whatever its size (about 7 ms of CPU in all, bench.steady measured),
so at a fifth of capacity, batches of one or two spent most of the CPU on that; the
interval costs a webhook at most CLAIM_EVERY of latency, and nothing under a
backlog, where batches are full or take longer than it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis

from service.config import DEFAULT_STREAM_RETENTION
from service.db import Conn
from service.operations.process_inbound import BATCH_SIZE, MAX_CLAIMS, process_inbound_batch
from service.operations.publish_events import EnqueueDeliveries, publish_committed
from service.wakeups import DrainFlags, DrainShift

# 20 batches of 50: about a second of crediting on one core.
MAX_BATCHES = 20
# Seconds committed events may wait for the next batch before a busy drain publishes
# them: a few batches' worth at 200 events/s.
PUBLISH_WITHIN = 0.02
# Seconds from one claim to the next once a batch came back short of full: well inside
# the 100 ms a webhook has to reach its endpoints at a tenth of capacity.
CLAIM_EVERY = 0.025


class DrainTasks(DrainFlags, Protocol):
    """What a drain needs of the task queue (service.queue.TaskQueue)."""

    def send_deliveries(self, leased: list[tuple[int, int]]) -> None: ...


@dataclass(frozen=True, slots=True)
class Drained:
    claimed: int = 0
    processed: int = 0
    batches: int = 0
    # Stopped (max_batches, or a shutdown) before an empty claim after letting go of
    # its flag: it sent a successor.
    unfinished: bool = False


def drain_inbound(
    conn: Conn,
    stream: redis.Redis,
    tasks: DrainTasks,
    *,
    retention: float = DEFAULT_STREAM_RETENTION,
    stopping: Callable[[], bool] = lambda: False,
    max_claims: int = MAX_CLAIMS,
) -> Drained:
    """The `inbound.drain` task: credit what is pending, for as long as events keep
    coming, publishing what it committed to `stream` and handing due deliveries to
    `tasks`. Idempotent and safe to run concurrently (see process_inbound_batch)."""
    tasks.drain_started()
    enqueue: EnqueueDeliveries = tasks.send_deliveries
    return run_drain(
        conn,
        DrainShift(tasks),
        publish=functools.partial(publish_committed, conn, stream, enqueue, retention=retention),
        stopping=stopping,
        max_claims=max_claims,
    )


def run_drain(
    conn: Conn,
    shift: DrainShift,
    *,
    publish: Callable[[], object],
    stopping: Callable[[], bool] = lambda: False,
    max_batches: int = MAX_BATCHES,
    publish_within: float = PUBLISH_WITHIN,
    max_claims: int = MAX_CLAIMS,
    claim_every: float = CLAIM_EVERY,
    sleep: Callable[[float], None] = time.sleep,
) -> Drained:
    """Process due pending inbound events, a batch per transaction, until `shift` says
    to stop, `max_batches` ran, or `stopping()`. After a batch short of full, the next
    claim waits (`sleep`) until `claim_every` seconds after this one's.

    `publish()` once batches changed something, after a batch short of full, or after
    a batch once the oldest of them is `publish_within` seconds old, and before
    returning. A drain that raises leaves what it had not published to the sweeper. An
    event claimed `max_claims` times without settling is quarantined
    (process_inbound_batch).
    """
    claimed = processed = batches = 0
    written_at: float | None = None  # when the oldest unpublished batch committed
    while batches < max_batches and not stopping():
        claimed_at = time.monotonic()
        result = process_inbound_batch(conn, now=int(time.time()), max_claims=max_claims)
        if result.claimed:  # empty claims are few: the shift ends them
            batches += 1
        claimed += result.claimed
        processed += result.processed
        full = result.claimed >= BATCH_SIZE
        if result.processed and written_at is None:
            written_at = time.monotonic()
        if written_at is not None and (not full or time.monotonic() - written_at >= publish_within):
            publish()
            written_at = None
        if not shift.claim_again(result.claimed, full=full):
            return Drained(claimed, processed, batches)
        if result.claimed and not full:
            sleep(max(0.0, claimed_at + claim_every - time.monotonic()))
    if written_at is not None:
        publish()
    shift.stopped_early()
    return Drained(claimed, processed, batches, unfinished=True)
