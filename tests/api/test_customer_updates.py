"""Customers, complete (issue 22): update, delete, invoice_prefix and
next_invoice_sequence, and the customer.created / .updated / .deleted events, driven by
the stripe SDK, unchanged, over HTTP."""

from __future__ import annotations

import re
from typing import Any

import pytest
import stripe

from tests import factories
from tests.conftest import TEST_KEY, ApiClient


@pytest.fixture
def client(server: str) -> stripe.StripeClient:
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)


@pytest.fixture
def global_stripe(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's module-level configuration (stripe.Customer.modify & co.) aimed at Tally."""
    monkeypatch.setattr(stripe, "api_key", TEST_KEY)
    monkeypatch.setattr(stripe, "api_base", server)
    monkeypatch.setattr(stripe, "max_network_retries", 0)


def events_of(db: Any, customer_id: str) -> list[dict[str, Any]]:
    rows = db.execute(
        """
        SELECT type, data, request_id FROM events
        WHERE data->'object'->>'id' = %s AND type LIKE 'customer.%%' ORDER BY seq
        """,
        (customer_id,),
    ).fetchall()
    return [{"type": r["type"], "request_id": r["request_id"], **r["data"]} for r in rows]


def snapshot(db: Any, customer_id: str) -> dict[str, Any]:
    """Everything a customer change could touch."""
    customer = db.execute(
        """
        SELECT email, name, phone, description, metadata, balance, currency, invoice_prefix,
            next_invoice_sequence, deleted
        FROM customers WHERE id = %s
        """,
        (customer_id,),
    ).fetchone()
    counts = db.execute(
        """
        SELECT (SELECT count(*) FROM customer_balance_transactions WHERE customer = %(c)s) AS txns,
               (SELECT count(*) FROM events WHERE data->'object'->>'id' = %(c)s) AS events,
               (SELECT count(*) FROM invoices WHERE customer = %(c)s) AS invoices,
               (SELECT count(*) FROM invoice_items WHERE customer = %(c)s) AS items,
               (SELECT count(*) FROM payment_intents WHERE customer = %(c)s) AS intents,
               (SELECT count(*) FROM payment_records WHERE customer = %(c)s) AS records,
               (SELECT count(*) FROM customers) AS customers,
               (SELECT count(*) FROM invoice_prefixes) AS prefixes
        """,
        {"c": customer_id},
    ).fetchone()
    return {**customer, **counts}


def finalized(client: stripe.StripeClient, customer_id: str) -> stripe.Invoice:
    client.v1.invoice_items.create(
        params={"customer": customer_id, "amount": 100, "currency": "usd"}
    )
    draft = client.v1.invoices.create(
        params={"customer": customer_id, "pending_invoice_items_behavior": "include"}
    )
    return client.v1.invoices.finalize_invoice(draft.id)


# --- create: customer.created, invoice_prefix and next_invoice_sequence ----------------


def test_create_writes_customer_created_with_the_customer_as_the_api_shows_it(client, db):
    customer = client.v1.customers.create(
        params={"email": "ada@example.com", "balance": -250, "metadata": {"k": "v"}}
    )

    [created] = events_of(db, customer.id)
    assert created["type"] == "customer.created"
    assert created["object"] == client.v1.customers.retrieve(customer.id).to_dict()
    assert created["object"]["balance"] == -250
    assert "previous_attributes" not in created
    assert created["request_id"] is not None


def test_a_generated_invoice_prefix_and_the_sequence_are_shown(client, db):
    customer = client.v1.customers.create(params={"email": "gen@example.com"})

    stored = snapshot(db, customer.id)
    assert customer.invoice_prefix == stored["invoice_prefix"]
    # 8 hex digits, upper case: all of them digits one time in 43, which isupper() failed
    assert re.fullmatch(r"[0-9A-F]{8}", customer.invoice_prefix)
    assert customer.next_invoice_sequence == 1
    listed = client.v1.customers.list(params={"limit": 100}).data
    assert any(c.id == customer.id and c.invoice_prefix == stored["invoice_prefix"] for c in listed)


def test_invoice_prefix_set_on_create_numbers_invoices_and_the_sequence_moves(client):
    customer = client.v1.customers.create(params={"invoice_prefix": "ACME7"})
    assert customer.invoice_prefix == "ACME7"

    first = finalized(client, customer.id)
    second = finalized(client, customer.id)

    assert (first.number, second.number) == ("ACME7-0001", "ACME7-0002")
    assert client.v1.customers.retrieve(customer.id).next_invoice_sequence == 3


@pytest.mark.parametrize("prefix", ["ab1", "AB", "ABCDEFGHIJKLM", "AB-1", "ÄBC", ""])
def test_a_malformed_invoice_prefix_is_refused_naming_it(client, db, prefix):
    before = db.execute("SELECT count(*) AS n FROM customers").fetchone()["n"]

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.customers.create(params={"invoice_prefix": prefix})

    assert refused.value.http_status == 400
    assert refused.value.param == "invoice_prefix"
    assert "3 to 12 uppercase letters or numbers" in str(refused.value.user_message)
    assert db.execute("SELECT count(*) AS n FROM customers").fetchone()["n"] == before


# --- update ---------------------------------------------------------------------------


def test_modify_changes_the_details_and_announces_only_what_changed(client, db, global_stripe):
    # given a customer with two metadata keys
    customer = client.v1.customers.create(
        params={"email": "old@example.com", "name": "Old", "metadata": {"a": "1", "b": "2"}}
    )

    # when the SDK's module-level API modifies it: a new name and phone, one key unset,
    # one added, one left as it was
    updated = stripe.Customer.modify(
        customer.id,
        name="New",
        phone="+15550100",
        email="old@example.com",
        metadata={"b": "", "c": "3"},
    )

    # then the customer has them, and one customer.updated names only what changed,
    # metadata only by the keys that changed (null: the key was not there)
    assert isinstance(updated, stripe.Customer)
    assert (updated.name, updated.phone, updated.email) == ("New", "+15550100", "old@example.com")
    assert updated.metadata.to_dict() == {"a": "1", "c": "3"}
    assert stripe.Customer.retrieve(customer.id).to_dict() == updated.to_dict()
    created, changed = events_of(db, customer.id)
    assert created["type"] == "customer.created"
    assert changed["type"] == "customer.updated"
    assert changed["object"] == updated.to_dict()
    assert changed["previous_attributes"] == {
        "name": "Old",
        "phone": None,
        "metadata": {"b": "2", "c": None},
    }


def test_an_empty_value_clears_a_field_and_metadata_empty_clears_every_key(client, db):
    customer = client.v1.customers.create(
        params={"email": "x@example.com", "description": "VIP", "metadata": {"a": "1"}}
    )

    updated = client.v1.customers.update(
        customer.id, params={"description": "", "email": "", "metadata": ""}
    )

    assert (updated.description, updated.email, updated.metadata.to_dict()) == (None, None, {})
    changed = events_of(db, customer.id)[-1]
    assert changed["previous_attributes"] == {
        "description": "VIP",
        "email": "x@example.com",
        "metadata": {"a": "1"},
    }


def test_drafts_show_the_new_email_and_name_and_finalized_invoices_keep_theirs(client, db):
    # given a customer with a finalized invoice and a draft
    customer = client.v1.customers.create(params={"email": "old@example.com", "name": "Old"})
    finalized_invoice = finalized(client, customer.id)
    draft = client.v1.invoices.create(params={"customer": customer.id})

    # when its email changes
    client.v1.customers.update(customer.id, params={"email": "new@example.com"})

    # then the draft shows it, announced by invoice.updated; the finalized one does not
    shown = client.v1.invoices.retrieve(draft.id)
    assert (shown.customer_email, shown.customer_name) == ("new@example.com", "Old")
    kept = client.v1.invoices.retrieve(finalized_invoice.id)
    assert kept.customer_email == "old@example.com"
    [updated] = factories.events_data(db, "invoice.updated", draft.id)
    assert updated["previous_attributes"] == {"customer_email": "old@example.com"}
    assert updated["object"] == shown.to_dict()
    assert (
        db.execute(
            "SELECT count(*) AS n FROM events WHERE type = 'invoice.updated'"
            " AND data->'object'->>'id' = %s",
            (finalized_invoice.id,),
        ).fetchone()["n"]
        == 0
    )


def test_a_modify_that_changes_nothing_writes_no_event(client, db):
    customer = client.v1.customers.create(params={"name": "Same", "metadata": {"a": "1"}})

    client.v1.customers.update(customer.id, params={"name": "Same", "metadata": {"a": "1"}})

    assert [e["type"] for e in events_of(db, customer.id)] == ["customer.created"]


def test_a_balance_edit_writes_the_adjustment_for_the_difference(client, db):
    # given a customer with an initial balance of -500 usd, and a credit in eur
    customer = client.v1.customers.create(params={"balance": -500})
    client.v1.customers.balance_transactions.create(
        customer.id, params={"amount": -300, "currency": "eur"}
    )

    # when its balance is set to 200 (and its name changed in the same call)
    updated = client.v1.customers.update(customer.id, params={"balance": 200, "name": "Bal"})

    # then an adjustment of +700 usd moved it there, the eur balance is untouched,
    # and one customer.updated names the old balance and name
    assert (updated.balance, updated.currency) == (200, "usd")
    newest = client.v1.customers.balance_transactions.list(customer.id).data[0]
    assert (newest.type, newest.amount, newest.currency, newest.ending_balance) == (
        "adjustment",
        700,
        "usd",
        200,
    )
    assert newest.invoice is None
    assert factories.balance_ledger(db, customer.id)[-1]["amount"] == 700
    included = client.v1.customers.retrieve(
        customer.id, params={"expand": ["invoice_credit_balance"]}
    )
    assert included.invoice_credit_balance.to_dict() == {"eur": -300, "usd": 200}
    changed = events_of(db, customer.id)[-1]
    assert changed["type"] == "customer.updated"
    assert changed["previous_attributes"] == {"balance": -500, "name": None}
    assert changed["object"]["balance"] == 200


def test_concurrent_balance_edits_each_adjust_from_the_balance_the_other_left(client, db):
    # given a customer with a balance of -500, and edits racing to set it
    customer = client.v1.customers.create(params={"balance": -500})
    targets = [100, 300, -700, 0]

    # when they all run at once
    factories.together(
        [
            lambda target=target: client.v1.customers.update(
                customer.id, params={"balance": target}
            )
            for target in targets
        ]
    )

    # then the balance is one of the targets, and the ledger sums to it (no edit
    # computed its difference from a balance another had already moved)
    final = client.v1.customers.retrieve(customer.id).balance
    assert final in targets
    ledger = factories.balance_ledger(db, customer.id)
    assert sum(t["amount"] for t in ledger) == final
    assert [t["ending_balance"] for t in ledger][-1] == final
    assert len(ledger) == 1 + len(targets)


def test_a_balance_edit_to_the_same_balance_writes_nothing(client, db):
    customer = client.v1.customers.create(params={"balance": -500})
    before = snapshot(db, customer.id)

    client.v1.customers.update(customer.id, params={"balance": -500})

    assert snapshot(db, customer.id) == before


def test_a_balance_edit_of_a_customer_without_currency_sets_the_default(client, db):
    customer = client.v1.customers.create(params={"email": "none@example.com"})
    assert customer.currency is None

    updated = client.v1.customers.update(customer.id, params={"balance": -120})

    assert (updated.balance, updated.currency) == (-120, "usd")
    [txn] = factories.balance_ledger(db, customer.id)
    assert (txn["type"], txn["amount"], txn["currency"]) == ("adjustment", -120, "usd")
    changed = events_of(db, customer.id)[-1]
    assert changed["previous_attributes"] == {"balance": 0, "currency": None}


def test_a_changed_invoice_prefix_numbers_the_next_invoice_and_the_sequence_carries_on(client):
    customer = client.v1.customers.create(params={"invoice_prefix": "OLDP1"})
    first = finalized(client, customer.id)

    updated = client.v1.customers.update(customer.id, params={"invoice_prefix": "NEWP1"})
    second = finalized(client, customer.id)

    assert updated.invoice_prefix == "NEWP1"
    assert (first.number, second.number) == ("OLDP1-0001", "NEWP1-0002")
    assert client.v1.invoices.retrieve(first.id).number == "OLDP1-0001"


def test_a_prefix_another_customer_holds_or_held_is_refused(client, db):
    # given A holding HELD1, and B
    a = client.v1.customers.create(params={"invoice_prefix": "HELD1"})
    b = client.v1.customers.create(params={"email": "b@example.com"})
    before = snapshot(db, b.id)

    # then B can take it neither at creation nor by update
    with pytest.raises(stripe.InvalidRequestError) as at_create:
        client.v1.customers.create(params={"invoice_prefix": "HELD1"})
    assert (at_create.value.http_status, at_create.value.param) == (400, "invoice_prefix")
    with pytest.raises(stripe.InvalidRequestError) as at_update:
        client.v1.customers.update(b.id, params={"invoice_prefix": "HELD1", "name": "B"})
    assert (at_update.value.http_status, at_update.value.param) == (400, "invoice_prefix")
    assert snapshot(db, b.id) == before

    # nor once A has moved on from it, since A's invoices carry it
    finalized(client, a.id)
    client.v1.customers.update(a.id, params={"invoice_prefix": "HELD2"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(b.id, params={"invoice_prefix": "HELD1"})
    assert snapshot(db, b.id)["invoice_prefix"] == before["invoice_prefix"]

    # while A may take its own back, and numbers on without a clash
    assert client.v1.customers.update(a.id, params={"invoice_prefix": "HELD1"}).invoice_prefix == (
        "HELD1"
    )
    assert finalized(client, a.id).number == "HELD1-0002"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"emial": "x@example.com"}, "emial"),
        ({"email": "not-an-email"}, "email"),
        ({"balance": "1.5"}, "balance"),
        ({"balance": 100_000_000}, "balance"),
        ({"invoice_prefix": "lower"}, "invoice_prefix"),
        ({"name": "n" * 257}, "name"),
        ({"metadata": {"k" * 41: "v"}}, "metadata"),
        ({"currency": "eur"}, "currency"),
    ],
)
def test_bad_update_input_is_refused_naming_the_parameter_and_changes_nothing(
    client, db, params, param
):
    customer = client.v1.customers.create(params={"name": "Kept", "balance": -10})
    before = snapshot(db, customer.id)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.customers.update(customer.id, params={"description": "Changed", **params})

    assert refused.value.http_status == 400
    assert refused.value.param == param
    assert snapshot(db, customer.id) == before


def test_modify_of_an_unknown_customer_is_404(client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.customers.update("cus_missing", params={"name": "x"})

    assert (refused.value.http_status, refused.value.code) == (404, "resource_missing")
    assert refused.value.user_message == "No such customer: 'cus_missing'"


# --- delete ---------------------------------------------------------------------------


def test_delete_answers_the_deleted_object_which_retrieve_shows_from_then_on(
    client, db, global_stripe
):
    # given a customer with a finalized invoice
    customer = client.v1.customers.create(params={"email": "gone@example.com", "name": "Gone"})
    invoice = finalized(client, customer.id)
    as_it_was = stripe.Customer.retrieve(customer.id).to_dict()

    # when the SDK's module-level API deletes it
    deleted = stripe.Customer.delete(customer.id)

    # then Stripe's deleted object comes back, and retrieve answers it too (200)
    assert deleted.to_dict() == {"id": customer.id, "object": "customer", "deleted": True}
    assert deleted.deleted is True
    again = stripe.Customer.retrieve(customer.id)
    assert again.to_dict() == {"id": customer.id, "object": "customer", "deleted": True}
    # the list leaves it out
    listed = client.v1.customers.list(params={"limit": 100}).data
    assert customer.id not in [c.id for c in listed]
    # its invoice keeps its customer id, which expands to the deleted object
    kept = client.v1.invoices.retrieve(invoice.id, params={"expand": ["customer"]})
    assert kept.customer.to_dict() == {"id": customer.id, "object": "customer", "deleted": True}
    assert client.v1.invoices.retrieve(invoice.id).customer == customer.id
    # customer.deleted carries the customer as it was
    [*_, gone] = events_of(db, customer.id)
    assert gone["type"] == "customer.deleted"
    assert gone["object"] == as_it_was
    assert snapshot(db, customer.id)["deleted"] is True


def test_a_deleted_customer_cannot_be_billed_again(client, db):
    # given a deleted customer with a draft invoice, a pending item and a balance
    customer = client.v1.customers.create(params={"email": "gone@example.com", "balance": -50})
    client.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 100, "currency": "usd"}
    )
    draft = client.v1.invoices.create(params={"customer": customer.id})
    client.v1.customers.delete(customer.id)
    before = snapshot(db, customer.id)

    # then nothing can bill it, each refusal naming the customer as missing
    billing = [
        lambda: client.v1.invoices.create(params={"customer": customer.id}),
        lambda: client.v1.invoice_items.create(
            params={"customer": customer.id, "amount": 100, "currency": "usd"}
        ),
        lambda: client.v1.payment_intents.create(
            params={"customer": customer.id, "amount": 100, "currency": "usd"}
        ),
        lambda: client.v1.payment_records.report_payment(
            params={
                "amount_requested": {"value": 100, "currency": "usd"},
                "customer_details": {"customer": customer.id},
                "initiated_at": 1_700_000_000,
                "outcome": "guaranteed",
                "guaranteed": {"guaranteed_at": 1_700_000_000},
                "payment_method_details": {"type": "custom"},
                "processor_details": {"type": "custom", "custom": {"payment_reference": "r1"}},
            }
        ),
        lambda: client.v1.invoices.finalize_invoice(draft.id),
    ]
    for bill in billing:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            bill()
        assert (refused.value.http_status, refused.value.code) == (400, "resource_missing")
        assert "No such customer" in str(refused.value.user_message)
    # and its id in the path is missing for every change
    changes = [
        lambda: client.v1.customers.balance_transactions.create(
            customer.id, params={"amount": -100, "currency": "usd"}
        ),
        lambda: client.v1.customers.update(customer.id, params={"name": "Back"}),
        lambda: client.v1.customers.delete(customer.id),
    ]
    for change in changes:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            change()
        assert (refused.value.http_status, refused.value.code) == (404, "resource_missing")
    assert snapshot(db, customer.id) == before
    assert client.v1.invoices.retrieve(draft.id).status == "draft"
    # its history stays readable
    [initial] = client.v1.customers.balance_transactions.list(customer.id).data
    assert (initial.type, initial.amount) == ("initial", -50)


def test_a_deleted_customers_open_invoice_is_still_credited(api: ApiClient, db):
    # given an open invoice with a PaymentIntent attached, then its customer deleted
    invoice, pi = factories.attached_invoice(api, 800)
    assert api.delete(f"/v1/customers/{invoice['customer']}").status_code == 200

    # when the payment succeeds
    factories.settle(db.info.dsn, pi)

    # then the money is credited as ever
    settled = api.get(f"/v1/invoices/{invoice['id']}").json
    assert (settled["status"], settled["amount_paid"]) == ("paid", 800)
