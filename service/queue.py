"""Tasks by name, for every process: names, queues, and the sender.

The web process sends tasks through here without importing `workers` (Celery's
`send_task` by name); the workers use the same names and queues. Tasks that do
committed work are woken through service/wakeups.py, which coalesces the wake-ups.

Queues by latency class: `inbound` (crediting) and `events` (publishing, the
periodic jobs) are consumed by the `worker` process; `deliveries` (POSTs to other
people's servers, which may take seconds) by the `deliveries` process, so a slow
receiver never delays a credit.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery
from kombu import Queue
from kombu.exceptions import KombuError

from service.config import Settings
from service.wakeups import Wakeups

# Task names: part of the deployed contract between processes; never rename one.
DRAIN_INBOUND = "inbound.drain"
PUBLISH_EVENTS = "events.publish"
SEND_DELIVERY = "deliveries.send"
# The periodic jobs, each a beat entry of its own (workers/app.py).
SWEEP = "pipeline.sweep"
CHECK_LEDGER = "ledger.check"
REFETCH_OPEN_PAYMENTS = "payments.refetch"
PRUNE_HISTORY = "history.prune"
EXPIRE_IDEMPOTENCY_KEYS = "idempotency.expire"

INBOUND_QUEUE = "inbound"
EVENTS_QUEUE = "events"
DELIVERIES_QUEUE = "deliveries"
ROUTES = {
    DRAIN_INBOUND: {"queue": INBOUND_QUEUE},
    PUBLISH_EVENTS: {"queue": EVENTS_QUEUE},
    SWEEP: {"queue": EVENTS_QUEUE},
    CHECK_LEDGER: {"queue": EVENTS_QUEUE},
    REFETCH_OPEN_PAYMENTS: {"queue": EVENTS_QUEUE},
    PRUNE_HISTORY: {"queue": EVENTS_QUEUE},
    EXPIRE_IDEMPOTENCY_KEYS: {"queue": EVENTS_QUEUE},
    SEND_DELIVERY: {"queue": DELIVERIES_QUEUE},
}


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


class TaskQueue(Wakeups):
    """Wakes the pipeline's tasks (service/wakeups.py) and hands deliveries to theirs;
    thread-safe. Never raises for an unavailable Redis: the work is in PostgreSQL, and
    the sweeper re-drives it."""

    def __init__(self, celery: Celery, client: redis.Redis):
        def send(task: str, args: tuple[Any, ...]) -> None:
            celery.send_task(task, args, retry=False)

        super().__init__(
            client,
            send,
            drain_task=DRAIN_INBOUND,
            publish_task=PUBLISH_EVENTS,
            send_errors=(KombuError,),
        )
        self.celery = celery

    def send_deliveries(self, leased: list[tuple[int, int]]) -> None:
        """A batch of (delivery id, lease token) to the send task; if this fails, their
        leases run out and the sweeper dispatches them again."""
        self.send(SEND_DELIVERY, ([list(pair) for pair in leased],))


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
