"""Cheap wake-ups of the inbound consumers: a raw LPUSH on a Redis list.

The list carries no work, only a nudge: the consumers BLPOP it and then claim
whatever is pending in PostgreSQL, so a lost, duplicated or flushed wake-up
costs latency only (the consumers also poll, and the sweeper re-drives).
A full Celery message per webhook would cost more than the rest of the intake.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

log = logging.getLogger(__name__)

WAKE_KEY = "tally:inbound"
# Wake-ups are interchangeable; keep a few so a long outage cannot grow the list.
MAX_PENDING_WAKES = 1000
# After a failure, skip Redis for this long instead of paying a timeout per request.
REDIS_DOWN_BACKOFF = 1.0


class Waker:
    """Pushes wake-ups; remembers for a second that Redis is down. Thread-safe."""

    def __init__(self, client: redis.Redis, key: str = WAKE_KEY):
        self.client = client
        self.key = key
        self._down_until = 0.0
        self._lock = threading.Lock()

    def wake(self, token: str = "") -> bool:
        """Nudge one consumer; False (and nothing raised) when Redis is unavailable."""
        if time.monotonic() < self._down_until:
            return False
        try:
            # One round trip; the trim runs only when no consumer has drained the list
            # for a while (workers down), keeping it bounded.
            if self.client.lpush(self.key, token or "wake") > MAX_PENDING_WAKES:
                self.client.ltrim(self.key, 0, MAX_PENDING_WAKES - 1)
            return True
        except redis.RedisError as exc:
            with self._lock:
                first = time.monotonic() >= self._down_until
                self._down_until = time.monotonic() + REDIS_DOWN_BACKOFF
            if first:
                log.warning("redis unavailable for wake-ups (%s); the sweeper will re-drive", exc)
            return False
