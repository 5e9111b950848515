"""A consumer that knows only Tally's events ends up with the invoices, invoice items
and PaymentIntents Tally holds, equal to what the API returns: every change of them,
from the API or from Stripe's webhooks, has its event carrying the object after it."""

from __future__ import annotations

from typing import Any

from devtools.stripe_events import stripe_event
from tests import factories
from tests.factories import receive, stripes

# Where the API shows each object the consumer mirrors, by its id's prefix.
PATHS = {"in": "/v1/invoices", "ii": "/v1/invoiceitems", "pi": "/v1/payment_intents"}
MIRRORED = ("invoice", "invoiceitem", "payment_intent")


def events_since(api: Any, first: str | None) -> list[dict[str, Any]]:
    """Every event after the event `first` (or all), oldest first, read page by page."""
    newest_first: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = api.get("/v1/events", params).json
        for event in page["data"]:
            if event["id"] == first:
                return newest_first[::-1]
            newest_first.append(event)
        if not page["has_more"]:
            return newest_first[::-1]
        params["starting_after"] = page["data"][-1]["id"]


def mirror(events: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """What a consumer holds after applying `events` in order: each object's latest
    snapshot by id, None once deleted."""
    held: dict[str, dict[str, Any] | None] = {}
    for event in events:
        obj = event["data"]["object"]
        if obj.get("object") in MIRRORED:
            held[obj["id"]] = None if event["type"].endswith(".deleted") else obj
    return held


def test_a_consumer_of_the_events_holds_what_the_api_returns(api, db, server, service_urls):
    dsn = service_urls["DATABASE_URL"]
    first = api.get("/v1/events", {"limit": 1}).json["data"]
    since = first[0]["id"] if first else None

    # given every kind of change to items, drafts, invoices and PaymentIntents
    cus = factories.customer(api)
    items = [
        api.post("/v1/invoiceitems", {"customer": cus["id"], "amount": a, "currency": "usd"}).json
        for a in (400, 500, 600)
    ]
    draft = api.post(
        "/v1/invoices",
        {"customer": cus["id"], "currency": "usd", "pending_invoice_items_behavior": "include"},
    ).json
    added = api.post(
        "/v1/invoiceitems",
        {"customer": cus["id"], "amount": 50, "currency": "usd", "invoice": draft["id"]},
    ).json
    assert api.post(f"/v1/invoiceitems/{items[0]['id']}", {"quantity": 3}).status_code == 200
    assert api.delete(f"/v1/invoiceitems/{items[1]['id']}").status_code == 200
    assert api.post(f"/v1/invoices/{draft['id']}", {"description": "Mirror"}).status_code == 200
    doomed = factories.draft_invoice(api, 70, cus=cus)
    assert api.delete(f"/v1/invoices/{doomed['id']}").status_code == 200
    assert api.post(f"/v1/invoiceitems/{added['id']}", {"metadata[k]": "v"}).status_code == 200
    invoice = factories.finalize(api, draft["id"])
    pi = factories.payment_intent(api, invoice, invoice["amount_due"])
    attach = api.post(f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]})
    assert attach.status_code == 200, attach.json
    for event_type in ("payment_intent.processing", "payment_intent.succeeded"):
        receive(server, dsn, stripe_event(pi, event_type))
    receive(server, dsn, stripe_event(pi, "payment_intent.succeeded"))
    theirs = stripes(900, customer=cus["id"])
    for event_type in ("payment_intent.requires_action", "payment_intent.canceled"):
        receive(server, dsn, stripe_event(theirs, event_type))
    voided = factories.open_invoice(api, 300, cus=cus)
    assert api.post(f"/v1/invoices/{voided['id']}/void").status_code == 200
    mine = factories.payment_intent(api, voided, 100)
    assert api.post(f"/v1/payment_intents/{mine['id']}/cancel").status_code == 200

    # when a consumer applies the events in order
    held = mirror(events_since(api, since))

    # then it holds each object as the API returns it, and none that was deleted
    assert api.get(f"/v1/invoices/{invoice['id']}").json["status"] == "paid"
    assert set(held) >= {invoice["id"], doomed["id"], pi["id"], theirs["id"], mine["id"]}
    assert set(held) >= {item["id"] for item in [*items, added]}
    for object_id, obj in held.items():
        response = api.get(f"{PATHS[object_id.split('_')[0]]}/{object_id}")
        if obj is None:
            assert response.status_code == 404, object_id
        else:
            assert response.status_code == 200, object_id
            assert obj == response.json, object_id
