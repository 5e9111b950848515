"""/v1/payment_records: reported out-of-band payments."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("outcome", ["guaranteed", "failed"])
def test_an_outcome_time_beyond_any_timestamp_is_a_400_not_a_500(api, outcome):
    # given a report whose outcome time does not fit a timestamp column
    # (found by schemathesis: guaranteed_at=106573441772356960256 was a 500)
    params = {
        "amount_requested[value]": 100,
        "amount_requested[currency]": "usd",
        "initiated_at": 1_700_000_000,
        "outcome": outcome,
        f"{outcome}[{outcome}_at]": 10**20,
    }

    # when it is reported
    response = api.post("/v1/payment_records/report_payment", params)

    # then it is refused, naming the parameter
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == f"{outcome}[{outcome}_at]"
