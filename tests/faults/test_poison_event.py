"""An inbound event whose handling kills its worker is quarantined after a few claims,
and the rest keep crediting (operations/process_inbound.py, store/inbound_events.py
take_due). A real worker, SIGKILLed by the test each time it is handling that event."""

# Fixtures come from tests.pipeline_support by import, which ruff reads as redefinitions.

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from devtools.stripe_events import stripe_event
from service.config import Settings
from tests import factories
from tests.pipeline_support import WorkerProcess, send_event, wait_for, worker_env
from tests.tally_command import run_tally

MAX_CLAIMS = 2


@pytest.fixture(scope="module")
def worker_process(pipeline_settings: Settings) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(worker_env(pipeline_settings, TALLY_INBOUND_MAX_CLAIMS=str(MAX_CLAIMS)))
    worker.start()
    yield worker
    worker.stop()


def inbound(db, event_id):
    return db.execute(
        "SELECT status, claims, last_error FROM inbound_events WHERE id = %s", (event_id,)
    ).fetchone()


def test_an_event_that_kills_its_worker_is_quarantined_and_the_rest_credit(
    papi, db, worker, pipeline_server, pipeline_settings
):
    # given a PaymentIntent whose handling never finishes: the test holds its row, and
    # kills the worker whenever a worker waits on it (as a crash while handling it would)
    poison_invoice, poison_pi = factories.attached_invoice(papi, 500)
    others = [factories.attached_invoice(papi, 600) for _ in range(3)]
    holder = psycopg.connect(pipeline_settings.database_url)
    holder.execute("SELECT id FROM payment_intents WHERE id = %s FOR UPDATE", (poison_pi["id"],))
    holder_pid = holder.info.backend_pid

    def waiting_on_holder() -> list[int]:
        rows = db.execute(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
            (holder_pid,),
        ).fetchall()
        return [r["pid"] for r in rows]

    # when its success webhook arrives first, together with three others
    poison = stripe_event(poison_pi, "payment_intent.succeeded")
    events = [stripe_event(pi, "payment_intent.succeeded") for _, pi in others]
    for event in [poison, *events]:
        assert send_event(pipeline_server, event) == 200
    others_ids = [e["id"] for e in events]

    def others_settled() -> bool:
        return all(inbound(db, i)["status"] != "pending" for i in others_ids)

    kills = 0
    try:
        while inbound(db, poison["id"])["status"] == "pending":
            assert kills <= MAX_CLAIMS, f"still pending after {kills} kills"
            blocked = wait_for(
                lambda: waiting_on_holder() or inbound(db, poison["id"])["status"] != "pending",
                40,
                "a worker to handle the poison event",
            )
            if blocked is True:
                break  # quarantined without a worker touching it
            # (its batch-mates of the first claim are claimed alone next time)
            if kills:
                wait_for(others_settled, 20, "the other events to settle meanwhile")
            worker.kill()
            kills += 1
            # the dead worker's session waits on the lock; a crash would have ended it
            for pid in waiting_on_holder():
                db.execute("SELECT pg_terminate_backend(%s)", (pid,))
            worker.start()
        wait_for(lambda: inbound(db, poison["id"])["status"] == "failed", 30, "the quarantine")
    finally:
        holder.rollback()
        holder.close()

    # then it is quarantined after MAX_CLAIMS claims that never settled, with the reason
    assert kills == MAX_CLAIMS
    quarantined = inbound(db, poison["id"])
    assert quarantined["status"] == "failed"
    assert quarantined["last_error"].startswith(
        f"quarantined: claimed {MAX_CLAIMS} times without settling"
    )
    # and every other event was credited, once, its invoice paid
    wait_for(others_settled, 30, "the other events to settle")
    for event_id in others_ids:
        assert inbound(db, event_id)["status"] == "processed"
        assert inbound(db, event_id)["claims"] == 0
    for invoice, _ in others:
        row = db.execute(
            "SELECT status, amount_paid FROM invoices WHERE id = %s", (invoice["id"],)
        ).fetchone()
        assert (row["status"], row["amount_paid"]) == ("paid", 600)
    assert (
        db.execute("SELECT status FROM invoices WHERE id = %s", (poison_invoice["id"],)).fetchone()[
            "status"
        ]
        == "open"
    )
    # and the worker keeps crediting what comes next
    invoice, pi = factories.attached_invoice(papi, 700)
    later = stripe_event(pi, "payment_intent.succeeded")
    assert send_event(pipeline_server, later) == 200
    wait_for(lambda: inbound(db, later["id"])["status"] == "processed", 30, "a later event")
    # and the operator sees why in `tally inbound list`
    listed = run_tally(
        pipeline_settings.database_url, "inbound", "list", "--status", "failed", "--json"
    )
    assert listed.returncode == 0, listed.stderr
    [row] = [r for r in json.loads(listed.stdout) if r["id"] == poison["id"]]
    assert row["status"] == "failed"
    assert row["last_error"] == quarantined["last_error"]
