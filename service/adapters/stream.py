"""The event stream `tally:events` in Redis: one entry per published event.

    position  1, 2, 3, ...: the event's place in publishing order, assigned by
              PostgreSQL with no gaps (store/outbox.py says how), so a consumer that
              sees a jump knows it missed entries and can ask for them again
    id        the evt_ id (consumers dedupe on it: publishing is at least once, and
              `tally events republish` puts events back with their positions)
    type      e.g. invoice.paid
    livemode  "1" or "0"
    created   Unix seconds
    payload   the event as JSON, exactly as GET /v1/events/:id renders it

The stream is trimmed by age (entries older than `retention`, 7 days by default;
approximate trimming, so a few older ones may linger): it is a feed, not the
record. PostgreSQL keeps every event.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from service.domain.events import event_json

STREAM_KEY = "tally:events"


def add_entries(stream: redis.Redis, rows: list[dict[str, Any]], retention: float) -> None:
    """One stream entry per event row (with its `position`), in order, in one round
    trip, trimming entries older than `retention` seconds."""
    # Stream entry ids start with their Unix time in milliseconds.
    oldest_kept = f"{int((time.time() - retention) * 1000)}-0"
    pipe = stream.pipeline(transaction=False)
    for row in rows:
        pipe.xadd(
            STREAM_KEY,
            {
                "position": row["position"],
                "id": row["id"],
                "type": row["type"],
                "livemode": "1" if row["livemode"] else "0",
                "created": row["created"],
                "payload": event_json(row),
            },
            minid=oldest_kept,
            approximate=True,
        )
    pipe.execute()
