"""Negative invoice items are credits (Stripe: "Passing in a negative amount will reduce
the amount_due on the invoice."): they lower an invoice's total, and an invoice whose
total is negative is paid at finalize with amount_due 0, the rest credited to the
customer's balance."""

from __future__ import annotations

import pytest
import stripe

from tests import factories
from tests.conftest import TEST_KEY
from tests.database import fingerprint


@pytest.fixture
def client(server):
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)


def invoice_of(client, customer_id: str, *amounts: int, currency: str = "usd"):
    """A draft of the customer's pending items of `amounts`, made with the stripe SDK."""
    for amount in amounts:
        client.v1.invoice_items.create(
            params={"customer": customer_id, "amount": amount, "currency": currency}
        )
    return client.v1.invoices.create(
        params={
            "customer": customer_id,
            "currency": currency,
            "pending_invoice_items_behavior": "include",
        }
    )


def test_a_negative_item_lowers_the_total_and_amount_due(client, db):
    customer = client.v1.customers.create(params={"email": "credit@example.com"})

    draft = invoice_of(client, customer.id, 1000, -300)

    assert (draft.total, draft.subtotal, draft.amount_due) == (700, 700, 700)
    assert sorted(line.amount for line in draft.lines.data) == [-300, 1000]
    finalized = client.v1.invoices.finalize_invoice(draft.id)
    assert (finalized.status, finalized.amount_due, finalized.amount_remaining) == (
        "open",
        700,
        700,
    )
    assert (finalized.starting_balance, finalized.ending_balance) == (0, 0)
    assert factories.balance_ledger(db, customer.id) == []


def test_a_negative_unit_amount_times_quantity_is_a_credit(api):
    cus = factories.customer(api)

    item = api.post(
        "/v1/invoiceitems",
        {"customer": cus["id"], "unit_amount": -250, "quantity": 3, "currency": "usd"},
    )

    assert item.status_code == 200, item.json
    assert (item.json["amount"], item.json["quantity"]) == (-750, 3)
    assert item.json["pricing"]["unit_amount_decimal"] == "-250"


def test_an_invoice_whose_total_is_negative_is_paid_at_finalize_and_credits_the_balance(
    client, api, db
):
    # given a draft of 500 and a credit of 1200
    customer = client.v1.customers.create(params={"email": "refund@example.com"})
    draft = invoice_of(client, customer.id, 500, -1200)
    assert (draft.total, draft.amount_due, draft.starting_balance) == (-700, 0, 0)

    # when it is finalized
    finalized = client.v1.invoices.finalize_invoice(draft.id)

    # then nothing is due, it is paid at once, and the 700 credit went to the balance
    assert (finalized.status, finalized.total, finalized.amount_due) == ("paid", -700, 0)
    assert (finalized.amount_paid, finalized.amount_remaining, finalized.amount_overpaid) == (
        0,
        0,
        0,
    )
    assert (finalized.starting_balance, finalized.ending_balance) == (0, -700)
    assert finalized.status_transitions.paid_at == finalized.status_transitions.finalized_at
    assert client.v1.customers.retrieve(customer.id).balance == -700
    [txn] = client.v1.customers.balance_transactions.list(customer.id).data
    assert (txn.type, txn.amount, txn.ending_balance, txn.invoice, txn.currency) == (
        "applied_to_invoice",
        -700,
        -700,
        draft.id,
        "usd",
    )
    assert factories.invoice_events(db, draft.id)[-3:] == [
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    [updated] = factories.events_data(db, "customer.updated", customer.id)
    # (finalize's one customer.updated names the sequence it moved as well)
    assert updated["previous_attributes"] == {
        "balance": 0,
        "currency": None,
        "next_invoice_sequence": 1,
    }
    assert factories.breaches_of(db, customer.id, draft.id) == []

    # and the credit pays for the customer's next invoice
    following = client.v1.invoices.finalize_invoice(invoice_of(client, customer.id, 1000).id)
    assert (following.starting_balance, following.amount_due, following.ending_balance) == (
        -700,
        300,
        0,
    )
    assert client.v1.customers.retrieve(customer.id).balance == 0
    assert factories.breaches_of(db, customer.id, draft.id, following.id) == []


def test_a_negative_total_adds_to_a_credit_the_customer_already_has(api, db):
    cus = factories.customer(api, balance=-200)

    invoice = factories.open_invoice(api, -300, cus=cus)

    assert (invoice["status"], invoice["amount_due"]) == ("paid", 0)
    assert (invoice["starting_balance"], invoice["ending_balance"]) == (-200, -500)
    assert api.get(f"/v1/customers/{cus['id']}").json["balance"] == -500
    assert factories.breaches_of(db, cus["id"], invoice["id"]) == []


def test_a_debit_the_customer_owes_is_netted_against_a_negative_total(api, db):
    cus = factories.customer(api, balance=800)

    invoice = factories.open_invoice(api, -300, cus=cus)

    assert (invoice["status"], invoice["amount_due"], invoice["amount_remaining"]) == (
        "open",
        500,
        500,
    )
    assert (invoice["starting_balance"], invoice["ending_balance"]) == (800, 0)
    assert api.get(f"/v1/customers/{cus['id']}").json["balance"] == 0


@pytest.mark.parametrize(
    ("params", "param"),
    [
        pytest.param({"amount": "-100000000"}, "amount", id="amount-below-the-floor"),
        pytest.param({"amount": "-1.5"}, "amount", id="fractional"),
        pytest.param({"unit_amount": "-50000000", "quantity": "2"}, "quantity",
                     id="unit-amount-times-quantity-below-the-floor"),
        pytest.param({"unit_amount": "-100000000"}, "unit_amount", id="unit-amount-below"),
        pytest.param({"unit_amount": "-5", "quantity": "-2"}, "quantity", id="negative-quantity"),
    ],
)  # fmt: skip
def test_bad_negative_items_are_refused_by_name_and_change_nothing(api, db, params, param):
    cus = factories.customer(api, balance=-100)
    draft = factories.draft_invoice(api, 1000, cus=cus)
    before = fingerprint(db)

    response = api.post(
        "/v1/invoiceitems",
        {"customer": cus["id"], "currency": "usd", "invoice": draft["id"], **params},
    )

    factories.refused(response, param)
    assert fingerprint(db) == before


def test_the_sweeper_reports_an_ending_balance_its_total_does_not_explain(api, db):
    # given an invoice of -300 that credited the balance at finalize
    cus = factories.customer(api)
    invoice = factories.open_invoice(api, -300, cus=cus)
    assert factories.breaches_of(db, invoice["id"]) == []

    # when its frozen total no longer explains what it left in the balance
    assert factories.breaches_while_one_less(db, "invoices", "total", invoice["id"]) == [
        "ending_balance_is_what_the_total_left"
    ]
    assert factories.breaches_of(db, invoice["id"]) == []
