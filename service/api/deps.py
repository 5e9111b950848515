"""Request-scoped accessors; the only module that touches flask.g for resources."""

from __future__ import annotations

from typing import Any

import psycopg
import redis
from flask import current_app, g
from psycopg_pool import ConnectionPool

from service.config import Settings
from service.operations.context import Caller
from service.queue import TaskQueue


def settings() -> Settings:
    return current_app.extensions["settings"]  # type: ignore[no-any-return]


def redis_client() -> redis.Redis:
    return current_app.extensions["redis"]  # type: ignore[no-any-return]


def task_queue() -> TaskQueue:
    return current_app.extensions["queue"]  # type: ignore[no-any-return]


def get_conn() -> psycopg.Connection[Any]:
    """A pooled connection borrowed for the rest of the request."""
    conn = g.get("conn")
    if conn is None:
        pool: ConnectionPool = current_app.extensions["pool"]
        conn = g.conn = pool.getconn()
    return conn  # type: ignore[no-any-return]


def release_conn(_exc: BaseException | None = None) -> None:
    conn = g.pop("conn", None)
    if conn is not None:
        current_app.extensions["pool"].putconn(conn)


def caller() -> Caller:
    """Who is calling: their mode, and the request and key that caused changes."""
    return g.caller  # type: ignore[no-any-return]


def note_events_written() -> None:
    """Called (through Caller.on_event) when this request's work wrote events."""
    g.events_written = True


def schedule_publish() -> None:
    """Once the request's work has committed: if it wrote events, wake the publisher,
    so they reach the stream and their receivers as promptly as a webhook's credit
    (not at the next sweep). One Redis SET NX, and only after requests that wrote events.
    """
    if g.pop("events_written", False):
        task_queue().wake_publisher()
