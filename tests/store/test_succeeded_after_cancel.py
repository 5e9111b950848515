"""A payment_intent.succeeded for a PaymentIntent Tally shows as canceled: a canceled
PaymentIntent cannot succeed at Stripe, so Tally's cancel never reached Stripe and the
money arrived. Never dropped: the event is kept and says why, the copy shows Stripe's
truth, nothing is credited by itself, and the ledger check reports it to an operator."""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
import redis
from psycopg.rows import dict_row

from devtools.stripe_events import stripe_event
from service.operations.process_inbound import process_inbound_batch
from service.operations.sweep import BREACHES_LAST_KEY, check_invariants
from service.store import inbound_events
from tests import factories
from tests.pipeline_support import send_event
from tests.tally_command import run_tally

CHECK = "canceled_payment_intent_succeeded"


def process_until_settled(dsn: str, event_id: str) -> dict[str, Any]:
    """Process stored inbound events, as a worker would, until `event_id` is settled."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        for _ in range(20):
            process_inbound_batch(conn, now=int(time.time()), limit=10_000)
            stored = inbound_events.get(conn, event_id)
            assert stored is not None
            if stored["status"] != "pending":
                return stored
    raise AssertionError(f"{event_id} was never settled")


def breaches_of(result: Any, pi_id: str) -> list[dict[str, Any]]:
    return [b for b in json.loads(result.stdout) if b["id"] == pi_id]


def test_a_success_for_a_payment_intent_canceled_in_tally_is_kept_and_a_breach(
    own_api, own_db, own_server, own_database, service_urls
):
    # A database of its own: the ledger check counts only this test's breach.
    api, db, server, dsn = own_api, own_db, own_server, own_database
    client = redis.Redis.from_url(service_urls["REDIS_URL"])
    # given an invoice whose PaymentIntent was attached, then canceled in Tally alone
    invoice = factories.open_invoice(api, 1200)
    pi = factories.payment_intent(api, invoice, 1200)
    attach = api.post(f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]})
    assert attach.status_code == 200, attach.json
    canceled = api.post(f"/v1/payment_intents/{pi['id']}/cancel")
    assert canceled.status_code == 200, canceled.json
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        breaches_before = check_invariants(conn, client)

    # when Stripe's signed payment_intent.succeeded for it arrives and is processed
    event = stripe_event(pi, "payment_intent.succeeded")
    assert send_event(server, event) == 200
    settled = process_until_settled(dsn, event["id"])

    # then the event is kept, processed, and says why
    assert settled["status"] == "processed"
    assert settled["outcome"].startswith("breach: succeeded after Tally canceled it")
    listed = run_tally(dsn, "inbound", "list", "--json", "--since", "10m")
    assert [e["outcome"] for e in json.loads(listed.stdout) if e["id"] == event["id"]] == [
        settled["outcome"]
    ]
    # and the copy shows Stripe's truth, remembering the cancel it superseded
    copy = db.execute(
        "SELECT status, canceled_at, superseded_canceled_at FROM payment_intents WHERE id = %s",
        (pi["id"],),
    ).fetchone()
    assert copy["status"] == "succeeded"
    assert copy["canceled_at"] is None
    assert copy["superseded_canceled_at"] == canceled.json["canceled_at"]
    # and nothing was credited by itself: the invoice payment stays canceled, unpaid
    payment = db.execute(
        "SELECT id, status, amount_paid FROM invoice_payments WHERE payment_intent = %s",
        (pi["id"],),
    ).fetchone()
    assert (payment["status"], payment["amount_paid"]) == ("canceled", None)
    after = api.get(f"/v1/invoices/{invoice['id']}").json
    assert (after["status"], after["amount_paid"]) == ("open", 0)
    # and it is a ledger breach: `tally audit` names it, the sweeper's check counts it
    audit = run_tally(dsn, "audit", "--json")
    assert audit.returncode == 1
    [breach] = breaches_of(audit, pi["id"])
    assert breach["check"] == CHECK
    assert (
        f"invoice payment {payment['id']} of invoice {invoice['id']} is canceled"
        in (breach["detail"])
    )
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        assert check_invariants(conn, client) == breaches_before + 1
    assert int(client.get(BREACHES_LAST_KEY) or 0) == breaches_before + 1

    # when the same event is delivered again, and replayed
    again = stripe_event(pi, "payment_intent.succeeded")
    assert send_event(server, again) == 200
    process_until_settled(dsn, again["id"])

    # then nothing more changed: still one breach, nothing credited
    assert breaches_of(run_tally(dsn, "audit", "--json"), pi["id"]) == [breach]
    assert api.get(f"/v1/invoices/{invoice['id']}").json["amount_paid"] == 0


def test_an_unattached_payment_intent_that_succeeded_after_its_cancel_is_a_breach_until_attached(
    own_api, own_server, own_database
):
    api, server, dsn = own_api, own_server, own_database
    # given a PaymentIntent canceled in Tally alone, attached to nothing
    invoice = factories.open_invoice(api, 300)
    pi = factories.payment_intent(api, invoice, 300)
    assert api.post(f"/v1/payment_intents/{pi['id']}/cancel").status_code == 200

    # when its success arrives
    event = stripe_event(pi, "payment_intent.succeeded")
    assert send_event(server, event) == 200
    process_until_settled(dsn, event["id"])

    # then it is a breach, naming that its money is on no invoice
    [breach] = breaches_of(run_tally(dsn, "audit", "--json"), pi["id"])
    assert breach["check"] == CHECK
    assert "attached to no invoice" in breach["detail"]

    # when an operator attaches it to the invoice it paid
    attached = api.post(
        f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}
    )

    # then it is credited like any succeeded PaymentIntent, and the breach is resolved
    assert attached.status_code == 200, attached.json
    assert (attached.json["status"], attached.json["amount_paid"]) == ("paid", 300)
    assert breaches_of(run_tally(dsn, "audit", "--json"), pi["id"]) == []
