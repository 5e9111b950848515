"""make_celery(settings): the Celery app, its configuration and beat schedule.

Read top-down: service/queue.py names the tasks and queues, this module configures
how a worker runs them, workers/resources.py holds what each process opens, and
workers/tasks.py holds the tasks, each delegating to one operation.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_shutdown, worker_shutdown

from service import queue
from service.config import Settings
from service.operations.deliver import longest_batch_seconds
from workers import (
    broker,
    observability,  # noqa: F401  (connects its JSON-log and metric hooks)
)
from workers.resources import ProcessResources


class TallyCelery(Celery):
    """A Celery app that knows its per-process resources (`self.app.resources` in a task)."""

    resources: ProcessResources


def make_celery(settings: Settings) -> TallyCelery:
    app = TallyCelery("tally", set_as_current=True, include=["workers.tasks"])
    queue.configure(app, settings)
    app.conf.update(
        # Ack after the task ran, and redeliver if the process died running it: every
        # task is idempotent, so at-least-once is safe and at-most-once is not.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message at a time per process: a busy process never hoards wake-ups
        # that an idle peer could run.
        worker_prefetch_multiplier=1,
        # Per-task limits are set on each task (workers/tasks.py); this is the ceiling,
        # and the limit of a delivery batch.
        task_soft_time_limit=max(60, int(longest_batch_seconds(settings.delivery_timeout)) + 20),
        task_time_limit=max(90, int(longest_batch_seconds(settings.delivery_timeout)) + 50),
        broker_connection_retry_on_startup=True,
        # Redis going away must never end a worker (DESIGN.md, Failure behaviour): kombu's
        # Redis transport with the guard against its reconnect crash (workers/broker.py).
        broker_transport=broker.TRANSPORT,
        # Celery 5.x gives up re-establishing a lost broker connection after 100 attempts
        # (the default), and the worker exits; None retries for as long as Redis is away,
        # which costs nothing here: the work waits in PostgreSQL.
        broker_connection_max_retries=None,
        # On a lost connection, cancel the acks-late tasks in hand (default False in
        # Celery 5.x, where each reconnect warns that 6.0 makes it True): their ack went
        # with the channel, so Redis hands their message out again (after the
        # visibility timeout) whatever they do; a cancelled batch rolls back, and the
        # sweeper re-drives its work from PostgreSQL. Every task is idempotent, so the
        # work is done once either way. The threads pool cannot cancel a running
        # thread: there the task runs on, and its ack fails (logged).
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep": {
                "task": queue.SWEEP,
                "schedule": settings.sweep_interval,
                # A sweep not started within one interval is superseded by the next.
                "options": {"expires": settings.sweep_interval},
            }
        },
    )
    app.resources = ProcessResources(settings, app)

    # A prefork child closes its own pool; the main process (threads, solo) closes its.
    def close(**_: Any) -> None:
        app.resources.close()

    worker_process_shutdown.connect(close, weak=False)
    worker_shutdown.connect(close, weak=False)
    return app
