"""Pruning history at scale: bounded batches against dropping time partitions.

    python -m bench.prune [--rows 10000000]

Builds a scratch database (migrated), then, at a small table and again after growing
it to --rows events:
- batches: prune_history's own statement (service/store/history.py), 5,000 events a
  batch, each event with one delivery and one attempt, timed per batch;
- partitions: the same events in a table partitioned by day, and one day dropped.
Prints a table; the question is whose cost grows with the table. Drops the database.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import psycopg
from psycopg.rows import dict_row

from devtools.servers import scratch_database
from service.store import history

DAY = 86_400
PRUNABLE = 100_000  # events past retention, each with a delivery and an attempt
BATCH = 5_000
BATCHES = 10  # per table size


def _fill(conn: psycopg.Connection[Any], first: int, last: int, newest: int, span: int) -> None:
    """Events first..last, created over the `span` seconds up to `newest`, in chunks of
    a million."""
    for start in range(first, last + 1, 1_000_000):
        end = min(start + 999_999, last)
        conn.execute(
            """
            INSERT INTO events (id, livemode, type, api_version, created, data)
            SELECT 'evt_bench' || g, false, 'invoice.paid', '2026-10-28.endive',
                   %(newest)s - (g %% %(span)s), '{"object": {"object": "invoice"}}'
            FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS g
            """,
            {"newest": newest, "span": span, "start": start, "end": end},
        )


def _time_batches(conn: psycopg.Connection[Any], before: int) -> list[float]:
    seconds = []
    for _ in range(BATCHES):
        started = time.perf_counter()
        with conn.transaction():
            pruned = history.prune_events(conn, created_before=before, limit=BATCH)
        seconds.append(time.perf_counter() - started)
        assert pruned.events == BATCH and pruned.attempts == BATCH
    return seconds


def _time_partition_drop(conn: psycopg.Connection[Any], rows: int, now: int) -> float:
    """A copy of `rows` events in daily partitions (40 days); seconds to drop the oldest day."""
    conn.execute("DROP TABLE IF EXISTS events_by_day")
    conn.execute(
        "CREATE TABLE events_by_day (LIKE events INCLUDING DEFAULTS) PARTITION BY RANGE (created)"
    )
    start = now - 40 * DAY
    for day in range(41):
        conn.execute(
            f"CREATE TABLE events_by_day_{day} PARTITION OF events_by_day"
            f" FOR VALUES FROM ({start + day * DAY}) TO ({start + (day + 1) * DAY})"
        )
    conn.execute("CREATE INDEX ON events_by_day (id)")
    conn.execute(
        "INSERT INTO events_by_day (seq, livemode, type, api_version, created, data, id)"
        " SELECT seq, livemode, type, api_version, %(start)s + (seq %% (40 * 86400)), data, id"
        " FROM events ORDER BY seq LIMIT %(rows)s",
        {"start": start, "rows": rows},
    )
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("ALTER TABLE events_by_day DETACH PARTITION events_by_day_0")
        conn.execute("DROP TABLE events_by_day_0")
    seconds = time.perf_counter() - started
    conn.execute("DROP TABLE events_by_day")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.prune", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=1_000_000)
    args = parser.parse_args()
    now = int(time.time())
    before = now - 30 * DAY
    results = []
    with (
        scratch_database("tally_bench_prune") as dsn,
        psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn,
    ):
        conn.execute(
            "INSERT INTO webhook_endpoints (id, livemode, url, secret, enabled_events,"
            " created) VALUES ('we_bench', false, 'https://example.com', 'whsec_x',"
            " '{*}', 0)"
        )
        _fill(conn, 1, PRUNABLE, before - DAY, 10 * DAY)  # past retention
        conn.execute(
            "WITH d AS (INSERT INTO webhook_deliveries (event_id, endpoint_id, status,"
            " attempts) SELECT id, 'we_bench', 'succeeded', 1 FROM events RETURNING id)"
            " INSERT INTO webhook_delivery_attempts (delivery_id, status_code, latency_ms)"
            " SELECT id, 200, 5 FROM d"
        )
        filled = PRUNABLE
        for size in (args.small, args.rows):
            started = time.perf_counter()
            _fill(conn, filled + 1, size, now, 29 * DAY)  # within retention
            filled = size
            conn.execute("VACUUM ANALYZE events")
            fill_seconds = time.perf_counter() - started
            batches = _time_batches(conn, before)
            drop = _time_partition_drop(conn, size, now)
            results.append((size, fill_seconds, batches, drop))
            print(
                f"{size:>12,} events: batch of {BATCH:,} (with deliveries and attempts)"
                f" median {statistics.median(batches) * 1000:.1f} ms,"
                f" max {max(batches) * 1000:.1f} ms; one day's partition dropped in"
                f" {drop * 1000:.1f} ms (filled in {fill_seconds:.0f} s)",
                flush=True,
            )
    print()
    print("| events in the table | batch of 5,000, median | max | per event | drop a day |")
    print("| --- | --- | --- | --- | --- |")
    for size, _, batches, drop in results:
        median = statistics.median(batches)
        print(
            f"| {size:,} | {median * 1000:.1f} ms | {max(batches) * 1000:.1f} ms"
            f" | {median / BATCH * 1e6:.1f} µs | {drop * 1000:.1f} ms |"
        )


if __name__ == "__main__":
    main()
