"""Invoice items: pending charges, and items added to a draft invoice."""

from __future__ import annotations

from typing import Any

import pytest

from tests import factories


def new_customer(api: Any, **params: Any) -> dict[str, Any]:
    response = api.post("/v1/customers", {"email": "items@example.com", **params})
    assert response.status_code == 200, response.json
    return response.json


def item_count(db: Any, customer_id: str) -> int:
    return db.execute(
        "SELECT count(*) AS n FROM invoice_items WHERE customer = %s", (customer_id,)
    ).fetchone()["n"]


def draft_for(api: Any, customer_id: str, currency: str = "usd") -> dict[str, Any]:
    response = api.post("/v1/invoices", {"customer": customer_id, "currency": currency})
    assert response.status_code == 200, response.json
    return response.json


def test_item_with_amount_is_pending_with_quantity_one(api, db):
    cus = new_customer(api)

    response = api.post(
        "/v1/invoiceitems",
        {
            "customer": cus["id"],
            "amount": 1299,
            "currency": "usd",
            "description": "T-shirt",
            "metadata[sku]": "ts-1",
        },
    )

    assert response.status_code == 200, response.json
    item = response.json
    assert item["id"].startswith("ii_")
    assert item["object"] == "invoiceitem"
    assert (item["amount"], item["quantity"], item["currency"]) == (1299, 1, "usd")
    assert item["invoice"] is None
    assert item["customer"] == cus["id"]
    assert item["metadata"] == {"sku": "ts-1"}
    assert item["pricing"]["unit_amount_decimal"] == "1299"
    assert item["period"] == {"start": item["date"], "end": item["date"]}
    assert item["livemode"] is False
    row = db.execute("SELECT * FROM invoice_items WHERE id = %s", (item["id"],)).fetchone()
    assert (row["amount"], row["unit_amount"], row["quantity"]) == (1299, 1299, 1)
    assert row["invoice"] is None and row["line_id"] is None and row["pending"] is True


def test_item_amount_is_unit_amount_times_quantity(api, db):
    cus = new_customer(api)

    response = api.post(
        "/v1/invoiceitems",
        {"customer": cus["id"], "unit_amount": 250, "quantity": 3, "currency": "eur"},
    )

    assert response.status_code == 200, response.json
    assert response.json["amount"] == 750
    assert response.json["quantity"] == 3
    assert response.json["pricing"]["unit_amount_decimal"] == "250"
    assert response.json["quantity_decimal"] == "3"
    row = db.execute(
        "SELECT amount, unit_amount, quantity FROM invoice_items WHERE id = %s",
        (response.json["id"],),
    ).fetchone()
    assert row == {"amount": 750, "unit_amount": 250, "quantity": 3}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        pytest.param({"amount": 100, "currency": "USD"}, "currency", id="uppercase-currency"),
        pytest.param({"amount": 100, "currency": "xyz"}, "currency", id="unknown-currency"),
        pytest.param({"amount": 100}, "currency", id="missing-currency"),
        pytest.param({"amount": 100_000_000, "currency": "usd"}, "amount", id="amount-too-big"),
        pytest.param({"amount": -100_000_000, "currency": "usd"}, "amount", id="amount-too-small"),
        pytest.param({"amount": "1.5", "currency": "usd"}, "amount", id="fractional-amount"),
        pytest.param({"currency": "usd"}, "amount", id="no-amount"),
        pytest.param(
            {"amount": 100, "unit_amount": 100, "currency": "usd"}, "unit_amount", id="both"
        ),
        pytest.param(
            {"unit_amount": 50_000_000, "quantity": 2, "currency": "usd"},
            "quantity",
            id="product-too-big",
        ),
        pytest.param({"unit_amount": 5, "quantity": 0, "currency": "usd"}, "quantity", id="qty-0"),
        pytest.param({"amount": 100, "currency": "usd", "colour": "red"}, "colour", id="unknown"),
    ],
)
def test_invalid_item_is_refused_naming_the_param(api, db, params, param):
    cus = new_customer(api)

    response = api.post("/v1/invoiceitems", {"customer": cus["id"], **params})

    factories.refused(response, param)
    assert item_count(db, cus["id"]) == 0


@pytest.mark.parametrize("customer", ["in_123", "cust_123", "123", ""])
def test_customer_with_wrong_prefix_is_refused(api, customer):
    response = api.post(
        "/v1/invoiceitems", {"customer": customer, "amount": 100, "currency": "usd"}
    )
    assert response.status_code == 400
    assert response.json["error"]["param"] == "customer"


def test_customer_of_the_other_mode_is_resource_missing(api, live_api, db):
    live_customer = new_customer(live_api)

    response = api.post(
        "/v1/invoiceitems", {"customer": live_customer["id"], "amount": 100, "currency": "usd"}
    )

    assert response.status_code == 400
    assert response.json["error"]["code"] == "resource_missing"
    assert response.json["error"]["param"] == "customer"
    assert item_count(db, live_customer["id"]) == 0


def test_item_added_to_a_draft_becomes_a_line_and_updates_the_total(api, db):
    # given
    cus = new_customer(api)
    draft = draft_for(api, cus["id"])

    # when
    response = api.post(
        "/v1/invoiceitems",
        {"customer": cus["id"], "amount": 400, "currency": "usd", "invoice": draft["id"]},
        {"Idempotency-Key": f"add-{draft['id']}"},
    )

    # then
    assert response.status_code == 200, response.json
    item = response.json
    assert item["invoice"] == draft["id"]
    row = db.execute("SELECT line_id, pending FROM invoice_items WHERE id = %s", (item["id"],))
    row = row.fetchone()
    assert row["line_id"].startswith("il_") and row["pending"] is False
    invoice = api.get(f"/v1/invoices/{draft['id']}").json
    assert (invoice["total"], invoice["amount_due"], invoice["amount_remaining"]) == (400, 400, 400)
    assert [line["id"] for line in invoice["lines"]["data"]] == [row["line_id"]]
    line = invoice["lines"]["data"][0]
    assert line["parent"]["invoice_item_details"]["invoice_item"] == item["id"]
    assert db.execute("SELECT total FROM invoices WHERE id = %s", (draft["id"],)).fetchone() == {
        "total": 400
    }
    events = db.execute(
        """
        SELECT type, data, request_id, idempotency_key FROM events
        WHERE data->'object'->>'id' IN (%s, %s) AND type <> 'invoice.created' ORDER BY seq
        """,
        (item["id"], draft["id"]),
    ).fetchall()
    assert [e["type"] for e in events] == ["invoiceitem.created", "invoice.updated"]
    assert events[1]["data"]["previous_attributes"]["total"] == 0
    assert events[1]["data"]["previous_attributes"]["amount_due"] == 0
    assert {e["request_id"] for e in events} == {response.headers["Request-Id"]}
    assert {e["idempotency_key"] for e in events} == {f"add-{draft['id']}"}


def test_item_cannot_be_added_to_a_finalized_invoice(api, db):
    cus = new_customer(api)
    draft = draft_for(api, cus["id"])
    api.post(
        "/v1/invoiceitems",
        {"customer": cus["id"], "amount": 100, "invoice": draft["id"], "currency": "usd"},
    )
    assert api.post(f"/v1/invoices/{draft['id']}/finalize").status_code == 200

    response = api.post(
        "/v1/invoiceitems",
        {"customer": cus["id"], "amount": 900, "currency": "usd", "invoice": draft["id"]},
    )

    factories.refused(response, "invoice")
    assert response.json["error"]["code"] == "invoice_not_editable"
    assert item_count(db, cus["id"]) == 1
    total = db.execute("SELECT total FROM invoices WHERE id = %s", (draft["id"],)).fetchone()
    assert total["total"] == 100


@pytest.mark.parametrize("mismatch", ["customer", "currency", "missing"])
def test_item_for_another_customers_or_currencys_invoice_is_refused(api, db, mismatch):
    cus = new_customer(api)
    other = new_customer(api)
    draft = draft_for(api, other["id"] if mismatch == "customer" else cus["id"])
    invoice_id = "in_doesnotexist" if mismatch == "missing" else draft["id"]
    currency = "eur" if mismatch == "currency" else "usd"

    response = api.post(
        "/v1/invoiceitems",
        {"customer": cus["id"], "amount": 100, "currency": currency, "invoice": invoice_id},
    )

    assert response.status_code == 400
    assert response.json["error"]["param"] == "invoice"
    if mismatch == "missing":
        assert response.json["error"]["code"] == "resource_missing"
    assert item_count(db, cus["id"]) == 0


def test_retrieve_and_modes(api, live_api):
    cus = new_customer(api)
    item = api.post("/v1/invoiceitems", {"customer": cus["id"], "amount": 5, "currency": "usd"})

    assert api.get(f"/v1/invoiceitems/{item.json['id']}").json == item.json
    expanded = api.get(f"/v1/invoiceitems/{item.json['id']}", {"expand[]": "customer"}).json
    assert expanded["customer"]["id"] == cus["id"]
    missing = live_api.get(f"/v1/invoiceitems/{item.json['id']}")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "resource_missing"
    assert api.get("/v1/invoiceitems/ii_nope").status_code == 404


def test_list_filters_by_customer_invoice_and_pending(api):
    cus = new_customer(api)
    draft = draft_for(api, cus["id"])
    pending = [
        api.post("/v1/invoiceitems", {"customer": cus["id"], "amount": n, "currency": "usd"}).json
        for n in (1, 2)
    ]
    bound = api.post(
        "/v1/invoiceitems",
        {"customer": cus["id"], "amount": 3, "currency": "usd", "invoice": draft["id"]},
    ).json

    everything = api.get("/v1/invoiceitems", {"customer": cus["id"]}).json
    only_pending = api.get("/v1/invoiceitems", {"customer": cus["id"], "pending": "true"}).json
    not_pending = api.get("/v1/invoiceitems", {"customer": cus["id"], "pending": "false"}).json
    on_invoice = api.get("/v1/invoiceitems", {"invoice": draft["id"]}).json

    assert [i["id"] for i in everything["data"]] == [
        bound["id"],
        pending[1]["id"],
        pending[0]["id"],
    ]
    assert everything["url"] == "/v1/invoiceitems"
    assert [i["id"] for i in only_pending["data"]] == [pending[1]["id"], pending[0]["id"]]
    assert [i["id"] for i in not_pending["data"]] == [bound["id"]]
    assert [i["id"] for i in on_invoice["data"]] == [bound["id"]]
