"""Stripe's list filters, driven by the stripe SDK: `created` (an integer, or gt, gte,
lt, lte) on every list Stripe gives it, each list's own filters, paging through a
filtered list, and a bad filter refused naming the parameter."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
import stripe

from tests import factories
from tests.conftest import TEST_KEY


def stripe_client(server: str) -> stripe.StripeClient:
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)


@pytest.fixture
def client(server: str) -> stripe.StripeClient:
    return stripe_client(server)


def _base() -> int:
    """A span of timestamps no other test's rows are stamped in (years before any row
    is really created, so no real row falls in it either)."""
    return 1_000_000_000 + random.randrange(5_000_000) * 100


def _stamp(db: Any, customers: list[str], base: int, step: int = 10) -> list[int]:
    """Give the customers `created` times base, base+step, ... in the order given."""
    stamps = [base + i * step for i in range(len(customers))]
    for customer, stamp in zip(customers, stamps, strict=True):
        db.execute("UPDATE customers SET created = %s WHERE id = %s", (stamp, customer))
    return stamps


def _ids(page: Any) -> list[str]:
    return [obj.id for obj in page.data]


# --- created, each operator -------------------------------------------------------------


def test_customers_by_created_with_each_operator(client, api, db):
    # given three customers created at t, t+10, t+20
    customers = [factories.customer(api)["id"] for _ in range(3)]
    t, t10, t20 = _stamp(db, customers, _base())
    first, second, third = customers

    def listed(created: Any) -> list[str]:
        return _ids(client.v1.customers.list(params={"created": created, "limit": 100}))

    # then each operator, alone and together, keeps exactly the customers it names
    assert listed(t10) == [second]
    assert listed({"gte": t, "lte": t20}) == [third, second, first]
    assert listed({"gt": t, "lte": t20}) == [third, second]
    assert listed({"gte": t, "lt": t20}) == [second, first]
    assert listed({"gte": t10, "lte": t10}) == [second]
    assert listed({"gt": t20, "lt": t20 + 100}) == []


def test_created_on_every_list_stripe_filters_by_it(client, api, db):
    # given an invoice with an item, a payment attached, and a PaymentIntent, each
    # stamped at t, and another of each stamped at t+10
    t = _base()
    old, old_pi = factories.attached_invoice(api, 500)
    new, new_pi = factories.attached_invoice(api, 700)
    for invoice, stamp in ((old, t), (new, t + 10)):
        db.execute("UPDATE invoices SET created = %s WHERE id = %s", (stamp, invoice["id"]))
        db.execute(
            "UPDATE invoice_items SET created = %s WHERE invoice = %s", (stamp, invoice["id"])
        )
        db.execute(
            "UPDATE invoice_payments SET created = %s WHERE invoice = %s", (stamp, invoice["id"])
        )
    db.execute("UPDATE payment_intents SET created = %s WHERE id = %s", (t, old_pi["id"]))
    db.execute("UPDATE payment_intents SET created = %s WHERE id = %s", (t + 10, new_pi["id"]))
    since = {"gte": t + 10, "lt": t + 20}
    before = {"gte": t, "lt": t + 10}

    # then each list keeps those created in the range asked for
    assert _ids(client.v1.invoices.list(params={"created": since})) == [new["id"]]
    assert _ids(client.v1.invoices.list(params={"created": before})) == [old["id"]]
    items = client.v1.invoice_items.list(params={"created": since})
    assert [item.invoice for item in items.data] == [new["id"]]
    assert _ids(client.v1.payment_intents.list(params={"created": t})) == [old_pi["id"]]
    payments = client.v1.invoice_payments.list(params={"created": since})
    assert [p.invoice for p in payments.data] == [new["id"]]


def test_balance_transactions_by_created(client, api):
    # given two adjustments made in different seconds (the ledger is immutable, so
    # the times are real ones)
    customer = factories.customer(api)["id"]
    first = factories.adjust(api, customer, -100)
    while int(time.time()) == first["created"]:
        time.sleep(0.05)
    second = factories.adjust(api, customer, -200)

    def listed(created: Any) -> list[str]:
        return _ids(
            client.v1.customers.balance_transactions.list(customer, params={"created": created})
        )

    # then created selects each
    assert listed({"gte": second["created"]}) == [second["id"]]
    assert listed({"lt": second["created"]}) == [first["id"]]
    assert listed(first["created"]) == [first["id"]]


def test_events_by_created(client, api, db):
    # given the events of two invoices, stamped t and t+10
    t = _base()
    invoices = [factories.open_invoice(api, 300), factories.open_invoice(api, 400)]
    for invoice, stamp in zip(invoices, (t, t + 10), strict=True):
        db.execute(
            "UPDATE events SET created = %s WHERE data->'object'->>'id' = %s",
            (stamp, invoice["id"]),
        )

    # then created selects the events of each
    later = client.v1.events.list(params={"created": {"gt": t, "lte": t + 10}, "limit": 100})
    assert {e.data.object.id for e in later.data} == {invoices[1]["id"]}
    earlier = client.v1.events.list(params={"created": {"gte": t, "lt": t + 10}, "limit": 100})
    assert {e.data.object.id for e in earlier.data} == {invoices[0]["id"]}


# --- each list's own filters ------------------------------------------------------------


def test_customers_by_email_case_sensitive(client, api):
    email = f"Filter-{random.randrange(10**9)}@example.com"
    customer = factories.customer(api, email=email)
    factories.customer(api, email=email.lower())

    found = client.v1.customers.list(params={"email": email})

    # stripe-python: "A case-sensitive filter on the list based on the customer's email"
    assert _ids(found) == [customer["id"]]


def test_invoices_by_collection_method_and_due_date(client, api, db):
    # given a customer's invoice charged automatically and one sent with a due date
    customer = factories.customer(api)
    due = _base()
    automatic = api.post(
        "/v1/invoices", {"customer": customer["id"], "collection_method": "charge_automatically"}
    ).json
    sent = api.post(
        "/v1/invoices",
        {"customer": customer["id"], "collection_method": "send_invoice", "due_date": due},
    ).json

    def listed(**params: Any) -> list[str]:
        return _ids(client.v1.invoices.list(params={"customer": customer["id"], **params}))

    # then each filter keeps the one it names
    assert listed(collection_method="send_invoice") == [sent["id"]]
    assert listed(collection_method="charge_automatically") == [automatic["id"]]
    assert listed(due_date={"gte": due, "lte": due}) == [sent["id"]]
    assert listed(due_date=due + 1) == []
    assert listed(status="draft", created={"gte": 0}) == [sent["id"], automatic["id"]]


def test_invoice_items_by_pending_invoice_and_customer(client, api):
    customer = factories.customer(api)
    invoice = factories.draft_invoice(api, 500, cus=customer)
    pending = api.post(
        "/v1/invoiceitems", {"customer": customer["id"], "amount": 100, "currency": "usd"}
    ).json

    by_customer = client.v1.invoice_items.list(params={"customer": customer["id"]})
    only_pending = client.v1.invoice_items.list(
        params={"customer": customer["id"], "pending": True}
    )
    invoiced = client.v1.invoice_items.list(params={"customer": customer["id"], "pending": False})
    on_invoice = client.v1.invoice_items.list(params={"invoice": invoice["id"]})

    assert len(by_customer.data) == 2
    assert _ids(only_pending) == [pending["id"]]
    assert [item.invoice for item in invoiced.data] == [invoice["id"]]
    assert [item.invoice for item in on_invoice.data] == [invoice["id"]]


def test_events_by_type_wildcard_and_types(client, api, db):
    # given an invoice's events, stamped into a span of their own
    t = _base()
    invoice = factories.open_invoice(api, 300)
    db.execute(
        "UPDATE events SET created = %s WHERE data->'object'->>'id' = %s", (t, invoice["id"])
    )
    created = {"gte": t, "lte": t}

    def types(**params: Any) -> list[str]:
        page = client.v1.events.list(params={"created": created, "limit": 100, **params})
        return sorted(e.type for e in page.data)

    # then `type` takes one name or a group with *, `types` several names
    assert types() == ["invoice.created", "invoice.finalized"]
    assert types(type="invoice.*") == ["invoice.created", "invoice.finalized"]
    assert types(type="*.finalized") == ["invoice.finalized"]
    assert types(type="invoice.created") == ["invoice.created"]
    assert types(type="invoice") == []
    assert types(types=["invoice.finalized", "customer.created"]) == ["invoice.finalized"]


def test_event_type_wildcard_matches_underscores_literally(client, api, db):
    # `_` and `%` are LIKE's wildcards; in a Stripe type they are just characters
    t = _base()
    invoice = factories.open_invoice(api, 300)
    assert api.post(f"/v1/invoices/{invoice['id']}/mark_uncollectible").status_code == 200
    db.execute(
        "UPDATE events SET created = %s WHERE data->'object'->>'id' = %s", (t, invoice["id"])
    )

    def types(name: str) -> set[str]:
        page = client.v1.events.list(params={"created": t, "type": name, "limit": 100})
        return {e.type for e in page.data}

    assert types("invoice.marked_*") == {"invoice.marked_uncollectible"}
    assert types("invoice.marked%*") == set()
    assert types("invoice_*") == set()
    assert types("invoice.marked_uncollectibl_") == set()


def test_events_by_delivery_success(own_server, own_api, own_db):
    # given, in a database of this test's own (no other endpoint is sent its events),
    # three invoices' events: every delivery made; one failed and one pending; none
    client, api, db = stripe_client(own_server), own_api, own_db
    t = _base()
    delivered, undelivered, other = (factories.open_invoice(api, 300) for _ in range(3))
    endpoint = api.post(
        "/v1/webhook_endpoints",
        {"url": "http://127.0.0.1:9/hook", "enabled_events[]": "invoice.voided"},
    ).json
    # deleted at once, so that it asks for no delivery of these events
    assert api.delete(f"/v1/webhook_endpoints/{endpoint['id']}").status_code == 200
    statuses = {
        delivered["id"]: ["succeeded", "succeeded"],
        undelivered["id"]: ["failed", "pending"],
    }
    for invoice in (delivered, undelivered, other):
        rows = db.execute(
            "UPDATE events SET created = %s WHERE data->'object'->>'id' = %s RETURNING id",
            (t, invoice["id"]),
        ).fetchall()
        for row, status in zip(rows, statuses.get(invoice["id"], []), strict=False):
            db.execute(
                "INSERT INTO webhook_deliveries (event_id, endpoint_id, status)"
                " VALUES (%s, %s, %s)",
                (row["id"], endpoint["id"], status),
            )

    def invoices(success: bool) -> set[str]:
        page = client.v1.events.list(
            params={"created": t, "delivery_success": success, "limit": 100}
        )
        return {e.data.object.id for e in page.data}

    # then true keeps the events every endpoint received, false those still pending or
    # failed somewhere
    assert invoices(True) == {delivered["id"], other["id"]}
    assert invoices(False) == {undelivered["id"]}


# --- paging through a filtered list -----------------------------------------------------


def test_paging_composes_with_filters(client, api, db):
    # given five customers in a span, and one just outside it
    customers = [factories.customer(api)["id"] for _ in range(6)]
    base = _base()
    stamps = _stamp(db, customers, base)
    inside = customers[1:]
    span = {"gte": stamps[1], "lte": stamps[-1]}

    # when the span is paged through two at a time
    pages = client.v1.customers.list(params={"created": span, "limit": 2})
    walked = [c.id for c in pages.auto_paging_iter()]

    # then every customer in it comes once, newest first, and none outside it
    assert walked == list(reversed(inside))
    assert pages.has_more is True
    # and paging back from the oldest comes to the newer ones, still filtered
    back = client.v1.customers.list(
        params={"created": span, "limit": 2, "ending_before": inside[0]}
    )
    assert _ids(back) == [inside[2], inside[1]]
    after = client.v1.customers.list(params={"created": span, "starting_after": inside[1]})
    assert _ids(after) == [inside[0]]


# --- bad filters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "param", "code"),
    [
        ("/v1/customers", {"created[after]": "1"}, "created[after]", "parameter_unknown"),
        ("/v1/customers", {"created": "yesterday"}, "created", "parameter_invalid_integer"),
        ("/v1/customers", {"created[gte]": "1.5"}, "created[gte]", "parameter_invalid_integer"),
        ("/v1/customers", {"created[lt]": str(2**64)}, "created[lt]", None),
        ("/v1/customers", {"created[]": "1"}, "created", None),
        ("/v1/invoices", {"due_date[gt]": "x"}, "due_date[gt]", "parameter_invalid_integer"),
        ("/v1/invoices", {"collection_method": "cash"}, "collection_method", None),
        ("/v1/invoiceitems", {"created[lte]": "-1"}, "created[lte]", None),
        ("/v1/payment_intents", {"created[gt]": ""}, "created[gt]", "parameter_invalid_integer"),
        ("/v1/events", {"types[]": [f"t{i}" for i in range(21)]}, "types", None),
        ("/v1/events", {"type": "invoice.paid", "types[]": "invoice.paid"}, "types", None),
        ("/v1/events", {"delivery_success": "yes"}, "delivery_success", None),
        ("/v1/webhook_endpoints", {"created": "1"}, "created", "parameter_unknown"),
    ],
)
def test_a_bad_filter_is_refused_naming_it(api, db, path, query, param, code):
    events_before = db.execute("SELECT count(*) AS n FROM events").fetchone()["n"]

    response = api.get(path, query)

    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    # A filter the list takes is refused for its value, not as an unknown parameter.
    assert error.get("code") == code
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == events_before
