"""The customer balance: an immutable ledger of balance transactions that overpayments
credit, finalize applies to the next invoice, and void gives back."""

from __future__ import annotations

import psycopg
import pytest
import stripe

from tests import factories
from tests.conftest import TEST_KEY
from tests.database import fingerprint


def customer_events(db, customer_id: str) -> list[dict]:
    """The events of the customer's changes after its creation."""
    rows = db.execute(
        "SELECT type, data FROM events WHERE data->'object'->>'id' = %s"
        " AND type <> 'customer.created' ORDER BY seq",
        (customer_id,),
    ).fetchall()
    return [{"type": r["type"], **r["data"]} for r in rows]


# --- the ledger through the API -------------------------------------------------------


def test_an_adjustment_credits_the_balance_and_announces_customer_updated(api, db):
    cus = factories.customer(api)

    txn = factories.adjust(api, cus["id"], -500, description="goodwill", **{"metadata[case]": "7"})

    assert txn["id"].startswith("cbtxn_")
    assert {k: v for k, v in txn.items() if k not in ("id", "created")} == {
        "object": "customer_balance_transaction",
        "amount": -500,
        "checkout_session": None,
        "credit_note": None,
        "currency": "usd",
        "customer": cus["id"],
        "customer_account": None,
        "description": "goodwill",
        "ending_balance": -500,
        "invoice": None,
        "livemode": False,
        "metadata": {"case": "7"},
        "type": "adjustment",
    }
    customer = api.get(f"/v1/customers/{cus['id']}").json
    assert (customer["balance"], customer["currency"]) == (-500, "usd")
    [updated] = customer_events(db, cus["id"])
    assert updated["type"] == "customer.updated"
    assert updated["object"]["balance"] == -500
    assert updated["previous_attributes"] == {"balance": 0, "currency": None}


def test_balance_on_create_is_an_initial_transaction(api, db):
    cus = factories.customer(api, balance=-250)

    assert (cus["balance"], cus["currency"]) == (-250, "usd")
    [txn] = factories.balance_ledger(db, cus["id"])
    assert (txn["type"], txn["amount"], txn["ending_balance"]) == ("initial", -250, -250)
    zero = factories.customer(api, balance=0)
    assert (zero["balance"], zero["currency"], factories.balance_ledger(db, zero["id"])) == (
        0,
        None,
        [],
    )


def test_list_is_newest_first_with_cursors_and_transactions_retrieve_and_update(api):
    # given three adjustments
    cus = factories.customer(api)
    ids = [factories.adjust(api, cus["id"], amount)["id"] for amount in (-100, -200, 50)]

    # then the list pages newest first
    first = api.get(factories.balance_url(cus["id"]), {"limit": 2}).json
    assert first["url"] == factories.balance_url(cus["id"])
    assert [t["id"] for t in first["data"]] == ids[::-1][:2]
    assert [t["ending_balance"] for t in first["data"]] == [-250, -300]
    assert first["has_more"] is True
    after = api.get(factories.balance_url(cus["id"]), {"limit": 2, "starting_after": ids[1]}).json
    assert [t["id"] for t in after["data"]] == [ids[0]]
    before = api.get(factories.balance_url(cus["id"]), {"ending_before": ids[0]}).json
    assert [t["id"] for t in before["data"]] == ids[:0:-1]

    # and one retrieves, and updates its notes only
    assert api.get(factories.balance_url(cus["id"], ids[0])).json["amount"] == -100
    updated = api.post(
        factories.balance_url(cus["id"], ids[0]), {"description": "refund", "metadata[a]": "1"}
    ).json
    assert (updated["description"], updated["metadata"], updated["amount"]) == (
        "refund",
        {"a": "1"},
        -100,
    )
    cleared = api.post(
        factories.balance_url(cus["id"], ids[0]), {"description": "", "metadata[a]": ""}
    )
    assert (cleared.json["description"], cleared.json["metadata"]) == (None, {})
    refused = api.post(factories.balance_url(cus["id"], ids[0]), {"amount": 5})
    assert (refused.status_code, refused.json["error"]["param"]) == (400, "amount")
    assert api.get(f"/v1/customers/{cus['id']}").json["balance"] == -250


def test_transactions_are_immutable_and_cannot_be_deleted(api, db):
    cus = factories.customer(api)
    txn = factories.adjust(api, cus["id"], -100)

    # a DELETE is a wrong method on a known path: a 404, as Stripe answers
    response = api.delete(factories.balance_url(cus["id"], txn["id"]))
    assert response.status_code == 404
    assert response.json["error"]["type"] == "invalid_request_error"

    # and the database refuses to change or remove a transaction
    for statement in (
        "UPDATE customer_balance_transactions SET amount = -1 WHERE id = %s",
        "DELETE FROM customer_balance_transactions WHERE id = %s",
    ):
        with pytest.raises(psycopg.errors.RaiseException, match="immutable"):
            db.execute(statement, (txn["id"],))
    assert factories.balance_ledger(db, cus["id"])[0]["amount"] == -100


@pytest.mark.parametrize(
    ("params", "param"),
    [
        pytest.param({"amount": "0", "currency": "usd"}, "amount", id="zero"),
        pytest.param({"currency": "usd"}, "amount", id="missing-amount"),
        pytest.param({"amount": "1.5", "currency": "usd"}, "amount", id="fractional"),
        pytest.param({"amount": "-100000000", "currency": "usd"}, "amount", id="oversized"),
        pytest.param({"amount": "-100"}, "currency", id="missing-currency"),
        pytest.param({"amount": "-100", "currency": "USD"}, "currency", id="upper-case"),
        pytest.param({"amount": "-100", "currency": "xyz"}, "currency", id="not-iso"),
        pytest.param({"amount": "-100", "currency": "usd", "invoice": "in_1"}, "invoice",
                     id="invoice"),
    ],
)  # fmt: skip
def test_bad_transactions_are_refused_by_name_and_write_nothing(api, db, params, param):
    # given a customer whose balance is in usd
    cus = factories.customer(api)
    factories.adjust(api, cus["id"], -100)
    before = fingerprint(db)

    response = api.post(factories.balance_url(cus["id"]), params)

    factories.refused(response, param)
    assert fingerprint(db) == before


def test_unknown_customer_or_transaction_is_404(api, live_api):
    cus = factories.customer(api)
    txn = factories.adjust(api, cus["id"], -100)
    live = factories.customer(live_api)
    for customer_id in ("cus_missing", live["id"]):
        assert (
            api.post(
                factories.balance_url(customer_id), {"amount": 1, "currency": "usd"}
            ).status_code
            == 404
        )
        assert api.get(factories.balance_url(customer_id)).status_code == 404
        assert api.get(factories.balance_url(customer_id, txn["id"])).status_code == 404
        assert (
            api.post(
                factories.balance_url(customer_id, txn["id"]), {"description": "x"}
            ).status_code
            == 404
        )
    other = factories.customer(api)
    for response in (
        api.get(factories.balance_url(cus["id"], "cbtxn_missing")),
        api.post(factories.balance_url(cus["id"], "cbtxn_missing"), {"description": "x"}),
        api.get(factories.balance_url(other["id"], txn["id"])),
    ):
        assert response.status_code == 404
        assert response.json["error"]["code"] == "resource_missing"


def test_list_filters_by_the_customers_invoice_and_refuses_anothers(api, service_urls):
    cus = factories.customer(api)
    paid = factories.overpaid_invoice(api, service_urls["DATABASE_URL"], cus, 1000, 100)
    factories.adjust(api, cus["id"], -5)
    mine = api.get(factories.balance_url(cus["id"]), {"invoice": paid["id"]}).json["data"]
    assert [(t["type"], t["invoice"]) for t in mine] == [("invoice_overpaid", paid["id"])]

    someone_elses = factories.open_invoice(api, 100)
    for invoice_id in (someone_elses["id"], "in_missing"):
        response = api.get(factories.balance_url(cus["id"]), {"invoice": invoice_id})
        assert response.status_code == 400
        assert response.json["error"]["param"] == "invoice"


# --- overpayments, finalize and void ------------------------------------------------------


def test_overpaid_by_300_the_next_invoice_of_1000_is_due_700(api, db, service_urls):
    # given an invoice overpaid by 300
    cus = factories.customer(api)
    first = factories.overpaid_invoice(api, service_urls["DATABASE_URL"], cus, 1000, 300)
    assert (first["status"], first["amount_overpaid"]) == ("paid", 300)

    # then the 300 is the customer's credit, written in the crediting transaction
    assert api.get(f"/v1/customers/{cus['id']}").json["balance"] == -300
    [overpaid] = factories.balance_ledger(db, cus["id"])
    assert (overpaid["type"], overpaid["amount"], overpaid["invoice"]) == (
        "invoice_overpaid",
        -300,
        first["id"],
    )
    # (finalize announced the invoice number it took, the credit its balance)
    announced = [(e["type"], set(e["previous_attributes"])) for e in customer_events(db, cus["id"])]
    assert announced == [
        ("customer.updated", {"next_invoice_sequence"}),
        ("customer.updated", {"balance", "currency"}),
    ]
    assert factories.invoice_events(db, first["id"])[-1] == "invoice.overpaid"

    # when the next invoice of 1000 is drafted, it shows the balance it will start from
    second = factories.draft_invoice(api, 1000, cus=cus)
    assert (second["starting_balance"], second["ending_balance"]) == (-300, None)
    assert second["amount_due"] == 700

    # and when it is finalized, the credit pays 300 of it
    second = factories.finalize(api, second["id"])
    assert (second["amount_due"], second["starting_balance"], second["ending_balance"]) == (
        700,
        -300,
        0,
    )
    assert (second["status"], second["amount_remaining"], second["total"]) == ("open", 700, 1000)
    assert factories.balance_ledger(db, cus["id"])[-1] | {"id": None} == {
        "id": None,
        "type": "applied_to_invoice",
        "amount": 300,
        "currency": "usd",
        "ending_balance": 0,
        "invoice": second["id"],
    }
    customer = api.get(f"/v1/customers/{cus['id']}").json
    assert customer["balance"] == 0
    updated = customer_events(db, cus["id"])[-1]
    assert updated["previous_attributes"] == {"balance": -300, "next_invoice_sequence": 2}
    finalized = factories.events_data(db, "invoice.finalized", second["id"])[0]["object"]
    assert (finalized["amount_due"], finalized["amount_remaining"]) == (700, 700)

    # and a payment of 700 pays it exactly
    pi = factories.payment_intent(api, second, 700)
    api.post(f"/v1/invoices/{second['id']}/attach_payment", {"payment_intent": pi["id"]})
    factories.settle(service_urls["DATABASE_URL"], pi)
    paid = api.get(f"/v1/invoices/{second['id']}").json
    assert (paid["status"], paid["amount_paid"], paid["amount_overpaid"]) == ("paid", 700, 0)
    assert factories.breaches_of(db, cus["id"], first["id"], second["id"]) == []


def test_a_later_credit_on_a_paid_invoice_goes_to_the_balance(api, db, service_urls):
    # given a paid invoice of 1000 with a second payment of 500 still open
    cus = factories.customer(api)
    invoice, extra = factories.paid_with_one_to_come(
        api, service_urls["DATABASE_URL"], cus, 1000, 500
    )
    assert factories.balance_ledger(db, cus["id"]) == []

    # when the second succeeds
    factories.settle(service_urls["DATABASE_URL"], extra)

    # then its 500 is credited to the balance, and the events say so
    assert [(t["type"], t["amount"]) for t in factories.balance_ledger(db, cus["id"])] == [
        ("invoice_overpaid", -500)
    ]
    assert factories.invoice_events(db, invoice["id"])[-2:] == [
        "invoice_payment.paid",
        "invoice.updated",
    ]
    assert customer_events(db, cus["id"])[-1]["previous_attributes"] == {
        "balance": 0,
        "currency": None,
    }
    assert factories.breaches_of(db, cus["id"], invoice["id"]) == []


def test_a_credit_larger_than_the_total_pays_the_invoice_at_finalize(api, db):
    cus = factories.customer(api)
    factories.adjust(api, cus["id"], -1500)

    invoice = factories.finalize(api, factories.draft_invoice(api, 1000, cus=cus)["id"])

    assert (invoice["status"], invoice["amount_due"], invoice["amount_remaining"]) == (
        "paid",
        0,
        0,
    )
    assert (invoice["starting_balance"], invoice["ending_balance"]) == (-1500, -500)
    assert api.get(f"/v1/customers/{cus['id']}").json["balance"] == -500
    assert factories.invoice_events(db, invoice["id"])[-3:] == [
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    assert factories.breaches_of(db, cus["id"], invoice["id"]) == []


def test_a_debit_is_added_to_the_next_invoice(api, db, service_urls):
    cus = factories.customer(api)
    factories.adjust(api, cus["id"], 200)

    invoice = factories.finalize(api, factories.draft_invoice(api, 1000, cus=cus)["id"])

    assert (invoice["amount_due"], invoice["starting_balance"], invoice["ending_balance"]) == (
        1200,
        200,
        0,
    )
    assert [(t["type"], t["amount"]) for t in factories.balance_ledger(db, cus["id"])][-1] == (
        "applied_to_invoice",
        -200,
    )
    pi = factories.payment_intent(api, invoice, 1200)
    attached = api.post(
        f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}
    )
    assert attached.status_code == 200, attached.json
    factories.settle(service_urls["DATABASE_URL"], pi)
    assert api.get(f"/v1/invoices/{invoice['id']}").json["status"] == "paid"
    assert factories.breaches_of(db, cus["id"], invoice["id"]) == []


def test_pay_out_of_band_records_what_remains_of_amount_due(api, db):
    cus = factories.customer(api)
    factories.adjust(api, cus["id"], -300)
    invoice = factories.finalize(api, factories.draft_invoice(api, 1000, cus=cus)["id"])

    paid = api.post(f"/v1/invoices/{invoice['id']}/pay", {"paid_out_of_band": "true"}).json

    assert (paid["status"], paid["amount_paid"], paid["amount_overpaid"]) == ("paid", 700, 0)
    assert api.get(f"/v1/customers/{cus['id']}").json["balance"] == 0
    assert factories.breaches_of(db, cus["id"], invoice["id"]) == []


def test_attach_is_limited_by_amount_due_not_total(api):
    cus = factories.customer(api)
    factories.adjust(api, cus["id"], -300)
    invoice = factories.finalize(api, factories.draft_invoice(api, 1000, cus=cus)["id"])
    pi = factories.payment_intent(api, invoice, 701)

    response = api.post(
        f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}
    )

    assert response.status_code == 400
    assert response.json["error"]["code"] == "amount_too_large"


def test_void_gives_back_what_the_invoice_took_from_the_balance(api, db):
    # given an invoice of 1000 that applied a credit of 300 at finalize
    cus = factories.customer(api)
    factories.adjust(api, cus["id"], -300)
    invoice = factories.finalize(api, factories.draft_invoice(api, 1000, cus=cus)["id"])
    assert api.get(f"/v1/customers/{cus['id']}").json["balance"] == 0

    # when it is voided
    voided = api.post(f"/v1/invoices/{invoice['id']}/void")

    # then the 300 is the customer's again
    assert voided.status_code == 200, voided.json
    assert (voided.json["starting_balance"], voided.json["ending_balance"]) == (-300, 0)
    assert api.get(f"/v1/customers/{cus['id']}").json["balance"] == -300
    assert [
        (t["type"], t["amount"], t["invoice"]) for t in factories.balance_ledger(db, cus["id"])
    ][-2:] == [
        ("applied_to_invoice", 300, invoice["id"]),
        ("unapplied_from_invoice", -300, invoice["id"]),
    ]
    assert factories.invoice_events(db, invoice["id"])[-1] == "invoice.voided"
    assert customer_events(db, cus["id"])[-1]["previous_attributes"] == {"balance": 0}
    assert factories.breaches_of(db, cus["id"], invoice["id"]) == []

    # and an invoice that applied nothing voids without a transaction
    plain = factories.open_invoice(api, 100, currency="eur", cus=cus)
    assert api.post(f"/v1/invoices/{plain['id']}/void").status_code == 200
    assert len(factories.balance_ledger(db, cus["id"])) == 3


def test_the_balance_applies_only_to_invoices_in_its_currency(api, db, service_urls):
    # given a credit of 300 in usd
    cus = factories.customer(api)
    factories.adjust(api, cus["id"], -300)

    # when an invoice in eur is drafted and finalized
    eur = factories.draft_invoice(api, 1000, "eur", cus=cus)
    assert (eur["starting_balance"], eur["amount_due"]) == (0, 1000)
    eur = factories.finalize(api, eur["id"])

    # then it applies none of it
    assert (eur["amount_due"], eur["starting_balance"], eur["ending_balance"]) == (1000, 0, 0)
    assert api.get(f"/v1/customers/{cus['id']}").json["balance"] == -300

    # and an eur overpayment goes to the eur balance, not `balance` (the usd one); the
    # currencies' own rules are in tests/test_balance_currencies.py
    overpaid = factories.overpaid_invoice(api, service_urls["DATABASE_URL"], cus, 500, 100, "eur")
    assert overpaid["amount_overpaid"] == 100
    assert api.get(f"/v1/customers/{cus['id']}").json["balance"] == -300
    assert factories.breaches_of(db, cus["id"], eur["id"], overpaid["id"]) == []


def test_customers_and_transactions_carry_every_field_the_sdks_declare(api):
    from tests.sdk_declarations import always_present

    cus = factories.customer(api, balance=-10)
    txn = api.get(factories.balance_url(cus["id"])).json["data"][0]
    body = api.get(f"/v1/customers/{cus['id']}").json
    for cls, obj in ((stripe.CustomerBalanceTransaction, txn), (stripe.Customer, body)):
        missing = always_present(cls) - set(obj)
        assert not missing, f"{cls.__name__} lacks {sorted(missing)}"


# --- the stripe SDK -----------------------------------------------------------------------


@pytest.fixture
def client(server):
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)


def test_the_stripe_sdk_drives_balance_transactions(client):
    customer = client.v1.customers.create(params={"email": "sdk@example.com", "balance": -100})
    assert (customer.balance, customer.currency) == (-100, "usd")
    transactions = client.v1.customers.balance_transactions

    created = transactions.create(
        customer.id, params={"amount": -400, "currency": "usd", "metadata": {"k": "v"}}
    )
    assert isinstance(created, stripe.CustomerBalanceTransaction)
    assert (created.amount, created.ending_balance, created.type) == (-400, -500, "adjustment")

    listed = transactions.list(customer.id, params={"limit": 1})
    assert [t.id for t in listed.data] == [created.id]
    assert listed.has_more is True
    everything = [t.type for t in listed.auto_paging_iter()]
    assert everything == ["adjustment", "initial"]

    fetched = transactions.retrieve(customer.id, created.id)
    assert fetched.to_dict() == created.to_dict()
    updated = transactions.update(customer.id, created.id, params={"description": "promo"})
    assert (updated.description, updated.amount) == ("promo", -400)
    assert client.v1.customers.retrieve(customer.id).balance == -500

    with pytest.raises(stripe.InvalidRequestError) as caught:
        transactions.create(customer.id, params={"amount": 0, "currency": "usd"})
    assert (caught.value.http_status, caught.value.param) == (400, "amount")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        transactions.retrieve(customer.id, "cbtxn_missing")
    assert caught.value.http_status == 404


def test_the_sweeper_reports_a_balance_that_is_not_its_ledger(api, db):
    cus = factories.customer(api)
    factories.adjust(api, cus["id"], -100)
    assert factories.breaches_while_one_less(db, "customers", "balance", cus["id"]) == [
        "customer_balance_is_sum_of_transactions"
    ]
    assert factories.breaches_of(db, cus["id"]) == []


def test_openapi_lists_the_balance_transaction_routes(app):
    paths = app.test_client().get("/openapi.json").json["paths"]
    assert set(paths["/v1/customers/{customer_id}/balance_transactions"]) == {"get", "post"}
    assert set(paths["/v1/customers/{customer_id}/balance_transactions/{txn_id}"]) == {
        "get",
        "post",
    }
