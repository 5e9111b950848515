"""The drain task's loop and its coalesced wake-ups, without a worker process."""

from __future__ import annotations

import dataclasses
import json
import uuid

import psycopg
import redis
from psycopg.rows import dict_row

from service.operations.drain_inbound import drain_inbound
from service.operations.process_inbound import BATCH_SIZE
from service.queue import DRAIN_FLAG, make_task_queue
from service.store import inbound_events


def test_drain_claims_batches_until_one_is_short_and_asks_for_peers(db, service_urls):
    # given two and a half batches of pending events
    ids = [f"evt_drain{uuid.uuid4().hex}" for _ in range(BATCH_SIZE * 5 // 2)]
    for event_id in ids:
        body = {"id": event_id, "object": "event", "type": "customer.created", "data": {}}
        inbound_events.insert_if_new(
            db, event_id=event_id, event_type="customer.created", livemode=False,
            payload=json.dumps(body),
        )  # fmt: skip
    woken, written = [], []

    # when one drain runs
    with psycopg.connect(
        service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row
    ) as conn:
        drained = drain_inbound(
            conn, wake_peer=lambda: woken.append(1), events_written=lambda: written.append(1)
        )

    # then it settled them all, woke a peer after each full batch, and (as nothing
    # here writes events) never woke the publisher
    assert drained.claimed >= len(ids) and drained.batches >= 3
    assert len(woken) == drained.batches - 1
    assert written == []
    statuses = db.execute(
        "SELECT DISTINCT status FROM inbound_events WHERE id = ANY(%s)", (ids,)
    ).fetchall()
    assert [r["status"] for r in statuses] == ["ignored"]


def test_drain_stops_after_max_batches(db, service_urls):
    ids = [f"evt_drain{uuid.uuid4().hex}" for _ in range(BATCH_SIZE * 2)]
    for event_id in ids:
        inbound_events.insert_if_new(
            db, event_id=event_id, event_type="customer.created", livemode=False, payload="{}"
        )
    with psycopg.connect(
        service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row
    ) as conn:
        first = drain_inbound(conn, wake_peer=lambda: None, events_written=lambda: None,
                              max_batches=1)  # fmt: skip
        rest = drain_inbound(conn, wake_peer=lambda: None, events_written=lambda: None)
    assert first.batches == 1 and first.claimed == BATCH_SIZE
    assert rest.claimed >= BATCH_SIZE


def test_wake_ups_coalesce_until_the_task_clears_its_flag(settings, app):
    # given a task queue on the tests' Redis, with no drain task on its way
    client = app.extensions["redis"]
    queue = make_task_queue(settings, client)
    client.delete(DRAIN_FLAG, "inbound")

    # a burst of wake-ups sends one task
    assert [queue.wake_drain() for _ in range(5)] == [True, False, False, False, False]
    assert client.llen("inbound") == 1
    # once the task has cleared the flag (before claiming), the next wake-up sends another
    queue.clear_drain()
    assert queue.wake_drain()
    # and the sweeper's forced wake-up sends one whatever the flag says
    assert queue.wake_drain(force=True)
    assert client.llen("inbound") == 3
    client.delete(DRAIN_FLAG, "inbound")


def test_wake_ups_give_up_quickly_when_redis_is_down(settings, app):
    down = dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0")
    client = redis.Redis.from_url(down.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    queue = make_task_queue(down, client)
    assert queue.wake_drain() is False
    assert queue.wake_publisher() is False  # skipped without trying, for a second
