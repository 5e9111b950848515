"""A failing inbound event is retried a bounded number of times, then `failed`, and a
replay after the fix credits it once ("a bug fixed next week must still credit this
week's payments"). The consumer's batch function is called directly, as a worker would."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from devtools.stripe_events import signed_webhook, stripe_event
from service.errors import InvalidRequest
from service.operations.process_inbound import (
    FAILURE_RETRY_DELAYS,
    HANDLERS,
    process_inbound_batch,
)
from service.operations.replay_inbound import replay_inbound
from tests import factories
from tests.conftest import WEBHOOK_SECRET

PAID_ONCE = {"status": "paid", "amount_paid": 1500, "paid_payments": 1}


@pytest.fixture
def conn(service_urls: dict[str, str]) -> Any:
    """The consumer's connection."""
    with psycopg.connect(
        service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row
    ) as connection:
        yield connection


def deliver(api: Any, event: dict[str, Any]) -> None:
    body, headers = signed_webhook(event, WEBHOOK_SECRET)
    assert api.client.post("/webhooks/stripe", data=body, headers=headers).status_code == 200


def inbound(db: Any, event_id: str) -> dict[str, Any]:
    return db.execute(
        """
        SELECT status, attempts, last_error,
               extract(epoch FROM next_attempt_at - now())::float8 AS due_in
        FROM inbound_events WHERE id = %s
        """,
        (event_id,),
    ).fetchone()


def credited(db: Any, invoice_id: str) -> dict[str, Any]:
    return db.execute(
        """
        SELECT i.status, i.amount_paid,
               (SELECT count(*) FROM invoice_payments p
                WHERE p.invoice = i.id AND p.status = 'paid') AS paid_payments
        FROM invoices i WHERE i.id = %s
        """,
        (invoice_id,),
    ).fetchone()


def process_when_due(db: Any, conn: Any, event_id: str) -> None:
    """Let the event's retry delay pass, then run a batch."""
    db.execute("UPDATE inbound_events SET next_attempt_at = now() WHERE id = %s", (event_id,))
    process_inbound_batch(conn, now=int(time.time()), limit=10_000)


def replay_then_process(conn: Any, event_id: str, **options: Any) -> list[tuple[str, str]]:
    """Replay the event, then run the worker's batch: (id, previous status) replayed."""
    replayed = replay_inbound(conn, ids=[event_id], **options)
    process_inbound_batch(conn, now=int(time.time()), limit=10_000)
    return [(r.id, r.previous_status) for r in replayed]


def test_poison_event_fails_after_bounded_retries_and_a_replay_credits_it_once(
    api, db, conn, monkeypatch
):
    # given: an invoice awaiting an attached PaymentIntent, and a crediting handler with
    # a bug that strikes after the credit is made (so its rollback is tested too)
    invoice = factories.open_invoice(api, 1500)
    pi = factories.payment_intent(api, invoice, 1500)
    attach = {"payment_intent": pi["id"]}
    assert api.post(f"/v1/invoices/{invoice['id']}/attach_payment", attach).status_code == 200
    handler = HANDLERS["payment_intent.succeeded"]

    def buggy(conn: Any, event: dict[str, Any], now: int) -> None:
        handler(conn, event, now)
        raise KeyError("amount_details")

    monkeypatch.setitem(HANDLERS, "payment_intent.succeeded", buggy)
    event = stripe_event(pi, "payment_intent.succeeded")
    deliver(api, event)

    # when: it is processed each time it falls due
    seen = []
    for _ in range(len(FAILURE_RETRY_DELAYS) + 1):
        process_when_due(db, conn, event["id"])
        seen.append(inbound(db, event["id"]))

    # then: retried after growing delays, then failed; nothing was credited meanwhile
    assert [row["status"] for row in seen] == ["pending"] * len(FAILURE_RETRY_DELAYS) + ["failed"]
    for row, delay in zip(seen, FAILURE_RETRY_DELAYS, strict=False):
        assert delay - 5 < row["due_in"] <= delay
    assert seen[-1]["attempts"] == len(FAILURE_RETRY_DELAYS) + 1
    assert "amount_details" in seen[-1]["last_error"]
    assert credited(db, invoice["id"]) == {"status": "open", "amount_paid": 0, "paid_payments": 0}

    # when: the bug is fixed, and the event replayed and processed
    monkeypatch.setitem(HANDLERS, "payment_intent.succeeded", handler)
    replayed = replay_then_process(conn, event["id"])

    # then: it was re-queued as failed, and credited once
    paid_once = {"status": "paid", "amount_paid": 1500, "paid_payments": 1}
    assert replayed == [(event["id"], "failed")]
    assert inbound(db, event["id"])["status"] == "processed"
    assert credited(db, invoice["id"]) == paid_once

    # and: replaying it once more (any status) changes nothing
    assert replay_then_process(conn, event["id"], statuses=None) == [(event["id"], "processed")]
    assert inbound(db, event["id"])["status"] == "processed"
    assert credited(db, invoice["id"]) == paid_once
    assert factories.invoice_events(db, invoice["id"]).count("invoice_payment.paid") == 1


def at(year: int) -> datetime:
    return datetime(year, 1, 1, tzinfo=UTC)


def test_replay_by_time_range_takes_failed_events_received_in_it(api, db, conn):
    # given: events received in 2001, 2003 (failed and processed) and 2005
    pi = {"id": "pi_range", "object": "payment_intent", "amount": 1, "currency": "usd"}
    events = {}
    for name, year, status in [("old", 2001, "failed"), ("in", 2003, "failed"),
                               ("done", 2003, "processed"), ("new", 2005, "failed")]:  # fmt: skip
        event = stripe_event(pi, "payment_intent.created", type="charge.refunded")
        deliver(api, event)
        db.execute(
            "UPDATE inbound_events SET status = %s, received_at = %s, attempts = 5 WHERE id = %s",
            (status, at(year), event["id"]),
        )
        events[name] = event["id"]
    # when: failed events received from 2002 until 2004 are replayed, then any status
    failed_only = replay_inbound(conn, received_since=at(2002), received_until=at(2004))
    any_status = replay_inbound(
        conn, received_since=at(2002), received_until=at(2004), statuses=None
    )
    # then: only the failed one in the range, then both in it; each due now, attempts reset
    assert [r.id for r in failed_only] == [events["in"]]
    assert [r.id for r in any_status] == [events["in"], events["done"]]
    for name in ("in", "done"):
        row = inbound(db, events[name])
        assert (row["status"], row["attempts"]) == ("pending", 0)
        assert row["due_in"] <= 0
    assert inbound(db, events["old"])["status"] == "failed"
    assert inbound(db, events["new"])["status"] == "failed"


def test_replay_names_what_to_replay(conn):
    with pytest.raises(InvalidRequest):
        replay_inbound(conn)
    with pytest.raises(InvalidRequest):
        replay_inbound(conn, ids=[])
