"""Invoice items updated and deleted while pending or on a draft, drafts deleted, and
the events of each (driven by the stripe SDK where it has the method)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe

from tests import factories
from tests.conftest import TEST_KEY
from tests.factories import delivered_to


@pytest.fixture
def client(server: str) -> stripe.StripeClient:
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)


@pytest.fixture
def endpoint(api: Any) -> Iterator[dict[str, Any]]:
    """A webhook endpoint subscribed to the types these changes write, removed after."""
    response = api.post(
        "/v1/webhook_endpoints",
        {
            "url": "http://127.0.0.1:9/hook",
            "enabled_events[0]": "invoiceitem.updated",
            "enabled_events[1]": "invoiceitem.deleted",
            "enabled_events[2]": "invoice.deleted",
        },
    )
    assert response.status_code == 200, response.json
    yield response.json
    assert api.delete(f"/v1/webhook_endpoints/{response.json['id']}").status_code == 200


def events_of(db: Any, *object_ids: str, after: int = 0) -> list[dict[str, Any]]:
    """The events whose object is one of `object_ids`, oldest first (those written
    after the position `after`, from last_event)."""
    return db.execute(
        """
        SELECT id, type, data, request_id, idempotency_key FROM events
        WHERE data->'object'->>'id' = ANY(%s) AND seq > %s ORDER BY seq
        """,
        (list(object_ids), after),
    ).fetchall()


def last_event(db: Any) -> int:
    """The position of the newest event written so far."""
    return db.execute("SELECT coalesce(max(seq), 0) AS seq FROM events").fetchone()["seq"]


def item_row(db: Any, item_id: str) -> dict[str, Any] | None:
    return db.execute(
        "SELECT invoice, line_id, amount, unit_amount, quantity, description, metadata"
        " FROM invoice_items WHERE id = %s",
        (item_id,),
    ).fetchone()


def invoice_row(db: Any, invoice_id: str) -> dict[str, Any] | None:
    return db.execute("SELECT status, total FROM invoices WHERE id = %s", (invoice_id,)).fetchone()


def assert_missing(api: Any, path: str) -> None:
    """GET `path` is Stripe's 404 for an object that is no more."""
    response = api.get(path)
    assert response.status_code == 404, response.json
    assert response.json["error"]["code"] == "resource_missing"


def pending_item(api: Any, cus: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = api.post("/v1/invoiceitems", {"customer": cus["id"], "currency": "usd", **params})
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


def test_sdk_modifies_a_draft_item_and_the_draft_total_follows(client, api, db, endpoint):
    # given a draft with two items
    cus = factories.customer(api)
    first = pending_item(api, cus, amount=1000, description="Seats")
    pending_item(api, cus, amount=500)
    draft = api.post(
        "/v1/invoices",
        {"customer": cus["id"], "currency": "usd", "pending_invoice_items_behavior": "include"},
    ).json
    assert draft["total"] == 1500
    before = last_event(db)

    # when
    item = client.v1.invoice_items.update(
        first["id"],
        params={"unit_amount": 300, "quantity": 4, "metadata": {"seat": "4"}},
        options={"idempotency_key": f"seats-{first['id']}"},
    )

    # then the item and the draft's total changed
    assert (item.amount, item.quantity, item.invoice) == (1200, 4, draft["id"])
    assert item.metadata.to_dict() == {"seat": "4"}
    assert item_row(db, first["id"])["amount"] == 1200
    assert invoice_row(db, draft["id"]) == {"status": "draft", "total": 1700}
    invoice = api.get(f"/v1/invoices/{draft['id']}").json
    assert (invoice["total"], invoice["amount_due"]) == (1700, 1700)
    # and the events say what moved, carrying the request and its key
    written = events_of(db, first["id"], draft["id"], after=before)
    assert [e["type"] for e in written] == ["invoiceitem.updated", "invoice.updated"]
    item_event, invoice_event = written
    assert item_event["data"]["object"] == api.get(f"/v1/invoiceitems/{first['id']}").json
    assert item_event["data"]["previous_attributes"]["amount"] == 1000
    assert item_event["data"]["previous_attributes"]["quantity"] == 1
    assert item_event["data"]["previous_attributes"]["metadata"] == {}
    assert invoice_event["data"]["previous_attributes"]["total"] == 1500
    assert invoice_event["data"]["object"]["total"] == 1700
    assert "payments" not in invoice_event["data"]["object"]
    assert {e["idempotency_key"] for e in written} == {f"seats-{first['id']}"}
    assert all(e["request_id"].startswith("req_") for e in written)
    assert delivered_to(db, endpoint["id"], item_event["id"])
    listed = api.get("/v1/events", {"type": "invoiceitem.updated", "limit": 100}).json["data"]
    assert item_event["id"] in [e["id"] for e in listed]


def test_modifying_a_pending_item_quantity_multiplies_its_unit_amount(api, db):
    cus = factories.customer(api)
    item = pending_item(api, cus, unit_amount=250, quantity=2)

    response = api.post(f"/v1/invoiceitems/{item['id']}", {"quantity": 5, "description": "x"})

    assert response.status_code == 200, response.json
    assert (response.json["amount"], response.json["quantity"]) == (1250, 5)
    assert item_row(db, item["id"])["amount"] == 1250
    written = events_of(db, item["id"])
    assert [e["type"] for e in written] == ["invoiceitem.created", "invoiceitem.updated"]
    previous = written[1]["data"]["previous_attributes"]
    assert (previous["amount"], previous["description"], previous["quantity"]) == (500, None, 2)
    assert "unit_amount_decimal" not in previous  # the unit amount did not move


def test_modifying_an_item_with_what_it_already_has_writes_no_event(api, db):
    cus = factories.customer(api)
    item = pending_item(api, cus, amount=700, description="Same")

    response = api.post(f"/v1/invoiceitems/{item['id']}", {"amount": 700, "description": "Same"})

    assert response.status_code == 200, response.json
    assert [e["type"] for e in events_of(db, item["id"])] == ["invoiceitem.created"]


def test_sdk_deletes_a_pending_item(client, api, db, endpoint):
    cus = factories.customer(api)
    item = pending_item(api, cus, amount=900, description="Gone")

    deleted = client.v1.invoice_items.delete(item["id"])

    assert (deleted.id, deleted.object, deleted.deleted) == (item["id"], "invoiceitem", True)
    assert item_row(db, item["id"]) is None
    assert_missing(api, f"/v1/invoiceitems/{item['id']}")
    written = events_of(db, item["id"])
    assert [e["type"] for e in written] == ["invoiceitem.created", "invoiceitem.deleted"]
    assert written[1]["data"]["object"] == item
    assert "previous_attributes" not in written[1]["data"]
    assert delivered_to(db, endpoint["id"], written[1]["id"])


def test_deleting_a_draft_item_lowers_the_draft_total(api, db):
    cus = factories.customer(api)
    draft = factories.draft_invoice(api, 1000, cus=cus)
    extra = api.post(
        "/v1/invoiceitems",
        {"customer": cus["id"], "amount": 250, "currency": "usd", "invoice": draft["id"]},
    ).json

    response = api.delete(f"/v1/invoiceitems/{extra['id']}")

    assert response.status_code == 200, response.json
    assert response.json == {"id": extra["id"], "object": "invoiceitem", "deleted": True}
    assert invoice_row(db, draft["id"]) == {"status": "draft", "total": 1000}
    invoice = api.get(f"/v1/invoices/{draft['id']}").json
    assert extra["id"] not in [
        line["parent"]["invoice_item_details"]["invoice_item"] for line in invoice["lines"]["data"]
    ]
    updated = [e for e in events_of(db, draft["id"]) if e["type"] == "invoice.updated"][-1]
    assert updated["data"]["previous_attributes"]["total"] == 1250
    assert updated["data"]["object"]["total"] == 1000


@pytest.mark.parametrize("status", ["open", "paid", "void"])
def test_items_of_a_finalized_invoice_cannot_change(api, db, status):
    # given an item on an invoice that is no longer a draft
    invoice = factories.open_invoice(api, 1000)
    if status == "paid":
        api.post(f"/v1/invoices/{invoice['id']}/pay", {"paid_out_of_band": "true"})
    elif status == "void":
        api.post(f"/v1/invoices/{invoice['id']}/void")
    item_id = invoice["lines"]["data"][0]["parent"]["invoice_item_details"]["invoice_item"]
    before = (item_row(db, item_id), invoice_row(db, invoice["id"]), len(events_of(db, item_id)))

    # when
    updated = api.post(f"/v1/invoiceitems/{item_id}", {"amount": 1})
    deleted = api.delete(f"/v1/invoiceitems/{item_id}")

    # then both are refused, naming what was refused, and nothing changed
    for response in (updated, deleted):
        assert response.status_code == 400, response.json
        assert response.json["error"]["type"] == "invalid_request_error"
        assert response.json["error"]["code"] == "invoice_not_editable"
    assert updated.json["error"]["param"] == "amount"
    after = (item_row(db, item_id), invoice_row(db, invoice["id"]), len(events_of(db, item_id)))
    assert after == before
    assert invoice_row(db, invoice["id"])["status"] == status


@pytest.mark.parametrize(
    ("params", "param"),
    [
        pytest.param({"amount": 100_000_000}, "amount", id="amount-too-big"),
        pytest.param({"amount": "1.5"}, "amount", id="fractional-amount"),
        pytest.param({"quantity": 0}, "quantity", id="quantity-0"),
        pytest.param({"amount": 100, "unit_amount": 100}, "unit_amount", id="both"),
        pytest.param({"amount": 100, "quantity": 3}, "quantity", id="amount-with-quantity"),
        pytest.param({"unit_amount": 50_000_000, "quantity": 3}, "quantity", id="too-big"),
        pytest.param({"description": "x" * 501}, "description", id="long-description"),
        pytest.param({"invoice": "in_123"}, "invoice", id="invoice-not-updatable"),
        pytest.param({"currency": "eur"}, "currency", id="currency-not-updatable"),
        pytest.param({"colour": "red"}, "colour", id="unknown"),
    ],
)
def test_invalid_update_is_refused_naming_the_param(api, db, params, param):
    cus = factories.customer(api)
    item = pending_item(api, cus, unit_amount=200, quantity=2)
    before = item_row(db, item["id"])

    response = api.post(f"/v1/invoiceitems/{item['id']}", params)

    factories.refused(response, param)
    assert item_row(db, item["id"]) == before
    assert [e["type"] for e in events_of(db, item["id"])] == ["invoiceitem.created"]


def test_unknown_or_other_mode_item_is_404(api, live_api, db):
    live_item = pending_item(live_api, factories.customer(live_api), amount=100)

    for item_id in ("ii_missing", live_item["id"]):
        for response in (
            api.post(f"/v1/invoiceitems/{item_id}", {"amount": 5}),
            api.delete(f"/v1/invoiceitems/{item_id}"),
        ):
            assert response.status_code == 404, response.json
            assert response.json["error"]["code"] == "resource_missing"
            assert response.json["error"]["message"] == f"No such invoiceitem: '{item_id}'"
    assert item_row(db, live_item["id"])["amount"] == 100


def test_sdk_deletes_a_draft_and_its_items_become_pending(client, api, db, endpoint):
    # given a draft of two items
    cus = factories.customer(api)
    for amount in (300, 400):
        pending_item(api, cus, amount=amount)
    draft = api.post(
        "/v1/invoices",
        {"customer": cus["id"], "currency": "usd", "pending_invoice_items_behavior": "include"},
    ).json
    item_ids = [
        line["parent"]["invoice_item_details"]["invoice_item"] for line in draft["lines"]["data"]
    ]
    before = last_event(db)

    # when
    deleted = client.v1.invoices.delete(draft["id"])

    # then the draft is gone, and its items wait, pending, for the next invoice
    assert (deleted.id, deleted.object, deleted.deleted) == (draft["id"], "invoice", True)
    assert invoice_row(db, draft["id"]) is None
    assert_missing(api, f"/v1/invoices/{draft['id']}")
    for item_id in item_ids:
        row = item_row(db, item_id)
        assert (row["invoice"], row["line_id"]) == (None, None)
        assert api.get(f"/v1/invoiceitems/{item_id}").json["invoice"] is None
    pending = api.get("/v1/invoiceitems", {"customer": cus["id"], "pending": "true"}).json
    assert sorted(i["id"] for i in pending["data"]) == sorted(item_ids)
    # and the events: each item's move, then the draft as it was
    written = events_of(db, draft["id"], *item_ids, after=before)
    assert [e["type"] for e in written] == [
        "invoiceitem.updated",
        "invoiceitem.updated",
        "invoice.deleted",
    ]
    for event in written[:2]:
        assert event["data"]["previous_attributes"] == {"invoice": draft["id"]}
        assert event["data"]["object"]["invoice"] is None
    last = written[2]["data"]["object"]
    assert (last["id"], last["status"], last["total"]) == (draft["id"], "draft", 700)
    assert {e["request_id"] for e in written} == {written[0]["request_id"]}
    assert all(delivered_to(db, endpoint["id"], e["id"]) for e in written)
    # a deleted draft cannot be deleted, finalized or added to again
    again = api.delete(f"/v1/invoices/{draft['id']}")
    assert again.status_code == 404
    assert api.post(f"/v1/invoices/{draft['id']}/finalize").status_code == 404
    added = api.post(
        "/v1/invoiceitems",
        {"customer": cus["id"], "amount": 1, "currency": "usd", "invoice": draft["id"]},
    )
    factories.refused(added, "invoice")


@pytest.mark.parametrize("action", [None, "pay", "void", "mark_uncollectible"])
def test_only_a_draft_can_be_deleted(api, db, action):
    invoice = factories.open_invoice(api, 600)
    if action == "pay":
        api.post(f"/v1/invoices/{invoice['id']}/pay", {"paid_out_of_band": "true"})
    elif action is not None:
        api.post(f"/v1/invoices/{invoice['id']}/{action}")
    before = invoice_row(db, invoice["id"])
    events_before = len(events_of(db, invoice["id"]))

    response = api.delete(f"/v1/invoices/{invoice['id']}")

    assert response.status_code == 400, response.json
    assert response.json["error"]["type"] == "invalid_request_error"
    assert response.json["error"]["code"] == "invoice_not_editable"
    assert invoice_row(db, invoice["id"]) == before
    assert len(events_of(db, invoice["id"])) == events_before
    item_id = invoice["lines"]["data"][0]["parent"]["invoice_item_details"]["invoice_item"]
    assert item_row(db, item_id)["invoice"] == invoice["id"]


def test_delete_of_an_unknown_or_other_mode_invoice_is_404(api, live_api, db):
    live_draft = live_api.post(
        "/v1/invoices", {"customer": factories.customer(live_api)["id"]}
    ).json

    for invoice_id in ("in_missing", live_draft["id"]):
        response = api.delete(f"/v1/invoices/{invoice_id}")
        assert response.status_code == 404, response.json
        assert response.json["error"]["code"] == "resource_missing"
        assert response.json["error"]["message"] == f"No such invoice: '{invoice_id}'"
    assert invoice_row(db, live_draft["id"])["status"] == "draft"


def test_delete_takes_no_parameters(api, db):
    draft = factories.draft_invoice(api, 100)

    response = api.delete(f"/v1/invoices/{draft['id']}?colour=red")

    assert response.status_code == 400
    assert response.json["error"]["param"] == "colour"
    assert invoice_row(db, draft["id"]) == {"status": "draft", "total": 100}


def test_an_item_updated_while_its_draft_is_deleted_ends_pending_and_updated(api, db, server):
    # given drafts of one item each, and a thread pair per draft: one deletes the
    # draft while the other changes its item (whose lock follows the invoice's)
    headers = {"Authorization": f"Bearer {TEST_KEY}"}
    cases = []
    for _ in range(4):
        draft = factories.draft_invoice(api, 500)
        item_id = draft["lines"]["data"][0]["parent"]["invoice_item_details"]["invoice_item"]
        cases.append((draft["id"], item_id))
    before = last_event(db)

    # when each pair runs at the same instant
    calls = []
    for invoice_id, item_id in cases:
        calls.append(
            lambda i=invoice_id: requests.delete(
                f"{server}/v1/invoices/{i}", headers=headers, timeout=10
            )
        )
        calls.append(
            lambda i=item_id: requests.post(
                f"{server}/v1/invoiceitems/{i}", {"amount": 777}, headers=headers, timeout=10
            )
        )
    responses = factories.together(calls)

    # then both won, whatever the order: the draft is gone, its item pending and changed,
    # and the item's events say both moves
    assert [r.status_code for r in responses] == [200] * len(calls), [r.text for r in responses]
    for invoice_id, item_id in cases:
        assert invoice_row(db, invoice_id) is None
        row = item_row(db, item_id)
        assert (row["invoice"], row["line_id"], row["amount"]) == (None, None, 777)
        moves = [e["data"]["previous_attributes"] for e in events_of(db, item_id, after=before)]
        assert len(moves) == 2
        assert {"invoice": invoice_id} in moves
        assert [m["amount"] for m in moves if "amount" in m] == [500]


def test_a_draft_that_takes_pending_items_writes_their_move(client, api, db):
    # given two pending items, one in another currency
    cus = factories.customer(api)
    taken = pending_item(api, cus, amount=1200)
    left = api.post(
        "/v1/invoiceitems", {"customer": cus["id"], "amount": 300, "currency": "eur"}
    ).json

    # when a draft takes the customer's pending items in its currency
    draft = client.v1.invoices.create(
        params={
            "customer": cus["id"],
            "currency": "usd",
            "pending_invoice_items_behavior": "include",
        }
    )

    # then the item it took says so, after the draft's creation, with its request
    written = events_of(db, draft.id, taken["id"], left["id"])
    assert [(e["type"], e["data"]["object"]["id"]) for e in written] == [
        ("invoiceitem.created", taken["id"]),
        ("invoiceitem.created", left["id"]),
        ("invoice.created", draft.id),
        ("invoiceitem.updated", taken["id"]),
    ]
    moved = written[-1]
    assert moved["data"]["previous_attributes"] == {"invoice": None}
    assert moved["data"]["object"] == api.get(f"/v1/invoiceitems/{taken['id']}").json
    assert moved["data"]["object"]["invoice"] == draft.id
    assert moved["request_id"] == written[2]["request_id"]
