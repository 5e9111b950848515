"""Invoices: drafts, pending items, updates, Stripe's status moves, lines and events."""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests import factories
from tests.conftest import ROOT, TEST_KEY
from tests.sdk_declarations import SEED_FIELDS_GONE

SEED_TEXT = ROOT.parent / "shared" / "seeds" / "000_995ef94600ba56ea.txt"
SEED_JSON = ROOT / "tests" / "seed_invoice.json"


def new_customer(api: Any, **params: Any) -> dict[str, Any]:
    response = api.post("/v1/customers", {"email": "inv@example.com", "name": "Ada", **params})
    assert response.status_code == 200, response.json
    return response.json


def add_item(api: Any, customer_id: str, amount: int, currency: str = "usd", **extra: Any) -> Any:
    response = api.post(
        "/v1/invoiceitems",
        {"customer": customer_id, "amount": amount, "currency": currency, **extra},
    )
    assert response.status_code == 200, response.json
    return response.json


def open_invoice(api: Any, amount: int = 1000, cus: dict[str, Any] | None = None) -> Any:
    cus = cus or new_customer(api)
    add_item(api, cus["id"], amount)
    draft = api.post(
        "/v1/invoices", {"customer": cus["id"], "pending_invoice_items_behavior": "include"}
    ).json
    finalized = api.post(f"/v1/invoices/{draft['id']}/finalize")
    assert finalized.status_code == 200, finalized.json
    return finalized.json


def events_of(db: Any, invoice_id: str) -> list[dict[str, Any]]:
    return db.execute(
        """
        SELECT type, data, livemode, request_id, idempotency_key FROM events
        WHERE data->'object'->>'id' = %s ORDER BY seq
        """,
        (invoice_id,),
    ).fetchall()


def invoice_row(db: Any, invoice_id: str) -> dict[str, Any]:
    return db.execute("SELECT * FROM invoices WHERE id = %s", (invoice_id,)).fetchone()


def test_draft_excludes_pending_items_by_default(api, db):
    cus = new_customer(api)
    item = add_item(api, cus["id"], 700)

    response = api.post("/v1/invoices", {"customer": cus["id"]})

    assert response.status_code == 200, response.json
    invoice = response.json
    assert invoice["id"].startswith("in_")
    assert (invoice["status"], invoice["total"], invoice["amount_due"]) == ("draft", 0, 0)
    assert invoice["lines"]["data"] == []
    assert invoice["number"] is None
    assert (invoice["customer_email"], invoice["customer_name"]) == ("inv@example.com", "Ada")
    assert invoice["currency"] == "usd"
    row = db.execute("SELECT invoice FROM invoice_items WHERE id = %s", (item["id"],)).fetchone()
    assert row["invoice"] is None
    assert [e["type"] for e in events_of(db, invoice["id"])] == ["invoice.created"]


def test_draft_includes_pending_items_of_its_currency(api, db):
    # given
    cus = new_customer(api)
    first = add_item(api, cus["id"], 1000)
    second = add_item(api, cus["id"], 299, description="Second")
    euros = add_item(api, cus["id"], 5000, "eur")

    # when
    response = api.post(
        "/v1/invoices",
        {"customer": cus["id"], "currency": "usd", "pending_invoice_items_behavior": "include"},
    )

    # then
    assert response.status_code == 200, response.json
    invoice = response.json
    assert (invoice["total"], invoice["subtotal"], invoice["amount_remaining"]) == (
        1299,
        1299,
        1299,
    )
    lines = invoice["lines"]
    assert lines["url"] == f"/v1/invoices/{invoice['id']}/lines"
    assert lines["has_more"] is False
    assert [line["amount"] for line in lines["data"]] == [299, 1000]
    assert all(
        line["object"] == "line_item" and line["id"].startswith("il_") for line in lines["data"]
    )
    assert lines["data"][0]["description"] == "Second"
    rows = db.execute(
        "SELECT id, invoice, line_id FROM invoice_items WHERE customer = %s", (cus["id"],)
    ).fetchall()
    bound = {r["id"]: r for r in rows}
    assert bound[first["id"]]["invoice"] == bound[second["id"]]["invoice"] == invoice["id"]
    assert bound[euros["id"]]["invoice"] is None
    assert invoice_row(db, invoice["id"])["total"] == 1299


def test_currency_defaults_to_pending_items_then_usd(api):
    cus = new_customer(api)
    assert api.post("/v1/invoices", {"customer": cus["id"]}).json["currency"] == "usd"
    add_item(api, cus["id"], 10, "gbp")

    invoice = api.post(
        "/v1/invoices", {"customer": cus["id"], "pending_invoice_items_behavior": "include"}
    ).json

    assert (invoice["currency"], invoice["total"]) == ("gbp", 10)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        pytest.param({"customer": None}, "customer", id="missing-customer"),
        pytest.param({"customer": "ii_123"}, "customer", id="wrong-prefix"),
        pytest.param({"customer": "cus_missing"}, "customer", id="unknown-customer"),
        pytest.param(
            {"pending_invoice_items_behavior": "sometimes"},
            "pending_invoice_items_behavior",
            id="behavior",
        ),
        pytest.param({"currency": "EUR"}, "currency", id="currency"),
        pytest.param({"due_date": 2_000_000_000}, "due_date", id="due-date-charge-auto"),
        pytest.param({"collection_method": "cash"}, "collection_method", id="collection"),
    ],
)
def test_invalid_create_is_refused_and_writes_nothing(api, db, params, param):
    cus = new_customer(api)
    body = {k: v for k, v in {"customer": cus["id"], **params}.items() if v is not None}

    response = api.post("/v1/invoices", body)

    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == param
    count = db.execute("SELECT count(*) AS n FROM invoices WHERE customer = %s", (cus["id"],))
    assert count.fetchone()["n"] == 0


def test_days_until_due_sets_due_date_for_send_invoice(api):
    cus = new_customer(api)
    invoice = api.post(
        "/v1/invoices",
        {"customer": cus["id"], "collection_method": "send_invoice", "days_until_due": 30},
    ).json
    assert invoice["collection_method"] == "send_invoice"
    assert invoice["due_date"] == invoice["created"] + 30 * 86400


def test_update_draft_writes_invoice_updated_with_previous_attributes(api, db):
    # given
    cus = new_customer(api)
    draft = api.post(
        "/v1/invoices",
        {"customer": cus["id"], "description": "old", "metadata[a]": "1", "metadata[b]": "2"},
    ).json

    # when
    response = api.post(
        f"/v1/invoices/{draft['id']}",
        {"description": "new", "footer": "Thanks", "metadata[b]": "", "metadata[c]": "3"},
    )

    # then
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["description"], body["footer"]) == ("new", "Thanks")
    assert body["metadata"] == {"a": "1", "c": "3"}
    row = invoice_row(db, draft["id"])
    assert (row["description"], row["footer"], row["metadata"]) == (
        "new",
        "Thanks",
        body["metadata"],
    )
    updated = events_of(db, draft["id"])[-1]
    assert updated["type"] == "invoice.updated"
    assert updated["data"]["previous_attributes"] == {
        "description": "old",
        "footer": None,
        "metadata": {"a": "1", "b": "2"},
    }
    assert updated["request_id"] == response.headers["Request-Id"]


def test_update_of_unknown_field_or_invoice_is_refused(api):
    cus = new_customer(api)
    draft = api.post("/v1/invoices", {"customer": cus["id"]}).json
    unknown = api.post(f"/v1/invoices/{draft['id']}", {"total": 5})
    assert unknown.status_code == 400
    assert unknown.json["error"]["param"] == "total"
    assert api.post("/v1/invoices/in_missing", {"description": "x"}).status_code == 404


def test_finalize_assigns_sequential_numbers_and_freezes_the_total(api, db):
    # given
    cus = new_customer(api)
    add_item(api, cus["id"], 1299)
    draft = api.post(
        "/v1/invoices", {"customer": cus["id"], "pending_invoice_items_behavior": "include"}
    ).json
    before = int(time.time())

    # when
    response = api.post(f"/v1/invoices/{draft['id']}/finalize")

    # then
    assert response.status_code == 200, response.json
    invoice = response.json
    assert invoice["status"] == "open"
    assert re.fullmatch(r"[0-9A-F]{8}-0001", invoice["number"])
    assert invoice["status_transitions"]["finalized_at"] >= before
    assert invoice["effective_at"] == invoice["status_transitions"]["finalized_at"]
    assert (invoice["amount_due"], invoice["amount_remaining"], invoice["ending_balance"]) == (
        1299,
        1299,
        0,
    )
    row = invoice_row(db, draft["id"])
    assert (row["status"], row["number"], row["total"]) == ("open", invoice["number"], 1299)
    finalized = events_of(db, draft["id"])[-1]
    assert finalized["type"] == "invoice.finalized"
    assert finalized["data"]["object"]["status"] == "open"
    assert "payments" not in finalized["data"]["object"]

    # the total is frozen: no more items, no monetary updates
    late = api.post(
        "/v1/invoiceitems",
        {"customer": cus["id"], "amount": 1, "currency": "usd", "invoice": draft["id"]},
    )
    assert late.status_code == 400
    assert (
        api.post(f"/v1/invoices/{draft['id']}", {"collection_method": "send_invoice"}).status_code
        == 400
    )
    assert api.post(f"/v1/invoices/{draft['id']}", {"metadata[ref]": "x"}).status_code == 200
    assert invoice_row(db, draft["id"])["total"] == 1299

    second = open_invoice(api, 5, cus)
    assert second["number"] == invoice["number"][:-4] + "0002"


def test_zero_total_invoice_finalizes_straight_to_paid(api, db):
    cus = new_customer(api)
    draft = api.post("/v1/invoices", {"customer": cus["id"]}).json

    response = api.post(f"/v1/invoices/{draft['id']}/finalize")

    assert response.status_code == 200, response.json
    body = response.json
    assert (body["status"], body["amount_paid"], body["amount_remaining"]) == ("paid", 0, 0)
    transitions = body["status_transitions"]
    assert transitions["paid_at"] == transitions["finalized_at"] is not None
    row = invoice_row(db, draft["id"])
    assert (row["status"], row["paid_at"]) == ("paid", transitions["paid_at"])
    assert [e["type"] for e in events_of(db, draft["id"])] == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]


def _invoice_in(api: Any, status: str) -> dict[str, Any]:
    if status == "draft":
        cus = new_customer(api)
        add_item(api, cus["id"], 1000)
        return api.post(
            "/v1/invoices", {"customer": cus["id"], "pending_invoice_items_behavior": "include"}
        ).json
    invoice = open_invoice(api, 1000)
    moves = {
        "paid": ("pay", {"paid_out_of_band": "true"}),
        "void": ("void", {}),
        "uncollectible": ("mark_uncollectible", {}),
    }
    if status in moves:
        action, params = moves[status]
        moved = api.post(f"/v1/invoices/{invoice['id']}/{action}", params)
        assert moved.status_code == 200, moved.json
        invoice = moved.json
    assert invoice["status"] == status
    return invoice


# (status before, action) -> status after, or None when refused.
TRANSITIONS = {
    ("draft", "finalize"): "open",
    ("draft", "void"): None,
    ("draft", "mark_uncollectible"): None,
    ("draft", "pay"): None,
    ("open", "finalize"): None,
    ("open", "void"): "void",
    ("open", "mark_uncollectible"): "uncollectible",
    ("open", "pay"): "paid",
    ("paid", "finalize"): None,
    ("paid", "void"): None,
    ("paid", "mark_uncollectible"): None,
    ("paid", "pay"): None,
    ("void", "finalize"): None,
    ("void", "void"): None,
    ("void", "mark_uncollectible"): None,
    ("void", "pay"): None,
    ("uncollectible", "finalize"): None,
    ("uncollectible", "void"): "void",
    ("uncollectible", "mark_uncollectible"): None,
    ("uncollectible", "pay"): "paid",
}


@pytest.mark.parametrize(
    ("status", "action"), list(TRANSITIONS), ids=[f"{s}-{a}" for s, a in TRANSITIONS]
)
def test_status_moves(api, db, status, action):
    invoice = _invoice_in(api, status)
    events_before = len(events_of(db, invoice["id"]))
    params = {"paid_out_of_band": "true"} if action == "pay" else {}

    response = api.post(f"/v1/invoices/{invoice['id']}/{action}", params)

    expected = TRANSITIONS[(status, action)]
    row = invoice_row(db, invoice["id"])
    if expected is None:
        assert response.status_code == 400, response.json
        assert response.json["error"]["type"] == "invalid_request_error"
        assert response.json["error"]["code"] == "invoice_not_editable"
        assert (
            status in response.json["error"]["message"]
            or "already" in response.json["error"]["message"]
        )
        assert row["status"] == status
        assert len(events_of(db, invoice["id"])) == events_before
    else:
        assert response.status_code == 200, response.json
        assert response.json["status"] == row["status"] == expected
        column = {
            "void": "voided_at",
            "uncollectible": "marked_uncollectible_at",
            "paid": "paid_at",
            "open": "finalized_at",
        }[expected]
        assert row[column] is not None
        assert response.json["status_transitions"][column] == row[column]
        assert len(events_of(db, invoice["id"])) > events_before


def test_status_moves_on_unknown_invoice_are_404(api):
    for action in ("finalize", "void", "mark_uncollectible", "pay"):
        params = {"paid_out_of_band": "true"} if action == "pay" else {}
        response = api.post(f"/v1/invoices/in_missing/{action}", params)
        assert response.status_code == 404
        assert response.json["error"]["code"] == "resource_missing"


def _attach_payment(api: Any, dsn: str, invoice: dict[str, Any], status: str) -> None:
    """A PaymentIntent of 500 attached through the API, then left open, paid or canceled."""
    pi = factories.payment_intent(api, invoice, 500)
    attached = api.post(
        f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}
    )
    assert attached.status_code == 200, attached.json
    if status == "paid":
        factories.settle(dsn, pi)
    elif status == "canceled":
        assert api.post(f"/v1/payment_intents/{pi['id']}/cancel").status_code == 200


@pytest.mark.parametrize(
    ("payment_status", "action", "allowed"),
    [
        ("open", "void", False),
        ("paid", "void", False),
        ("canceled", "void", True),
        ("open", "mark_uncollectible", False),
        ("paid", "mark_uncollectible", True),
        ("canceled", "mark_uncollectible", True),
    ],
)
def test_payments_block_void_and_uncollectible(
    api, db, service_urls, payment_status, action, allowed
):
    invoice = open_invoice(api, 1000)
    _attach_payment(api, service_urls["DATABASE_URL"], invoice, payment_status)

    response = api.post(f"/v1/invoices/{invoice['id']}/{action}")

    row = invoice_row(db, invoice["id"])
    if allowed:
        assert response.status_code == 200, response.json
        assert row["status"] != "open"
    else:
        assert response.status_code == 400
        assert response.json["error"]["code"] == "invoice_payment_in_progress"
        assert row["status"] == "open"


def test_pay_out_of_band_records_a_paid_payment_for_what_remains(api, db, service_urls):
    # given an invoice of 1000 with 500 credited through a PaymentIntent
    invoice = open_invoice(api, 1000)
    _attach_payment(api, service_urls["DATABASE_URL"], invoice, "paid")

    # when the rest is marked paid out of band
    response = api.post(
        f"/v1/invoices/{invoice['id']}/pay",
        {"paid_out_of_band": "true", "expand[]": "amount_paid_off_stripe"},
        {"Idempotency-Key": f"oob-{invoice['id']}"},
    )

    # then amount_paid counts it (Stripe basil): nothing remains, nothing is overpaid
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["status"], body["amount_paid"], body["amount_remaining"]) == ("paid", 1000, 0)
    assert body["amount_due"] == body["amount_paid"]
    assert body["amount_overpaid"] == 0
    assert body["amount_paid_off_stripe"] == 500
    assert "paid_out_of_band" not in body  # removed from the invoice in Stripe's 2025-03-31 API
    row = invoice_row(db, invoice["id"])
    assert (row["status"], row["amount_paid"], row["paid_out_of_band"]) == ("paid", 1000, True)
    assert row["paid_at"] == body["status_transitions"]["paid_at"]
    # as a guaranteed payment record of 500, attached and paid
    payments = api.get("/v1/invoice_payments", {"invoice": invoice["id"]}).json["data"]
    assert [(p["status"], p["amount_paid"], p["payment"]["type"]) for p in payments] == [
        ("paid", 500, "payment_record"),
        ("paid", 500, "payment_intent"),
    ]
    record = api.get(f"/v1/payment_records/{payments[0]['payment']['payment_record']}").json
    assert record["amount_guaranteed"] == {"currency": "usd", "value": 500}
    assert record["customer_details"]["customer"] == invoice["customer"]
    assert record["payment_method_details"]["type"] == "custom"
    paid_sum = db.execute(
        "SELECT sum(amount_paid) AS s FROM invoice_payments WHERE invoice = %s AND status = 'paid'",
        (invoice["id"],),
    ).fetchone()["s"]
    assert paid_sum == row["amount_paid"]
    assert not factories.breaches_of(db, invoice["id"])
    # and its events: the payment's, then invoice.updated and invoice.paid; no
    # payment_succeeded (no payment attempt) and no overpaid
    types = factories.invoice_events(db, invoice["id"])
    assert types[-3:] == ["invoice_payment.paid", "invoice.updated", "invoice.paid"]
    assert types.count("invoice.payment_succeeded") == 0
    events = events_of(db, invoice["id"])
    previous = events[-2]["data"]["previous_attributes"]
    assert previous["status"] == "open"
    assert (previous["amount_paid"], previous["amount_remaining"]) == (500, 500)
    assert previous["status_transitions"]["paid_at"] is None
    for event in events[-2:]:
        assert event["request_id"] == response.headers["Request-Id"]
        assert event["idempotency_key"] == f"oob-{invoice['id']}"
        assert event["data"]["object"]["status"] == "paid"
        assert "amount_paid_off_stripe" not in event["data"]["object"]


def test_amount_paid_off_stripe_is_includable_and_sums_paid_payment_records(api, service_urls):
    invoice = open_invoice(api, 1000)
    _attach_payment(api, service_urls["DATABASE_URL"], invoice, "paid")
    assert "amount_paid_off_stripe" not in api.get(f"/v1/invoices/{invoice['id']}").json
    expand = {"expand[]": "amount_paid_off_stripe"}
    assert api.get(f"/v1/invoices/{invoice['id']}", expand).json["amount_paid_off_stripe"] == 0
    record = api.post(
        "/v1/payment_records/report_payment",
        {
            "amount_requested[value]": 300,
            "amount_requested[currency]": "usd",
            "customer_details[customer]": invoice["customer"],
            "initiated_at": 1_700_000_000,
            "outcome": "guaranteed",
        },
    ).json
    attached = api.post(
        f"/v1/invoices/{invoice['id']}/attach_payment",
        {"payment_record": record["id"], "expand[0]": "amount_paid_off_stripe"},
    )
    assert attached.status_code == 200, attached.json
    assert attached.json["amount_paid_off_stripe"] == 300
    assert attached.json["amount_paid"] == 800
    nested = api.get(f"/v1/invoices/{invoice['id']}", {"expand[]": "amount_paid_off_stripe.x"})
    assert nested.status_code == 400
    assert nested.json["error"]["param"] == "expand"


def _ledger_snapshot(db: Any, invoice_id: str) -> dict[str, Any]:
    return {
        "invoice": invoice_row(db, invoice_id),
        "payments": db.execute(
            "SELECT * FROM invoice_payments WHERE invoice = %s ORDER BY seq", (invoice_id,)
        ).fetchall(),
        "records": db.execute("SELECT count(*) AS n FROM payment_records").fetchone()["n"],
        "events": db.execute("SELECT count(*) AS n FROM events").fetchone()["n"],
    }


def test_pay_out_of_band_is_refused_while_a_payment_is_open(api, db, service_urls):
    # given an invoice with an open PaymentIntent payment
    invoice = open_invoice(api, 1000)
    pi = factories.payment_intent(api, invoice, 500)
    attached = api.post(
        f"/v1/invoices/{invoice['id']}/attach_payment",
        {"payment_intent": pi["id"], "expand[]": "payments"},
    )
    inpay = attached.json["payments"]["data"][0]["id"]
    before = _ledger_snapshot(db, invoice["id"])

    # when it is marked paid out of band
    response = api.post(f"/v1/invoices/{invoice['id']}/pay", {"paid_out_of_band": "true"})

    # then a 400 naming the open payment and what to do, and nothing changed
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invoice_payment_in_progress"
    assert error["param"] == "paid_out_of_band"
    assert inpay in error["message"] and pi["id"] in error["message"]
    assert "Cancel" in error["message"]
    assert _ledger_snapshot(db, invoice["id"]) == before

    # and once that payment is canceled, it can be
    assert api.post(f"/v1/payment_intents/{pi['id']}/cancel").status_code == 200
    paid = api.post(f"/v1/invoices/{invoice['id']}/pay", {"paid_out_of_band": "true"})
    assert paid.status_code == 200, paid.json
    assert (paid.json["amount_paid"], paid.json["amount_remaining"]) == (1000, 0)


@pytest.mark.parametrize("params", [{}, {"paid_out_of_band": "false"}])
def test_pay_without_paid_out_of_band_is_refused(api, db, params):
    invoice = open_invoice(api, 1000)
    response = api.post(f"/v1/invoices/{invoice['id']}/pay", params)
    assert response.status_code == 400
    assert response.json["error"]["param"] == "paid_out_of_band"
    assert invoice_row(db, invoice["id"])["status"] == "open"


def test_list_filters_by_customer_and_status_newest_first(api):
    cus = new_customer(api)
    first = open_invoice(api, 100, cus)
    second = api.post("/v1/invoices", {"customer": cus["id"]}).json
    third = open_invoice(api, 300, cus)

    everything = api.get("/v1/invoices", {"customer": cus["id"]}).json
    opened = api.get("/v1/invoices", {"customer": cus["id"], "status": "open"}).json
    paged = api.get("/v1/invoices", {"customer": cus["id"], "limit": 1}).json

    assert [i["id"] for i in everything["data"]] == [third["id"], second["id"], first["id"]]
    assert everything["url"] == "/v1/invoices"
    assert [i["id"] for i in opened["data"]] == [third["id"], first["id"]]
    assert paged["has_more"] is True and paged["data"][0]["lines"]["data"][0]["amount"] == 300
    bad = api.get("/v1/invoices", {"status": "pending"})
    assert bad.status_code == 400 and bad.json["error"]["param"] == "status"


def test_lines_endpoint_pages_by_line_id(api):
    cus = new_customer(api)
    draft = api.post("/v1/invoices", {"customer": cus["id"]}).json
    for amount in (1, 2, 3):
        add_item(api, cus["id"], amount, invoice=draft["id"])

    first = api.get(f"/v1/invoices/{draft['id']}/lines", {"limit": 2}).json
    rest = api.get(
        f"/v1/invoices/{draft['id']}/lines", {"starting_after": first["data"][-1]["id"]}
    ).json
    back = api.get(
        f"/v1/invoices/{draft['id']}/lines", {"ending_before": rest["data"][0]["id"]}
    ).json

    assert first["object"] == "list" and first["url"] == f"/v1/invoices/{draft['id']}/lines"
    assert [line["amount"] for line in first["data"]] == [3, 2]
    assert first["has_more"] is True
    assert [line["amount"] for line in rest["data"]] == [1]
    assert rest["has_more"] is False
    assert [line["amount"] for line in back["data"]] == [3, 2]
    assert api.get("/v1/invoices/in_missing/lines").status_code == 404


def test_invoice_embeds_ten_lines_and_says_there_are_more(api):
    cus = new_customer(api)
    draft = api.post("/v1/invoices", {"customer": cus["id"]}).json
    for amount in range(1, 12):
        add_item(api, cus["id"], amount, invoice=draft["id"])

    invoice = api.get(f"/v1/invoices/{draft['id']}").json

    assert invoice["total"] == sum(range(1, 12))
    assert len(invoice["lines"]["data"]) == 10
    assert invoice["lines"]["has_more"] is True


def test_test_key_cannot_see_live_invoice(api, live_api):
    live_invoice = open_invoice(live_api, 100)
    assert live_invoice["livemode"] is True

    for response in (
        api.get(f"/v1/invoices/{live_invoice['id']}"),
        api.get(f"/v1/invoices/{live_invoice['id']}/lines"),
        api.post(f"/v1/invoices/{live_invoice['id']}/void"),
        api.post(f"/v1/invoices/{live_invoice['id']}", {"description": "x"}),
    ):
        assert response.status_code == 404
        assert response.json["error"]["code"] == "resource_missing"
    listed = api.get("/v1/invoices", {"customer": live_invoice["customer"]}).json
    assert listed["data"] == []
    assert live_api.get(f"/v1/invoices/{live_invoice['id']}").json["id"] == live_invoice["id"]


def test_customer_expands(api):
    invoice = open_invoice(api, 100)
    body = api.get(f"/v1/invoices/{invoice['id']}", {"expand[]": "customer"}).json
    assert body["customer"]["object"] == "customer"
    assert body["customer"]["id"] == invoice["customer"]


def _seed_example() -> dict[str, Any]:
    """The invoice of the seed page: the JSON after its "Response" line."""
    if SEED_TEXT.exists():
        text = SEED_TEXT.read_text()
        body = re.split(r"^Response\s*$", text, maxsplit=1, flags=re.MULTILINE)[1]
        return json.loads(body)
    if SEED_JSON.exists():
        return json.loads(Path(SEED_JSON).read_text())
    pytest.skip("the seed page is not available")


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer"}.get(
        type(value), "null"
    )


def test_rendered_invoice_has_every_field_of_the_seed_with_its_type(api):
    seed = _seed_example()
    cus = new_customer(api)
    add_item(api, cus["id"], 1299, description="My First Invoice Item")
    draft = api.post(
        "/v1/invoices", {"customer": cus["id"], "pending_invoice_items_behavior": "include"}
    ).json
    invoice = api.post(f"/v1/invoices/{draft['id']}/finalize").json

    body = api.get(f"/v1/invoices/{invoice['id']}").json

    includable = {"payments"}
    assert "payments" not in body
    missing = set(seed) - set(body) - includable - SEED_FIELDS_GONE
    assert not missing, f"missing fields: {sorted(missing)}"
    for key, value in seed.items():
        if value is not None and key not in includable:
            assert _json_type(body[key]) == _json_type(value), key
    seed_line = seed["lines"]["data"][0]
    line = body["lines"]["data"][0]
    assert set(seed_line) <= set(line)
    for key, value in seed_line.items():
        if value is not None:
            assert _json_type(line[key]) == _json_type(value), f"lines.data[].{key}"
    assert set(seed["status_transitions"]) == set(body["status_transitions"])


def test_concurrent_finalizations_get_distinct_numbers_and_void_races_pay(api, server):
    # given four drafts of one customer, and one open invoice
    cus = new_customer(api)
    drafts = []
    for amount in (1, 2, 3, 4):
        add_item(api, cus["id"], amount)
        drafts.append(
            api.post(
                "/v1/invoices", {"customer": cus["id"], "pending_invoice_items_behavior": "include"}
            ).json
        )
    contested = open_invoice(api, 100)
    headers = {"Authorization": f"Bearer {TEST_KEY}"}
    barrier = threading.Barrier(len(drafts) + 2)

    def post(path: str, data: dict[str, str] | None = None) -> Any:
        barrier.wait()
        return requests.post(f"{server}{path}", data=data or {}, headers=headers, timeout=10)

    # when they are finalized, and the open one voided and paid, all at once
    calls = [lambda d=d: post(f"/v1/invoices/{d['id']}/finalize") for d in drafts]
    calls.append(lambda: post(f"/v1/invoices/{contested['id']}/void"))
    calls.append(lambda: post(f"/v1/invoices/{contested['id']}/pay", {"paid_out_of_band": "true"}))
    with ThreadPoolExecutor(len(calls)) as pool:
        responses = list(pool.map(lambda fn: fn(), calls))

    # then every number is distinct and exactly one of void/pay won
    finalized = responses[: len(drafts)]
    assert all(r.status_code == 200 for r in finalized), [r.json() for r in finalized]
    numbers = sorted(r.json()["number"] for r in finalized)
    assert [n[-4:] for n in numbers] == ["0001", "0002", "0003", "0004"]
    assert sorted(r.status_code for r in responses[len(drafts) :]) == [200, 400]


def test_list_embeds_each_invoices_own_lines(api):
    # given two drafts of one customer: one with 11 items, one with a single item
    cus = new_customer(api)
    for amount in range(1, 12):
        add_item(api, cus["id"], amount)
    many = api.post(
        "/v1/invoices", {"customer": cus["id"], "pending_invoice_items_behavior": "include"}
    ).json
    add_item(api, cus["id"], 500)
    one = api.post(
        "/v1/invoices", {"customer": cus["id"], "pending_invoice_items_behavior": "include"}
    ).json

    # when listed together
    listed = {i["id"]: i for i in api.get("/v1/invoices", {"customer": cus["id"]}).json["data"]}

    # then each shows its own lines, newest first, ten at most, as retrieve does
    assert [line["amount"] for line in listed[one["id"]]["lines"]["data"]] == [500]
    assert listed[one["id"]]["lines"]["has_more"] is False
    assert [line["amount"] for line in listed[many["id"]]["lines"]["data"]] == list(
        range(11, 1, -1)
    )
    assert listed[many["id"]]["lines"]["has_more"] is True
    for invoice_id, body in listed.items():
        assert body == api.get(f"/v1/invoices/{invoice_id}").json
