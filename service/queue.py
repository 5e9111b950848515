"""Tasks by name, for every process: names, queues, and coalesced wake-ups.

The web process sends tasks through here without importing `workers` (Celery's
`send_task` by name); the workers use the same names, queues and wake-ups.

Queues by latency class: `inbound` (crediting) and `events` (publishing, the
sweeper) are consumed by the `worker` process; `deliveries` (POSTs to other
people's servers, which may take seconds) by the `deliveries` process, so a slow
receiver never delays a credit.

A wake-up is `SET flag NX PX`, and only the caller that set the flag sends the
task, so a burst of wake-ups while a task waits in the queue or runs costs that one
task. The publish task clears its flag *before* it claims work, so work committed
before a wake-up is always seen by a task that starts after it. A drain keeps its
flag while it runs, clears it only when a claim comes back empty, and then claims
once more (operations/drain_inbound.py): same guarantee, and one task serves a
steady stream instead of one per batch. If Redis loses a task, the flag expires
after FLAG_TTL_MS and the next wake-up sends a new one; the sweeper re-drives from
PostgreSQL whatever is left.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from celery import Celery
from kombu import Queue
from kombu.exceptions import KombuError

from service.config import Settings

log = logging.getLogger(__name__)

# Task names: part of the deployed contract between processes; never rename one.
DRAIN_INBOUND = "inbound.drain"
PUBLISH_EVENTS = "events.publish"
SEND_DELIVERY = "deliveries.send"
SWEEP = "pipeline.sweep"
PRUNE_HISTORY = "history.prune"

INBOUND_QUEUE = "inbound"
EVENTS_QUEUE = "events"
DELIVERIES_QUEUE = "deliveries"
ROUTES = {
    DRAIN_INBOUND: {"queue": INBOUND_QUEUE},
    PUBLISH_EVENTS: {"queue": EVENTS_QUEUE},
    SWEEP: {"queue": EVENTS_QUEUE},
    PRUNE_HISTORY: {"queue": EVENTS_QUEUE},
    SEND_DELIVERY: {"queue": DELIVERIES_QUEUE},
}

DRAIN_FLAG = "tally:drain"
# A second drain for a backlog (a peer) or after a drain stopped with work left (its
# successor): at most one such task waits in the queue, whatever the backlog.
MORE_DRAIN_FLAG = "tally:drain:more"
PUBLISH_FLAG = "tally:publish"
# How long a flag stands for its task. Longer than a task normally waits in its
# queue (milliseconds), short enough that a lost task is replaced promptly.
FLAG_TTL_MS = 5000
# After a Redis failure, skip Redis for this long instead of paying a timeout per request.
REDIS_DOWN_BACKOFF = 1.0


def configure(app: Celery, settings: Settings) -> None:
    """What senders and workers must agree on: broker, serialisation, queues, routes."""
    app.conf.update(
        broker_url=settings.redis_url,
        # Arguments are ids and primitives only; JSON keeps pickle out of the broker.
        task_serializer="json",
        accept_content=["json"],
        # Results live in PostgreSQL (inbound_events, webhook_deliveries), not in Celery.
        task_ignore_result=True,
        task_queues=(Queue(INBOUND_QUEUE), Queue(EVENTS_QUEUE), Queue(DELIVERIES_QUEUE)),
        task_default_queue=EVENTS_QUEUE,
        task_routes=ROUTES,
        # Redis redelivers an unacked message after visibility_timeout. It must exceed
        # the longest countdown/ETA we use (none; retries of deliveries are scheduled in
        # PostgreSQL) and the longest task, or a running task would be handed out twice.
        broker_transport_options={"visibility_timeout": 3600},
    )


class TaskQueue:
    """Sends tasks by name and coalesces wake-ups; thread-safe. Never raises for an
    unavailable Redis: the work is in PostgreSQL, and the sweeper re-drives it."""

    def __init__(self, celery: Celery, client: redis.Redis):
        self.celery = celery
        self.client = client
        self._down_until = 0.0
        self._lock = threading.Lock()

    def wake_drain(self, *, force: bool = False) -> bool:
        """Make sure an `inbound.drain` task will start after this call."""
        return self._wake(DRAIN_FLAG, DRAIN_INBOUND, force=force)

    def wake_another_drain(self) -> bool:
        """Make sure one more `inbound.drain` task will start after this call, while
        drains already running keep their flag (a peer, or a successor)."""
        return self._wake(MORE_DRAIN_FLAG, DRAIN_INBOUND, force=False)

    def wake_publisher(self, *, force: bool = False) -> bool:
        """Make sure an `events.publish` task will start after this call."""
        return self._wake(PUBLISH_FLAG, PUBLISH_EVENTS, force=force)

    def clear_drain(self) -> None:
        """Called by a drain about to finish (it claims once more after): later
        wake-ups send a new task."""
        self._clear(DRAIN_FLAG)

    def clear_another_drain(self) -> None:
        """Called by every drain task before it claims: the next peer or successor
        wake-up sends a new task."""
        self._clear(MORE_DRAIN_FLAG)

    def clear_publisher(self) -> None:
        """Called by the publish task before it claims: later wake-ups send a new task."""
        self._clear(PUBLISH_FLAG)

    def send_deliveries(self, leased: list[tuple[int, int]]) -> None:
        """A batch of (delivery id, lease token) to the send task; if this fails, their
        leases run out and the sweeper dispatches them again."""
        self._send(SEND_DELIVERY, ([list(pair) for pair in leased],))

    def _wake(self, flag: str, task: str, *, force: bool) -> bool:
        if time.monotonic() < self._down_until:
            return False
        try:
            if not self.client.set(flag, b"1", nx=not force, px=FLAG_TTL_MS):
                return False  # a task is already on its way
            return self._send(task, ())
        except redis.RedisError as exc:
            self._went_down(exc)
            return False

    def _clear(self, flag: str) -> None:
        # A failure here is harmless: the flag expires, and this task claims anyway.
        try:
            self.client.delete(flag)
        except redis.RedisError as exc:
            log.warning("could not clear %s: %s", flag, exc)

    def _send(self, task: str, args: tuple[Any, ...]) -> bool:
        try:
            self.celery.send_task(task, args, retry=False)
            return True
        except (KombuError, OSError, redis.RedisError) as exc:
            self._went_down(exc)
            return False

    def _went_down(self, exc: BaseException) -> None:
        with self._lock:
            first = time.monotonic() >= self._down_until
            self._down_until = time.monotonic() + REDIS_DOWN_BACKOFF
        if first:
            log.warning("redis unavailable for tasks (%s); the sweeper will re-drive", exc)


def make_task_queue(settings: Settings, client: redis.Redis) -> TaskQueue:
    """A sender for a process that runs no tasks (the web): its own Celery app, which
    gives up at once when Redis is down instead of retrying inside a request."""
    celery = Celery("tally-sender", set_as_current=False)
    configure(celery, settings)
    celery.conf.update(
        task_publish_retry=False,
        broker_connection_retry=False,
        broker_transport_options={
            **celery.conf.broker_transport_options,
            "socket_timeout": 0.5,
            "socket_connect_timeout": 0.5,
        },
    )
    return TaskQueue(celery, client)
