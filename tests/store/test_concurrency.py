"""Many hands on one invoice at once: row locks, not luck, keep the ledger exact."""

from __future__ import annotations

import requests

from tests import factories
from tests.conftest import TEST_KEY


def _paid_events(db, invoice_id):
    types = factories.invoice_events(db, invoice_id)
    return types.count("invoice_payment.paid"), types.count("invoice.paid")


def test_payment_intents_succeeding_at_once_are_all_credited(api, db, service_urls):
    # given eight open payments that together pay the invoice exactly
    invoice = factories.open_invoice(api, 1000)
    intents = [factories.payment_intent(api, invoice, 125) for _ in range(8)]
    for pi in intents:
        api.post(f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]})

    # when all succeed at the same instant, each on its own connection
    dsn = service_urls["DATABASE_URL"]
    factories.together([lambda pi=pi: factories.settle(dsn, pi) for pi in intents])

    # then no update was lost and the invoice was paid once
    row = db.execute(
        "SELECT status, amount_paid FROM invoices WHERE id = %s", (invoice["id"],)
    ).fetchone()
    assert (row["status"], row["amount_paid"]) == ("paid", 1000)
    assert _paid_events(db, invoice["id"]) == (8, 1)


def test_the_same_success_applied_concurrently_credits_once(api, db, service_urls):
    invoice = factories.open_invoice(api, 1000)
    pi = factories.payment_intent(api, invoice, 1000)
    api.post(f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]})
    dsn = service_urls["DATABASE_URL"]

    factories.together([lambda: factories.settle(dsn, pi)] * 10)

    assert (
        db.execute("SELECT amount_paid FROM invoices WHERE id = %s", (invoice["id"],)).fetchone()[
            "amount_paid"
        ]
        == 1000
    )
    assert _paid_events(db, invoice["id"]) == (1, 1)


def test_concurrent_attaches_never_pass_amount_due(api, db, server, service_urls):
    # given ten already-succeeded PaymentIntents of 300 for an invoice of 1000
    invoice = factories.open_invoice(api, 1000)
    intents = [factories.payment_intent(api, invoice, 300) for _ in range(10)]
    for pi in intents:
        factories.settle(service_urls["DATABASE_URL"], pi)
    session_headers = {"Authorization": f"Bearer {TEST_KEY}"}

    # when all are attached at once over HTTP
    def attach(pi):
        return requests.post(
            f"{server}/v1/invoices/{invoice['id']}/attach_payment",
            data={"payment_intent": pi["id"]},
            headers=session_headers,
            timeout=30,
        )

    responses = factories.together([lambda pi=pi: attach(pi) for pi in intents])

    # then only what fits was credited, and the rest refused by name
    accepted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 400]
    assert len(accepted) == 3
    assert len(refused) == 7
    assert {r.json()["error"]["param"] for r in refused} == {"payment_intent"}
    row = db.execute(
        "SELECT status, amount_paid FROM invoices WHERE id = %s", (invoice["id"],)
    ).fetchone()
    assert (row["status"], row["amount_paid"]) == ("open", 900)


def test_attach_racing_the_success_credits_exactly_once(api, db, server, service_urls):
    dsn = service_urls["DATABASE_URL"]
    for _ in range(5):
        invoice = factories.open_invoice(api, 700)
        pi = factories.payment_intent(api, invoice, 700)

        def attach(invoice=invoice, pi=pi):
            return requests.post(
                f"{server}/v1/invoices/{invoice['id']}/attach_payment",
                data={"payment_intent": pi["id"]},
                headers={"Authorization": f"Bearer {TEST_KEY}"},
                timeout=30,
            ).status_code

        status, _ = factories.together([attach, lambda pi=pi: factories.settle(dsn, pi)])

        assert status == 200
        row = db.execute(
            "SELECT status, amount_paid FROM invoices WHERE id = %s", (invoice["id"],)
        ).fetchone()
        assert (row["status"], row["amount_paid"]) == ("paid", 700)
        assert _paid_events(db, invoice["id"]) == (1, 1)
