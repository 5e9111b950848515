"""A per-API-key request limit kept in Redis: a counter per key and second.

Fail-open: when Redis is unreachable, requests are let through (and that is logged
once per outage) rather than refused, because an invoice service that stops taking
payments when its cache is away does more harm than a briefly unlimited client.
A fixed one-second window costs one round trip (INCR and EXPIRE pipelined).
"""

from __future__ import annotations

import logging
import time

import redis

from service.errors import RateLimited

log = logging.getLogger(__name__)

# After Redis fails, skip the check for this long instead of paying a timeout per request.
REDIS_DOWN_BACKOFF = 1.0


class RateLimiter:
    def __init__(self, client: redis.Redis, per_second: int):
        self.client = client
        self.per_second = per_second
        self._down_until = 0.0

    def check(self, key_hash: str) -> None:
        """Raise RateLimited when this key has used up the current second; 0 disables."""
        if self.per_second <= 0 or time.monotonic() < self._down_until:
            return
        window = int(time.time())
        counter = f"tally:rate:{key_hash}:{window}"
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.incr(counter)
            pipe.expire(counter, 2)
            used, _ = pipe.execute()
        except redis.RedisError as exc:
            if time.monotonic() >= self._down_until:
                log.warning("rate limit not enforced, redis unavailable: %s", exc)
            self._down_until = time.monotonic() + REDIS_DOWN_BACKOFF
            return
        if used > self.per_second:
            raise RateLimited(
                f"Too many requests: this API key is limited to {self.per_second} requests "
                "per second. Retry after the time given in Retry-After.",
                retry_after=1,
            )
