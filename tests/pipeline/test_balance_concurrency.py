"""The customer balance under concurrency: row locks in the documented order, not luck,
keep it exact; a success delivered many times credits one overpayment once."""

# Fixtures come from tests.pipeline_support by import, which ruff reads as redefinitions.

from __future__ import annotations

import requests

from devtools.stripe_events import stripe_event
from tests import factories
from tests.conftest import TEST_KEY
from tests.pipeline_support import send_event, wait_for


def finalize_over_http(server, invoice_id):
    return requests.post(
        f"{server}/v1/invoices/{invoice_id}/finalize",
        headers={"Authorization": f"Bearer {TEST_KEY}"},
        timeout=30,
    ).json()


def race_two_finalizes_and_an_overpayment(api, db, server, dsn):
    # given a paid invoice of 1000 whose second payment, of 200, is about to succeed
    cus = factories.customer(api)
    paid, extra = factories.paid_with_one_to_come(api, dsn, cus, 1000, 200)
    # and a credit of 500 and two drafts, of 300 and 400, that would both use it
    factories.adjust(api, cus["id"], -500)
    drafts = [factories.draft_invoice(api, n, cus=cus)["id"] for n in (300, 400)]

    # when both are finalized over HTTP while the 200 is credited to the balance
    first, second, _ = factories.together(
        [
            lambda: finalize_over_http(server, drafts[0]),
            lambda: finalize_over_http(server, drafts[1]),
            lambda: factories.settle(dsn, extra),
        ]
    )

    # then each move is in the ledger once, and each invoice started from the balance
    # the move before it left: they were applied one after the other
    ledger = factories.balance_ledger(db, cus["id"])
    assert sorted((t["type"], t["invoice"] or "") for t in ledger) == sorted(
        [
            ("adjustment", ""),
            ("invoice_overpaid", paid["id"]),
            ("applied_to_invoice", first["id"]),
            ("applied_to_invoice", second["id"]),
        ]
    )
    for invoice in (first, second):
        [at] = [i for i, t in enumerate(ledger) if t["invoice"] == invoice["id"]]
        assert invoice["starting_balance"] == ledger[at - 1]["ending_balance"]
        assert invoice["ending_balance"] == ledger[at]["ending_balance"]
        assert invoice["amount_due"] + invoice["ending_balance"] == (
            invoice["total"] + invoice["starting_balance"]
        )
    # and the balance is exactly the credits less what the invoices took
    took = sum(i["ending_balance"] - i["starting_balance"] for i in (first, second))
    balance = api.get(f"/v1/customers/{cus['id']}").json["balance"]
    assert balance == -500 - 200 + took == ledger[-1]["ending_balance"]
    ids = {cus["id"], paid["id"], first["id"], second["id"]}
    assert factories.breaches_of(db, *ids) == []


def test_two_finalizes_and_an_overpayment_at_once_apply_each_credit_once(
    api, db, server, service_urls
):
    for _ in range(5):
        race_two_finalizes_and_an_overpayment(api, db, server, service_urls["DATABASE_URL"])


def pending(db, event_ids):
    return db.execute(
        "SELECT count(*) AS n FROM inbound_events WHERE id = ANY(%s) AND status = 'pending'",
        (list(event_ids),),
    ).fetchone()["n"]


def test_the_same_overpaying_success_ten_times_is_one_invoice_overpaid(
    papi, db, worker, pipeline_server, service_urls
):
    # given an invoice of 1000 paid, with a second payment of 300 attached while open
    cus = factories.customer(papi)
    invoice, extra = factories.paid_with_one_to_come(
        papi, service_urls["DATABASE_URL"], cus, 1000, 300
    )

    # when Stripe sends the second one's success ten times, seven of them at once, and
    # once more under another event id
    event = stripe_event(extra, "payment_intent.succeeded")
    with requests.Session() as session:
        for _ in range(3):
            assert send_event(pipeline_server, event, session) == 200
    assert factories.together([lambda: send_event(pipeline_server, event)] * 7) == [200] * 7
    again = stripe_event(extra, "payment_intent.succeeded")
    assert send_event(pipeline_server, again) == 200

    # then the overpayment is credited to the balance once
    wait_for(
        lambda: papi.get(f"/v1/customers/{cus['id']}").json["balance"] == -300,
        20,
        "the overpayment in the balance",
    )
    wait_for(lambda: pending(db, [event["id"], again["id"]]) == 0, 20, "both events processed")
    ledger = factories.balance_ledger(db, cus["id"])
    assert [(t["type"], t["amount"], t["invoice"]) for t in ledger] == [
        ("invoice_overpaid", -300, invoice["id"])
    ]
    # one customer.updated for the balance (finalize wrote another, for the sequence)
    updated = db.execute(
        "SELECT count(*) AS n FROM events WHERE type = 'customer.updated'"
        " AND data->'object'->>'id' = %s AND data->'previous_attributes'->'balance' IS NOT NULL",
        (cus["id"],),
    ).fetchone()["n"]
    assert updated == 1
