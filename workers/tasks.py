"""Celery tasks: each borrows this process's resources and delegates to operations.

Task functions are named after their task (`inbound.drain` is `inbound_drain`), so
none shadows the operation it calls.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import redis
from celery import Task, shared_task
from celery.worker import state as worker_state

from service import queue
from service.db import TRANSIENT_ERRORS
from service.operations.deliver import DEFERRED, deliver_batch
from service.operations.drain_inbound import drain_inbound
from service.operations.prune import prune_history
from service.operations.publish_events import (
    dispatch_due_deliveries,
    publish_committed,
    publish_events,
)
from service.operations.sweep import sweep
from workers.resources import Opened

log = logging.getLogger(__name__)

# Transient failures only (h's rule for money: never retry on Exception).
RETRY: dict[str, Any] = {
    "autoretry_for": (*TRANSIENT_ERRORS, redis.RedisError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}


def _resources(task: Task) -> Opened:
    return task.app.resources.get()


def _stopping() -> bool:
    """A warm shutdown has begun in this process (threads, solo): return the batch in hand."""
    return bool(worker_state.should_stop or worker_state.should_terminate)


# A batch takes tens of milliseconds and a drain at most MAX_BATCHES of them; the
# limits catch a hung query (statement_timeout is 15 s) or lock wait.
@shared_task(bind=True, name=queue.DRAIN_INBOUND, soft_time_limit=30, time_limit=45, **RETRY)
def inbound_drain(self: Task) -> int:
    """Credit what is pending, for as long as events keep coming (see drain_inbound)."""
    res = _resources(self)
    res.queue.clear_another_drain()
    with res.pool.connection() as conn:
        drained = drain_inbound(
            conn,
            clear_wake=res.queue.clear_drain,
            wake_peer=res.queue.wake_another_drain,
            events_written=lambda: publish_committed(
                conn,
                res.redis,
                wake_publisher=res.queue.wake_publisher,
                enqueue=res.queue.send_deliveries,
                retention=res.settings.stream_retention,
            ),
            stopping=_stopping,
            max_claims=res.settings.inbound_max_claims,
        )
    if drained.unfinished:
        res.queue.wake_another_drain()  # a successor: this drain's flag is still set
    return drained.claimed


@shared_task(bind=True, name=queue.PUBLISH_EVENTS, soft_time_limit=30, time_limit=45, **RETRY)
def events_publish(self: Task) -> int:
    """Publish unpublished events to the stream, then hand due deliveries to their queue."""
    res = _resources(self)
    res.queue.clear_publisher()
    with res.pool.connection() as conn:
        published = publish_events(conn, res.redis, retention=res.settings.stream_retention)
        dispatch_due_deliveries(conn, res.queue.send_deliveries)
    return published


@shared_task(bind=True, name=queue.SEND_DELIVERY, **RETRY)
def deliveries_send(self: Task, leased: list[list[int]] | int, lease: int | None = None) -> str:
    """Send a batch of [delivery id, lease token] (a message queued before deliveries
    were batched carries one delivery id and its lease instead)."""
    res = _resources(self)
    s = res.settings
    batch = [(leased, lease)] if isinstance(leased, int) else [(i, t) for i, t in leased]
    with res.pool.connection() as conn:
        outcomes = deliver_batch(
            conn,
            batch,
            timeout=s.delivery_timeout,
            schedule=s.delivery_retry_schedule,
            allow_private=s.allow_private_webhook_urls,
            stopping=_stopping,
        )
        # The endpoint is free again: what came due for it meanwhile, or what this batch
        # handed back, goes now (behind the batches already queued), unless it stopped
        # answering; then its deliveries wait for the next publish or sweep, and its
        # circuit.
        if DEFERRED not in outcomes.values():
            dispatch_due_deliveries(conn, res.queue.send_deliveries)
    # The task's log line shows this summary; each delivery has a line of its own.
    counted = Counter(outcomes.values())
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counted.items()))


@shared_task(bind=True, name=queue.PRUNE_HISTORY, soft_time_limit=50, time_limit=60, **RETRY)
def history_prune(self: Task) -> None:
    res = _resources(self)
    with res.pool.connection() as conn:
        report = prune_history(conn, res.settings.retention, now=time.time())
    if report.events or report.inbound_events or report.idempotency_keys:
        log.info("prune: %s", report)


@shared_task(bind=True, name=queue.SWEEP, soft_time_limit=60, time_limit=90, **RETRY)
def pipeline_sweep(self: Task) -> None:
    res = _resources(self)
    s = res.settings
    with res.pool.connection() as conn:
        report = sweep(
            conn,
            res.redis,
            res.queue,
            grace_seconds=s.inbound_grace_seconds,
            upstream=res.upstream,
            refetch_after=s.open_payment_refetch_after,
            now=int(time.time()),
            stream_retention=s.stream_retention,
        )
    if report.stale_inbound or report.published or report.dispatched or report.breaches:
        log.info("sweep: %s", report)
