"""`expand` turns only the id fields Stripe documents as expandable into objects."""

from __future__ import annotations

import pytest

from tests import factories


@pytest.mark.parametrize("path", ["id", "description", "data.id"])
def test_expand_refuses_fields_that_merely_hold_an_id(api, path):
    # given an invoice whose description happens to be a customer's id
    cus = factories.customer(api)
    invoice = api.post("/v1/invoices", {"customer": cus["id"], "description": cus["id"]}).json
    url = "/v1/invoices" if path.startswith("data.") else f"/v1/invoices/{invoice['id']}"

    # when that field is expanded
    response = api.get(url, {"expand[]": path})

    # then it is refused, as Stripe refuses it, instead of swapping in an object
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == "expand"


def test_expand_reaches_ids_inside_a_payment_hash(api):
    invoice = factories.open_invoice(api, 1000)
    pi = factories.payment_intent(api, invoice, 400)
    api.post(f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]})

    body = api.get(
        f"/v1/invoices/{invoice['id']}",
        {"expand[]": "payments.data.payment.payment_intent"},
    ).json

    assert body["payments"]["data"][0]["payment"]["payment_intent"]["id"] == pi["id"]


@pytest.mark.parametrize("listed", [False, True])
def test_expanding_into_event_data_is_a_400_not_a_500(api, listed):
    # given an event, whose `data` holds an `object` that is a hash, not a type name
    factories.open_invoice(api, 100)
    event = api.get("/v1/events", {"limit": 1}).json["data"][0]

    # when a path through it is expanded (found by schemathesis: a TypeError, 500)
    if listed:
        response = api.get("/v1/events", {"expand[]": "data.data.customer"})
    else:
        response = api.get(f"/v1/events/{event['id']}", {"expand[]": "data.customer"})

    # then it is refused as any unexpandable path is
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == "expand"
