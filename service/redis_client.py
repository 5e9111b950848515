"""Redis clients, for every process: one place decides how they fail.

Redis carries wake-ups, the rate limit and the event feed, never the record
(PostgreSQL is): when it is down, callers give up at once, back off, and the
sweeper re-drives from PostgreSQL. So a command fails fast, with one immediate
retry on a fresh connection for the stale pooled ones a Redis restart leaves.
redis-py's own default (from 6.0; ten retries, with up to a second between them,
from 8.0) would hold a webhook or an API call for seconds instead.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def connect_redis(url: str, *, timeout: float) -> redis.Redis:
    """A client for `url` whose commands fail within about 2 x `timeout` seconds."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1)
    )
