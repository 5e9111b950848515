"""A delivery that failed is retried on its schedule under any Celery pool: the sweeper
is the only dispatcher of due retries, so a sweep that is starved, expired or skipped
shows here as a retry that does not come. .ci/run runs this again with
TALLY_TEST_POOL=threads."""

# Fixtures come from tests.pipeline_support by import, which ruff reads as redefinitions.

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from service.config import Settings
from tests import factories
from tests.pipeline_support import Receiver, WorkerProcess, wait_for, worker_env

SCHEDULE = (2, 4, 8)


@pytest.fixture(scope="module")
def worker_process(pipeline_settings: Settings) -> Iterator[WorkerProcess]:
    settings = dataclasses.replace(pipeline_settings, delivery_retry_schedule=SCHEDULE)
    worker = WorkerProcess(worker_env(settings))
    worker.start()
    yield worker
    worker.stop()


@pytest.mark.parametrize("run", range(3))
def test_a_delivery_that_failed_once_is_retried_after_its_first_delay(papi, db, worker, run):
    # given a receiver that answers its first POST of each event with a 500
    receiver = Receiver()
    created = papi.post(
        "/v1/webhook_endpoints", {"url": receiver.url, "enabled_events[]": "invoice.finalized"}
    )
    receiver.secret = created.json["secret"]
    receiver.script = [500]
    try:
        # when an event is delivered to it and fails
        invoice = factories.open_invoice(papi, 900 + run)
        [event] = db.execute(
            "SELECT id FROM events WHERE type = 'invoice.finalized' AND data->'object'->>'id' = %s",
            (invoice["id"],),
        ).fetchall()
        wait_for(lambda: event["id"] in receiver.event_ids(500), 20, "the first attempt")
        # then it is retried after the schedule's first delay (2 s), give or take a
        # sweep interval (1 s here) and a scheduling margin
        wait_for(lambda: event["id"] in receiver.event_ids(200), 8, "the retry")
        first, retry = [r["at"] for r in receiver.received if r["event"]["id"] == event["id"]]
        assert SCHEDULE[0] - 0.1 <= retry - first < SCHEDULE[0] + 4
    finally:
        papi.delete(f"/v1/webhook_endpoints/{created.json['id']}")
        receiver.close()
