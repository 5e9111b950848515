"""A batch settles every event it took, even one whose row another transaction locks
for a moment between the batch's claim and its row locks (a concurrent claim's scan
does, when its snapshot still saw the event due): skipping it left the event to wait
out its claim's lease (2 s), a stall the steady-rate benchmark showed (issue 21)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from devtools.stripe_events import stripe_event
from service.operations import process_inbound
from service.operations.process_inbound import process_inbound_batch
from service.store import inbound_events
from tests import factories


def test_a_batch_waits_out_a_brief_lock_on_an_event_it_took(
    own_api, own_db, own_database, monkeypatch
):
    # given, in a database of this test's own (the batch takes every pending event), an
    # open invoice with its PaymentIntent attached, and the success pending
    api, db = own_api, own_db
    invoice, pi = factories.attached_invoice(api, 1500)
    event = stripe_event(pi, "payment_intent.succeeded")
    inbound_events.insert_if_new(
        db, event_id=event["id"], event_type=event["type"], livemode=False,
        payload=json.dumps(event),
    )  # fmt: skip

    # when another transaction locks the event's row for 0.2 s just after the batch's
    # claim committed and before the batch locks its rows
    claim_pending = inbound_events.claim_pending

    def claim_while_locked(conn: psycopg.Connection[Any], ids: Sequence[str]) -> Any:
        locked, release = threading.Event(), threading.Event()

        def hold() -> None:
            with psycopg.connect(own_database) as other:
                other.execute("SELECT 1 FROM inbound_events WHERE id = ANY(%s) FOR UPDATE",
                              (list(ids),))  # fmt: skip
                locked.set()
                release.wait(5)
                time.sleep(0.2)

        holder = threading.Thread(target=hold)
        holder.start()
        assert locked.wait(5)
        release.set()
        try:
            return claim_pending(conn, ids)
        finally:
            holder.join(10)

    monkeypatch.setattr(process_inbound.inbound_events, "claim_pending", claim_while_locked)
    with psycopg.connect(own_database, autocommit=True, row_factory=dict_row) as conn:
        result = process_inbound_batch(conn, now=int(time.time()))

    # then the batch credited it: processed once, the invoice paid
    assert (result.claimed, result.processed) == (1, 1)
    row = inbound_events.get(db, event["id"])
    assert (row["status"], row["attempts"]) == ("processed", 1)
    paid = db.execute("SELECT status, amount_paid FROM invoices WHERE id = %s", (invoice["id"],))
    assert tuple(paid.fetchone().values()) == ("paid", 1500)
