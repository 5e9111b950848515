"""Stripe's bracket form encoding, decoded into parameters."""

from __future__ import annotations

import pytest

from service.api.params import decode_form
from tests import factories


def test_indexed_values_become_lists_but_parameters_stay_named():
    assert decode_form([("expand[0]", "a"), ("expand[1]", "b")]) == {"expand": ["a", "b"]}
    assert decode_form([("0", "false")]) == {"0": "false"}


@pytest.mark.parametrize("body", ["0=false", "0=null", "0[a]=1"])
def test_a_parameter_named_by_a_number_is_an_unknown_parameter_not_a_500(api, body):
    # given an invoice (found by schemathesis: `0=false` made the body a list, a 500)
    invoice = factories.open_invoice(api, 100)

    # when a body names a parameter by a number alone
    response = api.client.post(
        f"/v1/invoices/{invoice['id']}/void",
        data=body,
        headers={**api._headers(None), "Content-Type": "application/x-www-form-urlencoded"},
    )

    # then it is refused as any unknown parameter is
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "parameter_unknown"
    assert response.json["error"]["param"] == "0"


def test_a_query_parameter_named_by_a_number_is_an_unknown_parameter(api):
    response = api.get("/v1/invoices", {"0": "x"})

    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == "0"
