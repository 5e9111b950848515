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
