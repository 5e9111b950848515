"""Celery tasks: each borrows this process's resources and hands them to one operation.

Task functions are named after their task (`inbound.drain` is `inbound_drain`), so
none shadows the operation it calls. The periodic ones run from beat (workers/app.py).
"""

from __future__ import annotations

import time
from typing import Any

import redis
from celery import Task, shared_task
from celery.worker import state as worker_state

from service import queue
from service.db import TRANSIENT_ERRORS
from service.operations.deliver import deliver_leased
from service.operations.drain_inbound import drain_inbound
from service.operations.prune import expire_idempotency_keys, prune_events
from service.operations.publish_events import publish_woken
from service.operations.sweep import check_invariants, redrive, refetch_open_payments
from workers.resources import Opened

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
    res = _resources(self)
    with res.pool.connection() as conn:
        return drain_inbound(
            conn,
            res.redis,
            res.queue,
            retention=res.settings.stream_retention,
            stopping=_stopping,
            max_claims=res.settings.inbound_max_claims,
        ).claimed


@shared_task(bind=True, name=queue.PUBLISH_EVENTS, soft_time_limit=30, time_limit=45, **RETRY)
def events_publish(self: Task) -> int:
    res = _resources(self)
    with res.pool.connection() as conn:
        return publish_woken(conn, res.redis, res.queue, retention=res.settings.stream_retention)


@shared_task(bind=True, name=queue.SEND_DELIVERY, **RETRY)
def deliveries_send(self: Task, leased: list[list[int]] | int, lease: int | None = None) -> str:
    """`leased` is a batch of [delivery id, lease token]; a message queued before
    deliveries were batched carries one delivery id and its lease instead."""
    res = _resources(self)
    s = res.settings
    with res.pool.connection() as conn:
        return deliver_leased(
            conn,
            [(leased, lease)] if isinstance(leased, int) else [(i, t) for i, t in leased],
            res.queue.send_deliveries,
            timeout=s.delivery_timeout,
            schedule=s.delivery_retry_schedule,
            allow_private=s.allow_private_webhook_urls,
            stopping=_stopping,
            kept_alive=res.kept_alive,
        )


@shared_task(bind=True, name=queue.SWEEP, soft_time_limit=60, time_limit=90, **RETRY)
def pipeline_sweep(self: Task) -> None:
    res = _resources(self)
    with res.pool.connection() as conn:
        redrive(
            conn,
            res.redis,
            res.queue,
            grace_seconds=res.settings.inbound_grace_seconds,
            stream_retention=res.settings.stream_retention,
        )


@shared_task(bind=True, name=queue.CHECK_LEDGER, soft_time_limit=60, time_limit=90, **RETRY)
def ledger_check(self: Task) -> int:
    res = _resources(self)
    with res.pool.connection() as conn:
        return check_invariants(conn, res.redis)


@shared_task(
    bind=True, name=queue.REFETCH_OPEN_PAYMENTS, soft_time_limit=60, time_limit=90, **RETRY
)
def payments_refetch(self: Task) -> int:
    res = _resources(self)
    with res.pool.connection() as conn:
        return refetch_open_payments(
            conn,
            res.upstream,
            refetch_after=res.settings.open_payment_refetch_after,
            now=int(time.time()),
            wake_publisher=res.queue.wake_publisher,
        )


@shared_task(bind=True, name=queue.PRUNE_HISTORY, soft_time_limit=50, time_limit=60, **RETRY)
def history_prune(self: Task) -> None:
    res = _resources(self)
    with res.pool.connection() as conn:
        prune_events(conn, res.settings.retention, now=time.time())


@shared_task(
    bind=True, name=queue.EXPIRE_IDEMPOTENCY_KEYS, soft_time_limit=50, time_limit=60, **RETRY
)
def idempotency_expire(self: Task) -> int:
    res = _resources(self)
    with res.pool.connection() as conn:
        return expire_idempotency_keys(conn, res.settings.retention)
