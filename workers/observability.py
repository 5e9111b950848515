"""JSON logs and Prometheus metrics for the Celery processes, driven only by Celery's
signals, so they hold whatever the tasks are named and wherever they live.

Import this module once from the Celery app module (`from workers import
observability  # noqa: F401`); importing connects the receivers:

- setup_logging: every record is one JSON line (service.observability), in the
  worker's main process, its pool children and beat;
- worker_init, in the main process before the pool forks: the multiprocess
  directory the children write to, cleared; with TALLY_WORKER_METRICS_PORT set,
  the sum of the children's metrics is served there on /metrics;
- task_prerun / task_failure / task_postrun: one log line per task run, with its
  name, id, object ids among its arguments, state, result and duration, and the
  tally_task_duration_seconds histogram. Beat's jobs (the sweep every few seconds)
  succeed at DEBUG, as beat's "Sending due task" does: idle, they would fill the log
  (each logs a line of its own when it found work), and a failure still shows;
- worker_process_shutdown: the child's live gauges are dropped.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from typing import Any

from celery.signals import (
    setup_logging,
    task_failure,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
)
from prometheus_client import REGISTRY, start_http_server

from service import observability

log = logging.getLogger("tally.task")

# task_id -> perf_counter at prerun. Per process; a thread pool runs each task in one thread.
_started: dict[str, float] = {}


class _BeatSendsAtDebug(logging.Filter):
    """Beat's "Scheduler: Sending due task" line, at DEBUG (its other lines as they are)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Scheduler: Sending due task"):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


logging.getLogger("celery.beat").addFilter(_BeatSendsAtDebug())


@setup_logging.connect(weak=False)
def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    observability.configure_logging(loglevel or logging.INFO)


@worker_init.connect(weak=False)
def _worker_init(**_: Any) -> None:
    observability.prepare_multiprocess_dir("worker")
    # Read here rather than in Settings: it concerns this process only, like the
    # PROMETHEUS_MULTIPROC_DIR that prometheus-client itself reads.
    port = os.environ.get("TALLY_WORKER_METRICS_PORT")
    if port:
        registry = observability.multiprocess_registry() or REGISTRY
        # Every interface by default: Prometheus scrapes from another host or container.
        address = os.environ.get("TALLY_WORKER_METRICS_ADDR", "0.0.0.0")  # noqa: S104
        try:
            start_http_server(int(port), addr=address, registry=registry)
        except OSError as exc:
            # A second worker on the same host and port: it still works, unscraped.
            log.warning("worker metrics not served on %s:%s: %s", address, port, exc)


@worker_process_shutdown.connect(weak=False)
def _process_shutdown(pid: int | None = None, **_: Any) -> None:
    observability.mark_process_dead(pid or os.getpid())


@task_prerun.connect(weak=False)
def _task_prerun(task_id: str, task: Any, args: Any = (), kwargs: Any = None, **_: Any) -> None:
    _started[task_id] = time.perf_counter()
    observability.reset_log_context(task=task.name, task_id=task_id, **_ids(task, args, kwargs))


@task_failure.connect(weak=False)
def _task_failure(exception: BaseException | None = None, **_: Any) -> None:
    if exception is not None:
        observability.bind(error=type(exception).__name__)


@task_postrun.connect(weak=False)
def _task_postrun(
    task_id: str, task: Any, retval: Any = None, state: str | None = None, **_: Any
) -> None:
    started = _started.pop(task_id, None)
    duration = time.perf_counter() - started if started is not None else 0.0
    state = state or "UNKNOWN"
    observability.TASK_SECONDS.labels(task.name, state).observe(duration)
    extra: dict[str, Any] = {"state": state, "duration_ms": round(duration * 1000, 2)}
    if isinstance(retval, str | int | float | bool) and state == "SUCCESS":
        extra["outcome"] = retval if isinstance(retval, str) else "ok"
        extra["result"] = retval
    else:
        extra["outcome"] = state.lower()
    level = {"SUCCESS": logging.INFO, "RETRY": logging.WARNING}.get(state, logging.ERROR)
    if level == logging.INFO and task.name in _beat_jobs(task.app):
        level = logging.DEBUG
    log.log(level, "task", extra=extra)
    observability.reset_log_context()


def _beat_jobs(app: Any) -> set[str]:
    """The names of the tasks beat sends on a schedule."""
    return {entry["task"] for entry in (app.conf.beat_schedule or {}).values()}


def _ids(task: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """The task's arguments named like object ids (delivery_id=..., event_id=...)."""
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except (TypeError, ValueError):
        return {}
    return {
        name: value
        for name, value in bound.arguments.items()
        if name.endswith("_id") and isinstance(value, str | int)
    }
