"""Batches take their locks in the documented order (payment intent -> invoice), so
overlapping batches and attach_payment calls running at once never deadlock."""

from __future__ import annotations

import json
import random
import threading
import time

import psycopg
import pytest
from psycopg.rows import dict_row

from devtools.stripe_events import stripe_event
from service.operations.process_inbound import process_inbound_batch
from service.store import inbound_events
from tests import factories


@pytest.fixture
def slow_locks(db):
    """Hold each lock a little longer (every invoice update sleeps), so that any
    opposite-order locking meets its deadlock within the test."""
    db.execute(
        """
        CREATE OR REPLACE FUNCTION tally_test_slow_invoice() RETURNS trigger
        LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$;
        CREATE TRIGGER tally_test_slow_invoice BEFORE UPDATE ON invoices
            FOR EACH ROW EXECUTE FUNCTION tally_test_slow_invoice();
        """
    )
    yield
    db.execute("DROP TRIGGER IF EXISTS tally_test_slow_invoice ON invoices")


# Batches of one event lock as they go; larger ones lock up front (batch_locks.py).
@pytest.mark.parametrize("batch", [1, 3])
def test_overlapping_batches_and_attaches_never_deadlock(
    api, db, service_urls, caplog, slow_locks, batch
):
    # given a few invoices each paid by five PaymentIntents, three attached already
    # and two to be attached during the race; and every success event pending,
    # shuffled, as if Stripe sent them: concurrent batches share invoices
    random.seed(7)
    invoices, events, to_attach = [], [], []
    for _ in range(6):
        invoice = factories.open_invoice(api, 1000)
        intents = [factories.payment_intent(api, invoice, 200) for _ in range(5)]
        for pi in intents[:3]:
            response = api.post(
                f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}
            )
            assert response.status_code == 200, response.json
        to_attach += [(invoice, pi) for pi in intents[3:]]
        invoices.append(invoice)
        events += [stripe_event(pi, "payment_intent.succeeded") for pi in intents]
    random.shuffle(events)
    for event in events:
        inbound_events.insert_if_new(
            db,
            event_id=event["id"],
            event_type=event["type"],
            livemode=False,
            payload=json.dumps(event),
        )

    # when four drains claim small batches while the attaches run, all at once
    start = threading.Barrier(4 + len(to_attach))
    attached: list[int] = []

    def drain() -> None:
        with psycopg.connect(
            service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row
        ) as conn:
            start.wait()
            while process_inbound_batch(conn, now=int(time.time()), limit=batch).claimed:
                pass

    def attach(invoice: dict, pi: dict) -> None:
        start.wait()
        path = f"/v1/invoices/{invoice['id']}/attach_payment"
        attached.append(api.post(path, {"payment_intent": pi["id"]}).status_code)

    threads = [threading.Thread(target=drain) for _ in range(4)]
    threads += [threading.Thread(target=attach, args=case) for case in to_attach]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # then nothing deadlocked, no attach failed, and every invoice is paid exactly once
    assert not [r for r in caplog.records if "deadlock" in r.getMessage().lower()]
    assert sorted(set(attached)) == [200] and len(attached) == len(to_attach)
    rows = db.execute(
        "SELECT status, attempts FROM inbound_events WHERE id = ANY(%s)",
        ([e["id"] for e in events],),
    ).fetchall()
    assert {(r["status"], r["attempts"]) for r in rows} == {("processed", 1)}
    for invoice in invoices:
        row = db.execute(
            "SELECT status, amount_paid FROM invoices WHERE id = %s", (invoice["id"],)
        ).fetchone()
        assert (row["status"], row["amount_paid"]) == ("paid", 1000)
        types = factories.invoice_events(db, invoice["id"])
        assert (types.count("invoice_payment.paid"), types.count("invoice.paid")) == (5, 1)
