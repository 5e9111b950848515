"""A consumer that knows only Tally's webhook deliveries (verified with the stripe SDK,
applied in the order they arrive) ends up holding every customer, invoice, invoice
item, PaymentIntent and paid invoice payment Tally holds, equal to what the API
returns. Through the real pipeline: API, signed Stripe webhooks, the worker crediting
and publishing, the deliveries batches."""

# The pipeline fixtures are imported by name and requested as parameters.

from __future__ import annotations

from typing import Any

from devtools.stripe_events import stripe_event
from tests import factories
from tests.pipeline_support import Receiver, send_event, wait_for

# Where the API shows each mirrored object, by its object type.
PATHS = {
    "customer": "/v1/customers",
    "invoice": "/v1/invoices",
    "invoiceitem": "/v1/invoiceitems",
    "payment_intent": "/v1/payment_intents",
    "invoice_payment": "/v1/invoice_payments",
}


def mirror(received: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any] | None]:
    """What the consumer holds: each object's latest snapshot, None once deleted."""
    held: dict[tuple[str, str], dict[str, Any] | None] = {}
    for delivery in received:
        event = delivery["event"]
        obj = event["data"]["object"]
        if obj.get("object") in PATHS:
            deleted = event["type"].endswith(".deleted")
            held[(obj["object"], obj["id"])] = None if deleted else obj
    return held


def _delivered_all(db: Any, receiver: Receiver) -> bool:
    row = db.execute(
        "SELECT count(*) FILTER (WHERE status <> 'succeeded') AS left, count(*) AS all"
        " FROM webhook_deliveries WHERE endpoint_id = %s",
        (receiver.endpoint_id,),  # type: ignore[attr-defined]
    ).fetchone()
    return row["left"] == 0 and len(receiver.event_ids()) >= row["all"]


def test_a_consumer_of_the_deliveries_holds_what_the_api_returns(
    papi, db, worker, receiver, pipeline_server
):
    # given every kind of change, from the API and from Stripe's webhooks
    cus = factories.customer(papi, name="Mirror")
    assert papi.post(f"/v1/customers/{cus['id']}", {"phone": "+15550100"}).status_code == 200
    assert papi.post(f"/v1/customers/{cus['id']}", {"balance": -300}).status_code == 200
    gone = factories.customer(papi)
    assert papi.delete(f"/v1/customers/{gone['id']}").status_code == 200
    items = [
        papi.post("/v1/invoiceitems", {"customer": cus["id"], "amount": a, "currency": "usd"}).json
        for a in (400, 500, 600)
    ]
    assert papi.post(f"/v1/invoiceitems/{items[0]['id']}", {"quantity": 2}).status_code == 200
    assert papi.delete(f"/v1/invoiceitems/{items[1]['id']}").status_code == 200
    draft = papi.post(
        "/v1/invoices", {"customer": cus["id"], "pending_invoice_items_behavior": "include"}
    ).json
    doomed = factories.draft_invoice(papi, 70, cus=cus)
    assert papi.delete(f"/v1/invoices/{doomed['id']}").status_code == 200
    invoice = factories.finalize(papi, draft["id"])
    pi = factories.payment_intent(papi, invoice, invoice["amount_due"])
    attached = papi.post(
        f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}
    )
    assert attached.status_code == 200, attached.json
    for event_type in ("payment_intent.processing", "payment_intent.succeeded"):
        assert send_event(pipeline_server, stripe_event(pi, event_type)) == 200
    voided = factories.open_invoice(papi, 300, cus=cus)
    assert papi.post(f"/v1/invoices/{voided['id']}/void").status_code == 200
    canceled = factories.payment_intent(papi, voided, 100)
    assert papi.post(f"/v1/payment_intents/{canceled['id']}/cancel").status_code == 200

    # when the worker has credited the invoice and every delivery has arrived
    wait_for(lambda: papi.get(f"/v1/invoices/{invoice['id']}").json["status"] == "paid", 30, "paid")
    wait_for(lambda: _delivered_all(db, receiver), 60, "every delivery")
    assert receiver.rejected == []
    held = mirror(receiver.received)

    # then the consumer holds every object, each as the API returns it
    [payment] = papi.get("/v1/invoice_payments", {"invoice": invoice["id"]}).json["data"]
    assert set(held) >= {
        ("customer", cus["id"]),
        ("customer", gone["id"]),
        ("invoice", invoice["id"]),
        ("invoice", doomed["id"]),
        ("invoice", voided["id"]),
        *(("invoiceitem", item["id"]) for item in items),
        ("payment_intent", pi["id"]),
        ("payment_intent", canceled["id"]),
        ("invoice_payment", payment["id"]),
    }
    for (kind, object_id), obj in held.items():
        response = papi.get(f"{PATHS[kind]}/{object_id}")
        if obj is None and kind == "customer":  # Stripe shows a deleted customer
            assert response.json == {"id": object_id, "object": "customer", "deleted": True}
        elif obj is None:
            assert response.status_code == 404, object_id
        else:
            assert response.status_code == 200, object_id
            assert obj == response.json, object_id
