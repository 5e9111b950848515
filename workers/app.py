"""The Celery app: configuration from Settings, per-process resources, beat schedule.

Each worker process (prefork child) opens its own connection pool after the fork
and runs one inbound consumer thread beside the tasks (see workers/drain.py).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery
from celery.signals import setup_logging, worker_process_init, worker_process_shutdown
from kombu import Queue
from psycopg_pool import ConnectionPool

from service.config import Settings
from service.db import make_pool

log = logging.getLogger(__name__)

settings = Settings.from_env()

app = Celery("tally", broker=settings.redis_url, include=["workers.tasks"])
app.conf.update(
    # Arguments are ids and primitives only; JSON keeps pickle out of the broker.
    task_serializer="json",
    accept_content=["json"],
    # Results live in PostgreSQL (inbound_events, webhook_deliveries), not in Celery.
    task_ignore_result=True,
    # Ack after the task ran, and redeliver if the process died running it: every
    # task is idempotent, so at-least-once is safe and at-most-once is not.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # One message at a time per process: a slow delivery never hoards a backlog.
    worker_prefetch_multiplier=1,
    # A delivery waits at most delivery_timeout on its receiver; anything near a
    # minute is stuck. The soft limit raises inside the task first.
    task_soft_time_limit=max(60, int(settings.delivery_timeout) + 30),
    task_time_limit=max(90, int(settings.delivery_timeout) + 60),
    # Redis redelivers an unacked message after visibility_timeout. It must exceed
    # the longest countdown/ETA we use (none; retries are scheduled in PostgreSQL)
    # and the longest task, or a running task would be handed out twice.
    broker_transport_options={"visibility_timeout": 3600},
    broker_connection_retry_on_startup=True,
    # Deliveries wait on other people's servers; keep them off the queue that
    # drains inbound events. A worker started without -Q consumes both.
    task_default_queue="default",
    task_queues=(Queue("default"), Queue("deliveries")),
    task_routes={"deliveries.send": {"queue": "deliveries"}},
    worker_hijack_root_logger=False,
    beat_schedule={
        "sweep": {
            "task": "pipeline.sweep",
            "schedule": settings.sweep_interval,
            # A sweep not started within one interval is superseded by the next.
            "options": {"expires": settings.sweep_interval},
        }
    },
)


@dataclass
class Resources:
    """What one worker process uses: a pool and a short-timeout Redis client."""

    settings: Settings
    pool: ConnectionPool
    redis: redis.Redis
    pid: int


_resources: Resources | None = None
_resources_lock = threading.Lock()


def resources() -> Resources:
    """This process's resources, opened on first use after the fork (never before it)."""
    global _resources
    with _resources_lock:
        if _resources is None or _resources.pid != os.getpid():
            pool = make_pool(settings.database_url, max_size=4, name=f"worker-{os.getpid()}")
            pool.open(wait=False)
            _resources = Resources(
                settings=settings,
                pool=pool,
                redis=redis.Redis.from_url(
                    settings.redis_url, socket_timeout=2, socket_connect_timeout=1
                ),
                pid=os.getpid(),
            )
        return _resources


@worker_process_init.connect
def _start_process(**_: Any) -> None:
    from workers.drain import start_consumer

    start_consumer(resources())


@worker_process_shutdown.connect
def _stop_process(**_: Any) -> None:
    global _resources
    from workers.drain import stop_consumer

    stop_consumer()
    if _resources is not None and _resources.pid == os.getpid():
        _resources.pool.close(timeout=2)
        _resources = None


@setup_logging.connect
def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    logging.basicConfig(
        level=loglevel or logging.INFO,
        format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s",
    )
