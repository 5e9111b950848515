"""What one worker process uses: a connection pool, a Redis client, a task queue, the
connections to webhook receivers kept open between batches.

Opened on first use in the process that uses them, never before a fork (psycopg:
a pool must not cross fork()). Under the prefork pool each child opens its own;
under the threads or solo pool the one process shares them between its threads.
The connection pool holds as many connections as the process runs tasks at once,
plus a spare: two in a prefork child or under solo, concurrency + 1 under threads.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

import redis
from celery import Celery
from psycopg_pool import ConnectionPool

from service.adapters import upstream
from service.adapters.http import KeptAlive
from service.adapters.upstream import Upstream
from service.config import Settings
from service.db import make_pool, pool_max_for
from service.queue import TaskQueue
from service.redis_client import connect_redis

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Opened:
    settings: Settings
    pool: ConnectionPool
    redis: redis.Redis
    queue: TaskQueue
    # Upstream Stripe, for the sweeper's re-fetch (None without STRIPE_API_KEY).
    upstream: Upstream | None
    # Receivers' connections left open by one delivery batch for the next.
    kept_alive: KeptAlive
    pid: int


# A process whose Celery pool is unknown (a task called outside a worker): the cap
# every process had before pools followed their process.
UNKNOWN_POOL_MAX = 10


class ProcessResources:
    def __init__(self, settings: Settings, celery: Celery):
        self.settings = settings
        self.celery = celery
        # Tasks this process runs at once, told by the worker's signals (workers/app.py).
        self.tasks_at_once: int | None = None
        self._opened: Opened | None = None
        self._lock = threading.Lock()

    def get(self) -> Opened:
        """This process's resources, opened on first use."""
        opened = self._opened
        if opened is not None and opened.pid == os.getpid():
            return opened
        with self._lock:
            if self._opened is None or self._opened.pid != os.getpid():
                self._opened = self._open()
            return self._opened

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, None
        if opened is not None and opened.pid == os.getpid():
            opened.pool.close(timeout=2)
            opened.redis.close()
            opened.kept_alive.close()

    def _open(self) -> Opened:
        at_once = self.tasks_at_once
        pool_max = self.settings.pool_max_size or (
            pool_max_for(at_once) if at_once else UNKNOWN_POOL_MAX
        )
        pool = make_pool(
            self.settings.database_url, max_size=pool_max, name=f"worker-{os.getpid()}"
        )
        log.info("connection pool opened", extra={"pool_max": pool_max, "tasks_at_once": at_once})
        pool.open(wait=False)
        client = connect_redis(self.settings.redis_url, timeout=2, connect_timeout=1)
        return Opened(
            settings=self.settings,
            pool=pool,
            redis=client,
            queue=TaskQueue(self.celery, client),
            upstream=upstream.from_settings(self.settings),
            kept_alive=KeptAlive(),
            pid=os.getpid(),
        )
