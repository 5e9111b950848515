"""Redis clients, for every process: one place decides how they fail.

Redis carries wake-ups, the rate limit and the event feed, never the record
(PostgreSQL is): when it is down, callers give up at once, back off, and the
sweeper re-drives from PostgreSQL. So a command fails fast, with one immediate
retry on a fresh connection for the stale pooled ones a Redis restart leaves.
redis-py's defaults depend on how a client is built: `Redis.from_url` does not
retry, while `Redis(host=...)` retries ten times with up to a second between tries
(redis-py 8), which held every ping of a stopped Redis for about 4 s.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def connect_redis(url: str, *, timeout: float, connect_timeout: float | None = None) -> redis.Redis:
    """A client for `url`: each attempt waits at most `timeout` seconds for a reply
    (`connect_timeout`, default the same, to connect), and a command makes two."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout if connect_timeout is None else connect_timeout,
        retry=Retry(NoBackoff(), 1),
    )
