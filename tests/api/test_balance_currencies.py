"""The customer balance holds every currency (Stripe's `invoice_credit_balance`, one
balance per currency); `balance` is the one in the customer's default currency, set by
its first balance transaction. Every overpaid cent, in any currency, is credited to its
currency's balance, and an invoice takes only its own currency's."""

from __future__ import annotations

import pytest
import stripe

from service.migrate import migrate
from service.store import reconciliation
from tests import factories
from tests.conftest import TEST_KEY
from tests.database import connected_before, fingerprint


@pytest.fixture
def client(server):
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)


def credit_balance(api, customer_id: str) -> dict[str, int]:
    response = api.get(f"/v1/customers/{customer_id}", {"expand[]": "invoice_credit_balance"})
    assert response.status_code == 200, response.json
    return response.json["invoice_credit_balance"]  # type: ignore[no-any-return]


def customer_updates(db, customer_id: str) -> list[dict]:
    return factories.events_data(db, "customer.updated", customer_id)


def test_a_balance_transaction_in_any_currency_is_accepted(client, db):
    # given a customer whose balance is in usd
    customer = client.v1.customers.create(params={"email": "multi@example.com"})
    transactions = client.v1.customers.balance_transactions
    transactions.create(customer.id, params={"amount": -500, "currency": "usd"})

    # when it is credited in eur and debited in gbp
    eur = transactions.create(customer.id, params={"amount": -200, "currency": "eur"})
    gbp = transactions.create(customer.id, params={"amount": 75, "currency": "gbp"})

    # then each currency has its own balance; `balance` stays the usd one
    assert (eur.currency, eur.amount, eur.ending_balance) == ("eur", -200, -200)
    assert (gbp.currency, gbp.ending_balance) == ("gbp", 75)
    plain = client.v1.customers.retrieve(customer.id)
    assert (plain.balance, plain.currency) == (-500, "usd")
    assert "invoice_credit_balance" not in plain
    expanded = client.v1.customers.retrieve(
        customer.id, params={"expand": ["invoice_credit_balance"]}
    )
    assert expanded.invoice_credit_balance.to_dict() == {"usd": -500, "eur": -200, "gbp": 75}
    assert expanded.balance == -500
    assert factories.breaches_of(db, customer.id) == []


def test_a_customer_without_transactions_has_no_credit_balances(api):
    cus = factories.customer(api)

    assert credit_balance(api, cus["id"]) == {}
    listed = api.get("/v1/customers", {"expand[]": "data.invoice_credit_balance"}).json
    assert {c["id"]: c["invoice_credit_balance"] for c in listed["data"]}[cus["id"]] == {}


def test_an_overpayment_in_a_second_currency_credits_that_currency(api, db, service_urls):
    # given a customer whose balance is in usd
    cus = factories.customer(api)
    factories.adjust(api, cus["id"], -300)

    # when an eur invoice of 500 is paid 600
    overpaid = factories.overpaid_invoice(api, service_urls["DATABASE_URL"], cus, 500, 100, "eur")

    # then the 100 overpaid is the customer's eur credit, in the ledger once
    assert overpaid["amount_overpaid"] == 100
    eur = [t for t in factories.balance_ledger(db, cus["id"]) if t["currency"] == "eur"]
    assert [(t["type"], t["amount"], t["ending_balance"], t["invoice"]) for t in eur] == [
        ("invoice_overpaid", -100, -100, overpaid["id"])
    ]
    assert credit_balance(api, cus["id"]) == {"usd": -300, "eur": -100}
    assert api.get(f"/v1/customers/{cus['id']}").json["balance"] == -300
    assert factories.breaches_of(db, cus["id"], overpaid["id"]) == []

    # and the next eur invoice is paid down by it
    following = factories.open_invoice(api, 1000, "eur", cus=cus)
    assert (following["starting_balance"], following["amount_due"]) == (-100, 900)
    assert credit_balance(api, cus["id"]) == {"usd": -300, "eur": 0}


def test_finalize_applies_the_balance_of_the_invoices_currency_only(api, db):
    # given credits of 300 usd and 200 eur
    cus = factories.customer(api, balance=-300)
    factories.adjust(api, cus["id"], -200, "eur")

    # when an eur invoice is drafted and finalized
    draft = factories.draft_invoice(api, 1000, "eur", cus=cus)
    assert (draft["starting_balance"], draft["amount_due"]) == (-200, 800)
    eur = factories.finalize(api, draft["id"])

    # then it took the eur credit, and the usd one is untouched
    assert (eur["starting_balance"], eur["ending_balance"], eur["amount_due"]) == (-200, 0, 800)
    assert credit_balance(api, cus["id"]) == {"usd": -300, "eur": 0}

    # and a usd invoice of 100 takes 100 of the usd credit
    usd = factories.open_invoice(api, 100, "usd", cus=cus)
    assert (usd["starting_balance"], usd["ending_balance"], usd["status"]) == (-300, -200, "paid")
    assert credit_balance(api, cus["id"]) == {"usd": -200, "eur": 0}
    assert factories.breaches_of(db, cus["id"], eur["id"], usd["id"]) == []

    # and voiding the eur invoice gives its credit back to the eur balance
    assert api.post(f"/v1/invoices/{eur['id']}/void").status_code == 200
    assert credit_balance(api, cus["id"]) == {"usd": -200, "eur": -200}
    assert factories.breaches_of(db, cus["id"], eur["id"]) == []


def test_a_negative_invoice_in_another_currency_credits_that_currency(api, db):
    cus = factories.customer(api, balance=-50)

    invoice = factories.open_invoice(api, -400, "eur", cus=cus)

    assert (invoice["status"], invoice["amount_due"], invoice["ending_balance"]) == (
        "paid",
        0,
        -400,
    )
    assert credit_balance(api, cus["id"]) == {"usd": -50, "eur": -400}
    assert factories.breaches_of(db, cus["id"], invoice["id"]) == []


def test_customer_updated_names_the_balance_that_moved(api, db):
    cus = factories.customer(api)

    factories.adjust(api, cus["id"], -500)  # sets the default currency
    factories.adjust(api, cus["id"], -200, "eur")
    factories.adjust(api, cus["id"], 50, "eur")

    first, second, third = customer_updates(db, cus["id"])
    # the default currency's balance is `balance`
    assert first["previous_attributes"] == {"balance": 0, "currency": None}
    assert first["object"]["balance"] == -500
    assert "invoice_credit_balance" not in first["object"]
    # another currency's shows only in invoice_credit_balance, so that is what changed
    assert second["previous_attributes"] == {"invoice_credit_balance": {"eur": 0}}
    assert second["object"]["balance"] == -500
    assert second["object"]["invoice_credit_balance"] == {"usd": -500, "eur": -200}
    assert third["previous_attributes"] == {"invoice_credit_balance": {"eur": -200}}
    assert third["object"]["invoice_credit_balance"] == {"usd": -500, "eur": -150}


def test_the_sweeper_reports_a_currency_balance_that_is_not_its_ledger(api, db):
    cus = factories.customer(api, balance=-100)
    factories.adjust(api, cus["id"], -40, "eur")
    assert factories.breaches_of(db, cus["id"]) == []

    db.execute(
        "UPDATE customer_balances SET balance = balance - 1"
        " WHERE customer = %s AND currency = 'eur'",
        (cus["id"],),
    )
    try:
        assert [b["check"] for b in factories.breaches_of(db, cus["id"])] == [
            "currency_balance_is_sum_of_its_transactions"
        ]
    finally:
        db.execute(
            "UPDATE customer_balances SET balance = balance + 1"
            " WHERE customer = %s AND currency = 'eur'",
            (cus["id"],),
        )
    assert factories.breaches_of(db, cus["id"]) == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        pytest.param({"amount": "-100", "currency": "EUR"}, "currency", id="upper-case"),
        pytest.param({"amount": "-100", "currency": "xyz"}, "currency", id="not-iso"),
        pytest.param({"amount": "-100"}, "currency", id="missing"),
        pytest.param({"amount": "0", "currency": "eur"}, "amount", id="zero"),
    ],
)  # fmt: skip
def test_bad_currency_transactions_are_refused_and_change_nothing(api, db, params, param):
    cus = factories.customer(api, balance=-100)
    factories.adjust(api, cus["id"], -20, "eur")
    before = fingerprint(db)
    ledger = factories.balance_ledger(db, cus["id"])

    response = api.post(factories.balance_url(cus["id"]), params)

    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == param
    assert fingerprint(db) == before
    assert factories.balance_ledger(db, cus["id"]) == ledger


def test_overpayments_left_out_of_a_one_currency_balance_are_credited_by_0016(
    service_urls, tmp_path
):
    # given a database before 0016 whose customer's balance is in usd, with an eur
    # invoice overpaid by 70 that the one-currency balance could not take
    with connected_before(service_urls, tmp_path, "0016") as (dsn, conn):
        conn.execute(
            """
            INSERT INTO customers (id, livemode, created, balance, currency)
            VALUES ('cus_old', false, 1, -300, 'usd');
            INSERT INTO invoices (id, livemode, customer, status, currency, total,
                amount_paid, finalized_at, paid_at, created, starting_balance, ending_balance)
            VALUES ('in_usd', false, 'cus_old', 'paid', 'usd', 1000, 1300, 2, 3, 1, 0, 0),
                   ('in_eur', false, 'cus_old', 'paid', 'eur', 100, 170, 6, 7, 1, 0, 0);
            INSERT INTO customer_balance_transactions (id, livemode, customer, type, amount,
                currency, ending_balance, invoice, created)
            VALUES ('cbtxn_old', false, 'cus_old', 'invoice_overpaid', -300, 'usd', -300,
                'in_usd', 3);
            """
        )

        # when 0016 is applied
        assert "0016_balances_in_every_currency" in migrate(dsn)

        # then the eur overpayment is the customer's eur credit
        rows = conn.execute(
            "SELECT type, amount, currency, ending_balance, invoice, created"
            " FROM customer_balance_transactions ORDER BY seq"
        ).fetchall()
        assert rows[1:] == [
            {"type": "invoice_overpaid", "amount": -70, "currency": "eur",
             "ending_balance": -70, "invoice": "in_eur", "created": 7},
        ]  # fmt: skip
        balances = conn.execute(
            "SELECT currency, balance FROM customer_balances ORDER BY currency"
        ).fetchall()
        assert balances == [
            {"currency": "eur", "balance": -70},
            {"currency": "usd", "balance": -300},
        ]
        # (the invoices have no payments here: only the balance checks apply)
        checks = {b["check"] for b in reconciliation.breaches(conn)}
        assert checks == {"amount_paid_matches_payments"}
