"""Odd values for every parameter of every endpoint: clear 4xx answers, never a 500."""

from __future__ import annotations

import json

import pytest

from tests import factories

# Nested past the 16 levels a parameter may take (service/api/params.py).
DEEP_OBJECT = json.loads('{"a": ' * 40 + "1" + "}" * 40)
DEEP_LIST = json.loads("[" * 40 + "]" * 40)
ODD_VALUES = [
    None, True, 1.5, -1, 10**30, "", "x" * 6000, [], {}, {"a": {"b": 1}}, "\x00", "in_x",
    10**400, -(10**400), DEEP_OBJECT, DEEP_LIST,
]  # fmt: skip
PARAMETERS = [
    "amount", "currency", "customer", "metadata", "expand", "invoice", "payment_intent",
    "payment_record", "limit", "starting_after", "description", "quantity", "unit_amount",
    "pending_invoice_items_behavior", "paid_out_of_band", "url", "enabled_events",
    "amount_requested", "initiated_at", "status", "type", "auto_advance", "due_date",
    "outcome", "guaranteed", "guaranteed_at", "failed_at", "canceled_at", "customer_details",
    "processor_details", "refunded",
]  # fmt: skip
ODD_FORMS = [
    "metadata[a][b]=1", "expand=payments", "expand[]=", "expand[0][x]=1", "amount[]=1",
    "a=%ZZ", "&&&", "=1", "metadata[]=1", "lines[0]=1",
    "metadata" + "[a]" * 3000 + "=1", "expand[" + "9" * 5000 + "]=x", "amount=" + "9" * 5000,
    "lines" + "[0]" * 3000 + "=1", "expand[²]=x",
]  # fmt: skip


@pytest.fixture(scope="module")
def paths(app):
    from tests.conftest import ApiClient

    api = ApiClient(app)
    invoice = factories.open_invoice(api, 100)
    pi = factories.payment_intent(api, invoice, 100)
    base = f"/v1/invoices/{invoice['id']}"
    record = api.post("/v1/payment_records/report_payment", {
        "amount_requested[value]": 100, "amount_requested[currency]": "usd",
        "initiated_at": 1_700_000_000,
    }).json["id"]  # fmt: skip
    records = f"/v1/payment_records/{record}"
    return [
        "/v1/customers", "/v1/invoiceitems", "/v1/invoices", base, f"{base}/finalize",
        f"{base}/attach_payment", f"{base}/pay", f"{base}/void", f"{base}/mark_uncollectible",
        "/v1/payment_intents", f"/v1/payment_intents/{pi['id']}/cancel",
        "/v1/payment_records/report_payment", "/v1/webhook_endpoints",
        f"/v1/customers/{invoice['customer']}/balance_transactions",
        f"{records}/report_payment_attempt", f"{records}/report_payment_attempt_guaranteed",
        f"{records}/report_payment_attempt_informational", f"{records}/report_refund",
    ]  # fmt: skip


def test_odd_json_values_never_cause_a_server_error(api, paths):
    errors = []
    for path in paths:
        for name in PARAMETERS:
            for value in ODD_VALUES:
                response = api.client.post(
                    path,
                    data=json.dumps({name: value}),
                    headers={**api._headers(None), "Content-Type": "application/json"},
                )
                if response.status_code >= 500:
                    errors.append((path, name, repr(value)[:30], response.status_code))
    assert errors == []


def test_odd_form_encodings_never_cause_a_server_error(api, paths):
    errors = []
    for path in paths:
        for body in ODD_FORMS:
            response = api.client.post(
                path,
                data=body,
                headers={
                    **api._headers(None),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            if response.status_code >= 500:
                errors.append((path, body, response.status_code))
    assert errors == []


@pytest.mark.parametrize(
    "path",
    ["/v1/customers", "/v1/invoices", "/v1/invoice_payments", "/v1/events",
     "/v1/payment_intents", "/v1/invoiceitems", "/v1/webhook_endpoints"],
)  # fmt: skip
def test_odd_list_filters_never_cause_a_server_error(api, path):
    for name in PARAMETERS:
        for value in ["", "x", "-1", "1e9", "in_", "a[b]", "\x00"]:
            response = api.get(path, {name: value})
            assert response.status_code < 500, (name, value, response.json)
