"""The sweeper's housekeeping: idempotency keys are kept 24 hours, then forgotten."""

from __future__ import annotations

import time

import psycopg
import redis
from psycopg.rows import dict_row

from service.operations.sweep import sweep


class NoTasks:
    def wake_drain(self, *, force=False):
        return False

    def wake_publisher(self, *, force=False):
        return False

    def send_deliveries(self, leased):
        pass


def test_sweep_forgets_idempotency_keys_older_than_a_day(service_urls, db):
    # given one key from 25 hours ago and one from now
    db.execute(
        "INSERT INTO idempotency_keys (api_key_hash, key, request_hash, created_at) VALUES"
        " ('sweep-test', 'old', 'h', now() - interval '25 hours'),"
        " ('sweep-test', 'new', 'h', now())"
    )
    client = redis.Redis.from_url(service_urls["REDIS_URL"])
    client.delete("tally:sweep:idempotency")

    # when the sweeper runs
    with psycopg.connect(
        service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row
    ) as conn:
        sweep(
            conn,
            client,
            NoTasks(),
            grace_seconds=60,
            upstream=None,
            refetch_after=3600,
            now=int(time.time()),
        )

    # then only the day-old key is gone
    keys = db.execute(
        "SELECT key FROM idempotency_keys WHERE api_key_hash = 'sweep-test'"
    ).fetchall()
    assert [k["key"] for k in keys] == ["new"]
