"""The inbound consumer: a thread in each worker process that BLPOPs the wake list
(service/wake.py) and drains pending inbound events from PostgreSQL in batches,
with a relay thread beside it that publishes what the consumer committed.

Why not a Celery task per event: Celery's per-task overhead caps that design near
900 events/s; one BLPOP per burst and one claim per batch of 50 does not.

- Wake: BLPOP `tally:inbound`; then DEL the list: every event pushed before the
  DEL was committed before its push, so the drain that follows sees it, and any
  later push stays in the list for the next BLPOP. No wake is lost.
- Drain: claim up to 50 due pending rows (FOR UPDATE SKIP LOCKED, by seq),
  process them in one transaction (operations/process_inbound.py), repeat until
  a batch comes back short. A full batch means a backlog: push a wake so a peer
  consumer joins (each joins the next, so all consumers share a backlog).
- Relay: after a batch that changed something, kick the relay thread, which
  publishes the new events to the stream and dispatches due deliveries (off the
  crediting path; a burst of batches coalesces into one relay).
- Poll: BLPOP times out every POLL_SECONDS and the consumer drains anyway, so
  lost wake-ups, retries that came due and a Redis outage cost seconds at most.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg
import redis

from service.operations.process_inbound import BATCH_SIZE, BatchResult, process_inbound_batch
from service.operations.publish_events import (
    EnqueueDelivery,
    dispatch_due_deliveries,
    publish_events,
)
from service.wake import WAKE_KEY, Waker

if TYPE_CHECKING:
    from workers.app import Resources

log = logging.getLogger(__name__)

POLL_SECONDS = 2
MAX_ERROR_BACKOFF = 10.0


def drain(
    conn: psycopg.Connection[Any], *, after_batch: Callable[[BatchResult], None] | None = None
) -> int:
    """Process due pending inbound events until a batch comes back short; returns how many."""
    total = 0
    while True:
        result = process_inbound_batch(conn, now=int(time.time()))
        total += result.claimed
        if after_batch is not None:
            after_batch(result)
        if result.claimed < BATCH_SIZE:
            return total


def relay(conn: psycopg.Connection[Any], client: redis.Redis, enqueue: EnqueueDelivery) -> None:
    """Publish unpublished events and dispatch due deliveries; a Redis outage leaves
    both for the sweeper (nothing is marked published unless XADD succeeded)."""
    try:
        publish_events(conn, client)
        dispatch_due_deliveries(conn, enqueue)
    except redis.RedisError as exc:
        log.warning("relay postponed, redis unavailable: %s", exc)


class _Loop:
    """A daemon thread holding one pooled connection, re-taken after any error."""

    name = "loop"

    def __init__(self, res: Resources):
        self.res = res
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._conn: psycopg.Connection[Any] | None = None

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = POLL_SECONDS + 2) -> None:
        self.stopping.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        errors = 0
        while not self.stopping.is_set():
            try:
                if self._conn is None:
                    self._conn = self.res.pool.getconn()
                self.step(self._conn)
                errors = 0
            except Exception:
                errors += 1
                log.exception("%s error (%d in a row)", self.name, errors)
                if self._conn is not None:
                    self.res.pool.putconn(self._conn)  # the pool drops it if broken
                    self._conn = None
                self.stopping.wait(min(0.5 * 2**errors, MAX_ERROR_BACKOFF))
        if self._conn is not None:
            self.res.pool.putconn(self._conn)

    def step(self, conn: psycopg.Connection[Any]) -> None:
        raise NotImplementedError


class Relayer(_Loop):
    """Publishes and dispatches after the consumer committed something, off its path:
    crediting goes straight back to the next wake-up, and bursts coalesce here."""

    name = "outbox-relay"

    def __init__(self, res: Resources, enqueue: EnqueueDelivery):
        super().__init__(res)
        self.enqueue = enqueue
        self.kicked = threading.Event()

    def kick(self) -> None:
        self.kicked.set()

    def step(self, conn: psycopg.Connection[Any]) -> None:
        if self.kicked.wait(POLL_SECONDS):
            self.kicked.clear()
            relay(conn, self.res.redis, self.enqueue)


class InboundConsumer(_Loop):
    name = "inbound-consumer"

    def __init__(self, res: Resources, relayer: Relayer):
        super().__init__(res)
        self.relayer = relayer
        # BLPOP blocks for POLL_SECONDS; its socket must wait longer than that.
        self.blocking = redis.Redis.from_url(
            res.settings.redis_url, socket_timeout=POLL_SECONDS + 3, socket_connect_timeout=1
        )
        self.waker = Waker(res.redis)

    def step(self, conn: psycopg.Connection[Any]) -> None:
        self._wait()
        drain(conn, after_batch=self._after_batch)

    def _after_batch(self, result: BatchResult) -> None:
        if result.claimed >= BATCH_SIZE:
            self.waker.wake()  # a backlog: invite a peer consumer
        if result.processed:
            self.relayer.kick()

    def _wait(self) -> None:
        try:
            if self.blocking.blpop([WAKE_KEY], timeout=POLL_SECONDS) is not None:
                self.blocking.delete(WAKE_KEY)
        except redis.RedisError as exc:
            # Keep draining by polling while Redis is away.
            log.warning("inbound consumer: redis unavailable (%s); polling", exc)
            self.stopping.wait(POLL_SECONDS)


_threads: list[_Loop] = []


def start_consumer(res: Resources) -> None:
    from workers.tasks import enqueue_delivery

    relayer = Relayer(res, enqueue_delivery)
    _threads[:] = [relayer, InboundConsumer(res, relayer)]
    for thread in _threads:
        thread.start()


def stop_consumer() -> None:
    for thread in _threads:
        thread.stopping.set()
    for thread in _threads:
        thread.stop()
    _threads.clear()
