"""The drain task's loop and its coalesced wake-ups, without a worker process."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import uuid

import psycopg
from psycopg.rows import dict_row

from service.operations.drain_inbound import run_drain
from service.operations.process_inbound import BATCH_SIZE
from service.queue import make_task_queue
from service.redis_client import connect_redis
from service.store import inbound_events
from service.wakeups import DRAIN_QUEUED, EXTRA_DRAIN_QUEUED, DrainShift
from tests.pipeline_support import RedisServer


def store_events(db, event_type: str, objects: list[dict]) -> list[str]:
    """One pending inbound event of `event_type` per data object; returns their ids."""
    ids = []
    for obj in objects:
        event_id = f"evt_drain{uuid.uuid4().hex}"
        body = {"id": event_id, "object": "event", "type": event_type, "data": obj}
        inbound_events.insert_if_new(
            db, event_id=event_id, event_type=event_type, livemode=False,
            payload=json.dumps(body),
        )  # fmt: skip
        ids.append(event_id)
    return ids


def store_ignored(db, count: int) -> list[str]:
    """`count` pending events of a type the drain settles as `ignored`."""
    return store_events(db, "customer.created", [{}] * count)


class Flags:
    """A drain's wake-up flags (service.wakeups.DrainFlags), recording what it asked."""

    def __init__(self, letting_go=lambda: None):
        self.asked: list[str] = []
        self._letting_go = letting_go

    def wake_extra_drain(self):
        self.asked.append("extra drain")
        return True

    def drain_started(self):
        self.asked.append("started")

    def drain_letting_go(self):
        self.asked.append("letting go")
        self._letting_go()


def drain(service_urls, flags=None, *, publish=lambda: None, **options):
    with psycopg.connect(
        service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row
    ) as conn:
        return run_drain(conn, DrainShift(flags or Flags()), publish=publish, **options)


def test_drain_claims_until_empty_after_clearing_its_flag_and_asks_one_peer(db, service_urls):
    # given two and a half batches of pending events, and no others (earlier tests
    # sharing the database may have left some)
    drain(service_urls)
    ids = store_ignored(db, BATCH_SIZE * 5 // 2)
    flags, written = Flags(), []

    # when one drain runs
    drained = drain(service_urls, flags, publish=lambda: written.append(1))

    # then it settled them all, asked for one helper at its first full batch, let go of
    # its flag once, when idle, and made one more claim after it; (as nothing here
    # writes events) it never published
    assert drained.claimed >= len(ids) and not drained.unfinished
    assert flags.asked == ["extra drain", "letting go"]
    assert written == []
    statuses = db.execute(
        "SELECT DISTINCT status FROM inbound_events WHERE id = ANY(%s)", (ids,)
    ).fetchall()
    assert [r["status"] for r in statuses] == ["ignored"]


def test_an_event_stored_as_the_flag_is_cleared_is_taken_by_the_last_claim(db, service_urls):
    # given one pending event, and another stored just before the drain clears its flag
    # (a wake-up for it found the flag still set, so it sent no task)
    first = store_ignored(db, 1)
    late: list[str] = []

    # when the drain runs
    flags = Flags(letting_go=lambda: late or late.extend(store_ignored(db, 1)))
    drained = drain(service_urls, flags)

    # then the claim it makes after clearing took the late event: none is left behind
    # (other tests' leftover pending events in the shared database may be claimed too)
    assert drained.claimed >= 2 and not drained.unfinished
    rows = db.execute(
        "SELECT status FROM inbound_events WHERE id = ANY(%s)", (first + late,)
    ).fetchall()
    assert [r["status"] for r in rows] == ["ignored", "ignored"]


def store_processing(db, count: int) -> list[str]:
    """`count` pending payment_intent.processing events, each of a PaymentIntent of its
    own that no invoice names: processed (the mirror is written), nothing credited."""
    pis = [
        {"object": {"id": f"pi_drain{uuid.uuid4().hex}", "object": "payment_intent",
                    "amount": 100, "currency": "usd", "status": "processing"}}
        for _ in range(count)
    ]  # fmt: skip
    return store_events(db, "payment_intent.processing", pis)


def test_a_busy_drain_publishes_once_for_several_batches(db, service_urls):
    # given two and a half batches of events that change something
    drain(service_urls)
    ids = store_processing(db, BATCH_SIZE * 5 // 2)
    written = []

    # when a drain runs them, the batches coming faster than publish_within
    drained = drain(service_urls, publish=lambda: written.append(1), publish_within=60)

    # then it published once, at the first empty claim, for all three batches
    assert drained.processed >= len(ids) and drained.batches >= 3
    assert written == [1]


def test_a_drain_publishes_after_a_batch_once_its_events_are_old_enough(db, service_urls):
    drain(service_urls)
    store_processing(db, BATCH_SIZE * 5 // 2)
    written = []
    drained = drain(service_urls, publish=lambda: written.append(1), publish_within=0)
    # every batch that changed something is published at once
    assert len(written) == drained.batches >= 3


def test_a_drain_that_stops_early_publishes_before_it_returns(db, service_urls):
    drain(service_urls)
    store_processing(db, BATCH_SIZE * 2)
    written = []
    drained = drain(
        service_urls, publish=lambda: written.append(1), publish_within=60, max_batches=1
    )
    assert drained.unfinished and written == [1]
    drain(service_urls)


def test_drain_stops_after_max_batches_and_says_work_may_be_left(db, service_urls):
    store_ignored(db, BATCH_SIZE * 2)
    flags = Flags()
    first = drain(service_urls, flags, max_batches=1)
    rest = drain(service_urls)
    # and, being unfinished, it asked for a successor
    assert (first.batches, first.claimed, first.unfinished) == (1, BATCH_SIZE, True)
    assert flags.asked.count("extra drain") == 2
    assert rest.claimed >= BATCH_SIZE and not rest.unfinished


def test_a_stopping_worker_returns_before_the_next_batch(db, service_urls):
    store_ignored(db, BATCH_SIZE * 2)
    calls = []

    def stopping() -> bool:
        calls.append(1)
        return len(calls) > 1  # a warm shutdown begins during the first batch

    drained = drain(service_urls, stopping=stopping)
    assert (drained.batches, drained.claimed, drained.unfinished) == (1, BATCH_SIZE, True)


def test_wake_ups_coalesce_until_the_task_clears_its_flag(settings, app):
    # given a task queue on the tests' Redis, with no drain task on its way
    client = app.extensions["redis"]
    queue = make_task_queue(settings, client)
    client.delete(DRAIN_QUEUED, "inbound")

    # a burst of wake-ups sends one task
    assert [queue.wake_drain() for _ in range(5)] == [True, False, False, False, False]
    assert client.llen("inbound") == 1
    # once the task has cleared the flag, the next wake-up sends another
    queue.drain_letting_go()
    assert queue.wake_drain()
    # and the sweeper's forced wake-up sends one whatever the flag says
    assert queue.wake_drain(force=True)
    assert client.llen("inbound") == 3
    client.delete(DRAIN_QUEUED, "inbound")


def test_peers_and_successors_coalesce_while_a_drain_holds_its_flag(settings, app):
    # given a running drain (its flag is set) and no other drain task on its way
    client = app.extensions["redis"]
    queue = make_task_queue(settings, client)
    client.delete(EXTRA_DRAIN_QUEUED, "inbound")
    client.set(DRAIN_QUEUED, b"1", px=5000)

    # a webhook's wake-up sends nothing, and of a burst of peer and successor
    # wake-ups (a long backlog) only the first sends a task
    assert queue.wake_drain() is False
    assert [queue.wake_extra_drain() for _ in range(4)] == [True, False, False, False]
    assert client.llen("inbound") == 1
    # once that task starts (it clears its flag before claiming), the next one is sent
    queue.drain_started()
    assert queue.wake_extra_drain()
    assert client.llen("inbound") == 2
    client.delete(DRAIN_QUEUED, EXTRA_DRAIN_QUEUED, "inbound")


def test_wake_ups_give_up_quickly_when_redis_is_down(settings, app):
    down = dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0")
    queue = make_task_queue(down, connect_redis(down.redis_url, timeout=0.5))
    assert queue.wake_drain() is False
    assert queue.wake_publisher() is False  # skipped without trying, for a second


def test_after_a_redis_restart_the_first_wake_up_goes_through(settings, app):
    # given a task queue whose Redis connection is open
    server = RedisServer()
    server.start()
    try:
        url = server.url
        queue = make_task_queue(
            dataclasses.replace(settings, redis_url=url), connect_redis(url, timeout=1)
        )
        assert queue.wake_drain() is True

        # when Redis restarts (its flag gone with its data, the pooled connection stale)
        server.stop()
        server.start()

        # then the next wake-up sets the flag and sends its task on a fresh connection
        # rather than failing and leaving the webhook to the sweeper
        assert queue.wake_drain() is True
        assert connect_redis(url, timeout=1).llen("inbound") == 1
    finally:
        server.stop()


def test_a_redis_that_drops_every_connection_is_tried_twice_then_given_up(settings, app):
    # given a "Redis" on loopback that accepts each connection and closes it at once
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def drop_all() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            accepted.append(1)
            connection.close()

    threading.Thread(target=drop_all, daemon=True).start()
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    queue = make_task_queue(
        dataclasses.replace(settings, redis_url=url), connect_redis(url, timeout=1)
    )

    # when a wake-up is attempted
    woke = queue.wake_drain()
    listener.close()

    # then it gave up after one retry on a fresh connection: no retry loop holds the
    # caller (a webhook, an API call) while Redis misbehaves
    assert woke is False
    assert len(accepted) == 2


def test_a_drain_that_caught_up_waits_out_its_claim_interval_and_claims_what_came_meanwhile(
    db, service_urls
):
    # given three pending events, and five more that arrive while the drain waits
    drain(service_urls)
    store_ignored(db, 3)
    waits: list[float] = []
    late: list[str] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if not late:
            late.extend(store_ignored(db, 5))

    # when a drain runs with a claim interval of half a second
    drained = drain(service_urls, claim_every=0.5, sleep=sleep)

    # then after its first batch, short of full, it waited out the rest of the interval
    # (not the whole of it: the batch took some), and took the five in one batch
    assert 0 < waits[0] < 0.5
    assert (drained.batches, drained.claimed) == (2, 8)
    assert [r["status"] for r in db.execute(
        "SELECT status FROM inbound_events WHERE id = ANY(%s)", (late,)
    ).fetchall()] == ["ignored"] * 5  # fmt: skip


def test_a_drain_with_a_backlog_claims_full_batches_back_to_back(db, service_urls):
    drain(service_urls)
    store_ignored(db, BATCH_SIZE * 5 // 2)
    waits: list[float] = []
    drained = drain(service_urls, claim_every=0.5, sleep=waits.append)
    # two full batches went without a wait; the third, short of full, waited once
    assert drained.batches == 3 and len(waits) == 1
