"""make_celery(settings): the Celery app, its configuration and beat schedule.

Read top-down: service/queue.py names the tasks and queues, this module configures
how a worker runs them, workers/resources.py holds what each process opens, and
workers/tasks.py holds the tasks, each delegating to one operation.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import (
    beat_init,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)

from service import queue
from service.config import Settings
from service.observability import redact_values
from service.operations.deliver import longest_batch_seconds
from workers import (
    broker,
    observability,  # noqa: F401  (connects its JSON-log and metric hooks)
)
from workers.resources import ProcessResources

# The periodic jobs' schedules besides the sweep's (Settings.sweep_interval), in seconds.
CHECK_LEDGER_EVERY = 60.0
REFETCH_EVERY = 60.0
PRUNE_EVERY = 60.0
EXPIRE_KEYS_EVERY = 60.0


class TallyCelery(Celery):
    """A Celery app that knows its per-process resources (`self.app.resources` in a task)."""

    resources: ProcessResources


def make_celery(settings: Settings) -> TallyCelery:
    # The worker's and beat's logs, whoever configures them, redact these.
    redact_values(settings.secrets)
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
        beat_schedule=beat_schedule(settings),
    )
    app.resources = ProcessResources(settings, app)

    # A prefork child closes its own pool; the main process (threads, solo) closes its.
    def close(**_: Any) -> None:
        app.resources.close()

    # How many tasks a process runs at once sizes its connection pool. worker_init
    # comes in the main process, before the pool starts (and forks, under prefork);
    # worker_process_init in each prefork child, which runs one task at a time.
    def main_process(sender: Any = None, **_: Any) -> None:
        app.resources.tasks_at_once = tasks_at_once(sender.pool_cls, sender.concurrency)

    def prefork_child(**_: Any) -> None:
        app.resources.tasks_at_once = 1

    # As beat starts, each periodic job runs once, then on its schedule: a fresh
    # schedule would otherwise make the first ledger check wait out its interval after
    # every start, and then check everything since the last one at once, under load.
    def run_each_job_once(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:  # another app's beat (tests make several)
            return
        for entry in app.conf.beat_schedule.values():
            app.send_task(entry["task"], (), **entry["options"])

    beat_init.connect(run_each_job_once, weak=False)
    worker_init.connect(main_process, weak=False)
    worker_process_init.connect(prefork_child, weak=False)
    worker_process_shutdown.connect(close, weak=False)
    worker_shutdown.connect(close, weak=False)
    return app


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """One entry per periodic job (operations/sweep.py, operations/prune.py), each with
    its own schedule; a run not started within its interval is superseded by the next
    (`expires`), so a backlog of them never builds up behind a stopped worker."""

    def every(task: str, seconds: float) -> dict[str, Any]:
        return {"task": task, "schedule": seconds, "options": {"expires": seconds}}

    schedule = {
        # Re-drive whatever is stuck in PostgreSQL: beat's health (`tally sweeper`).
        "sweep": every(queue.SWEEP, settings.sweep_interval),
        "ledger-check": every(queue.CHECK_LEDGER, CHECK_LEDGER_EVERY),
        # History past its retention, a bounded run a minute, and old Idempotency-Keys.
        "prune": every(queue.PRUNE_HISTORY, PRUNE_EVERY),
        "idempotency-expire": every(queue.EXPIRE_IDEMPOTENCY_KEYS, EXPIRE_KEYS_EVERY),
    }
    if settings.stripe_api_key:  # without one there is no upstream to ask
        schedule["refetch"] = every(queue.REFETCH_OPEN_PAYMENTS, REFETCH_EVERY)
    return schedule


def tasks_at_once(pool_cls: Any, concurrency: Any) -> int | None:
    """Tasks one process of this worker runs at a time: `concurrency` under a pool of
    threads or greenlets, one under solo (and in each prefork child). None if unknown
    (`--concurrency auto` is resolved after worker_init)."""
    name = pool_cls if isinstance(pool_cls, str) else getattr(pool_cls, "__module__", "")
    if "solo" in name or "prefork" in name or "processes" in name:
        return 1
    return concurrency if isinstance(concurrency, int) else None
