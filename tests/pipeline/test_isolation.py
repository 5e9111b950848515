"""One dead webhook receiver hurts only itself (issue 20): bench/isolation.py in a short
form, and what one batch in flight per endpoint must not cost a live one."""

# Fixtures come from tests.pipeline_support by import, which ruff reads as redefinitions.

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.config import Settings
from tests import factories
from tests.conftest import ROOT
from tests.pipeline_support import Receiver, WorkerProcess, wait_for, worker_env


@pytest.fixture(scope="module")
def worker(pipeline_settings: Settings) -> Iterator[WorkerProcess]:
    """A worker whose sweeper runs once an hour: only the pipeline's own dispatches move
    deliveries."""
    process = WorkerProcess(worker_env(pipeline_settings, TALLY_SWEEP_INTERVAL="3600"))
    process.start()
    yield process
    process.stop()


def test_what_comes_due_while_an_endpoint_sends_goes_when_its_batch_is_done(
    papi, db, worker, receiver: Receiver
) -> None:
    def events_of(invoice: dict) -> set[str]:
        rows = db.execute(
            "SELECT id FROM events WHERE data->'object'->>'id' = %s", (invoice["id"],)
        ).fetchall()
        return {r["id"] for r in rows}

    # given a receiver that takes half a second per POST, and a batch on its way to it
    receiver.delay = 0.5
    first = factories.open_invoice(papi, 1500)
    wait_for(lambda: receiver.event_ids(), 10, "the first POST of the batch")
    # when more events are published while that batch holds the endpoint (their
    # dispatch passes the busy endpoint by)
    second = factories.open_invoice(papi, 1600)
    # then they are delivered once the batch is done, with no sweep to dispatch them
    expected = events_of(first) | events_of(second)
    wait_for(lambda: expected <= set(receiver.event_ids()), 30, "every event delivered")


@pytest.mark.timeout(200)
def test_a_black_hole_neither_delays_a_healthy_receiver_nor_disables_itself(
    tmp_path: Path,
) -> None:
    # when 60 invoices are finalized at 20/s, each event going to both endpoints, and
    # the run goes on for 25 s once the healthy receiver has them all
    figures = tmp_path / "isolation.json"
    subprocess.run(
        [sys.executable, "bench/isolation.py", "--events", "60", "--rate", "20",
         "--wait", "40", "--linger", "25", "--json", str(figures)],
        cwd=ROOT,
        timeout=180,
        check=True,
    )  # fmt: skip
    result = json.loads(figures.read_text())
    healthy, dead = result["healthy"], result["dead"]
    # then the healthy receiver got every event within 5 s
    assert healthy["received"] == 60, result
    assert healthy["p99_s"] < 5, result
    # and the black hole held one deliveries thread at a time, and is still enabled
    # with nothing failed: its deliveries wait
    assert dead["most_open_at_once"] == 1, result
    assert dead["status"] == "enabled", result
    assert set(dead["deliveries"]) == {"pending"}, result
