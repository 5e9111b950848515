"""Request-scoped accessors; the only module that touches flask.g for resources."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from flask import current_app, g
from psycopg_pool import ConnectionPool

from service.adapters.upstream import Upstream
from service.config import Settings
from service.db import Conn
from service.operations.context import Caller
from service.queue import TaskQueue

log = logging.getLogger(__name__)


def settings() -> Settings:
    return current_app.extensions["settings"]


def redis_client() -> redis.Redis:
    return current_app.extensions["redis"]


def upstream() -> Upstream | None:
    """Upstream Stripe, when a key is configured."""
    return current_app.extensions["upstream"]


def pool() -> ConnectionPool:
    return current_app.extensions["pool"]


def task_queue() -> TaskQueue:
    return current_app.extensions["queue"]


def get_conn() -> Conn:
    """A pooled connection borrowed for the rest of the request."""
    conn = g.get("conn")
    if conn is None:
        pool: ConnectionPool = current_app.extensions["pool"]
        conn = g.conn = pool.getconn()
    return conn


def release_conn(_exc: BaseException | None = None) -> None:
    conn = g.pop("conn", None)
    if conn is not None:
        current_app.extensions["pool"].putconn(conn)


def caller() -> Caller:
    """Who is calling: their mode, and the request and key that caused changes."""
    return g.caller


def after_commit(callback: Callable[[], object]) -> None:
    """Call `callback` once the request's changes are committed, never when they are
    rolled back: for nudges (Redis wake-ups) that must not announce a row before it
    is visible. Best effort: a failing callback is logged, and the response stands."""
    g.setdefault("after_commit", []).append(callback)


def run_after_commit() -> None:
    """Run the callbacks of a request whose changes are committed (called by the API's
    after_request, after the idempotent transaction's COMMIT), then wake the publisher
    if the request may have written events."""
    callbacks = g.pop("after_commit", [])
    if g.pop("wake_publisher", False):
        callbacks.append(task_queue().wake_publisher)
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the change is committed: a lost nudge only costs latency
            log.exception("after-commit callback failed in %s", g.get("request_id"))


def wake_publisher_after_commit() -> None:
    """For a request that may write events (a POST or DELETE; reads write none): once
    its changes are committed, wake the publisher (service/wakeups.py), so they reach
    the stream and their receivers as promptly as a webhook's credit, not at the next
    sweep. A request that changed nothing costs one Redis SET NX, and at most an
    `events.publish` that finds nothing, unless its view says it wrote none
    (no_events_written)."""
    g.wake_publisher = True


def no_events_written() -> None:
    """The view's operation reports that it wrote no events: no publisher to wake. An
    attach of a PaymentIntent that has not succeeded writes none, and the wake-up's
    Redis round trip cost about 5% of such an attach's CPU (callgrind)."""
    g.wake_publisher = False
