"""Every /v1 route, taken from the URL map so a new route cannot forget it: no key or an
unknown key is a 401, and a key of one mode never reaches an object of the other."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests import factories
from tests.conftest import LIVE_KEY
from tests.database import fingerprint

PATH_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def v1_routes(app: Any) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/v1/"):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                routes.append((method, rule.rule))
    return routes


WELL_FORMED_BODIES = {
    "pay": {"paid_out_of_band": "true"},
    "balance_transactions": {"amount": "-100", "currency": "usd"},
    "report_payment_attempt": {"initiated_at": "1700000000"},
    "report_payment_attempt_guaranteed": {"guaranteed_at": "1700000000"},
    "report_payment_attempt_failed": {"failed_at": "1700000000"},
    "report_payment_attempt_canceled": {"canceled_at": "1700000000"},
    "report_refund": {"outcome": "refunded", "processor_details[type]": "custom"},
}


def call(client: Any, method: str, path: str, headers: dict[str, str], data: Any = None) -> Any:
    return client.open(path, method=method, headers=headers, data=data or {})


@pytest.fixture(scope="module")
def live_objects(app: Any) -> dict[str, str]:
    """One live-mode object per kind of path parameter."""
    from tests.conftest import ApiClient

    live = ApiClient(app, LIVE_KEY)
    invoice = factories.open_invoice(live, amount=1000)
    pi = factories.payment_intent(live, invoice, 400)
    attached = live.post(
        f"/v1/invoices/{invoice['id']}/attach_payment",
        {"payment_intent": pi["id"], "expand[]": "payments"},
    )
    assert attached.status_code == 200, attached.json
    record = live.post(
        "/v1/payment_records/report_payment",
        {
            "amount_requested[value]": 100,
            "amount_requested[currency]": "usd",
            "customer_details[customer]": invoice["customer"],
            "initiated_at": 1_700_000_000,
            "outcome": "guaranteed",
        },
    )
    assert record.status_code == 200, record.json
    endpoint = live.post(
        "/v1/webhook_endpoints",
        {"url": "https://example.com/hook", "enabled_events[]": "*"},
    )
    assert endpoint.status_code == 200, endpoint.json
    txn = live.post(
        f"/v1/customers/{invoice['customer']}/balance_transactions",
        {"amount": -100, "currency": "usd"},
    )
    assert txn.status_code == 200, txn.json
    item = live.get("/v1/invoiceitems", {"limit": 1}).json["data"][0]
    event = live.get("/v1/events", {"limit": 1}).json["data"][0]
    return {
        "customer_id": invoice["customer"],
        "invoice_id": invoice["id"],
        "item_id": item["id"],
        "payment_id": attached.json["payments"]["data"][0]["id"],
        "pi_id": pi["id"],
        "record_id": record.json["id"],
        "endpoint_id": endpoint.json["id"],
        "event_id": event["id"],
        "txn_id": txn.json["id"],
    }


def test_the_route_table_is_not_empty(app):
    # Guards the tests below against an empty parametrisation passing vacuously.
    assert len(v1_routes(app)) >= 30


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"Authorization": "Bearer sk_test_not_a_key"}, id="unknown-key"),
        pytest.param({"Authorization": "Basic c2tfbGl2ZV9ub3BlOg=="}, id="unknown-basic"),
    ],
)
def test_every_v1_route_refuses_a_missing_or_unknown_key(app, db, live_objects, headers):
    client = app.test_client()
    before = fingerprint(db)
    for method, rule in v1_routes(app):
        path = PATH_PARAM.sub(lambda m: live_objects[m.group(1)], rule)
        response = call(client, method, path, headers)
        assert response.status_code == 401, (method, rule, response.json)
        assert response.json["error"]["type"] == "authentication_error", (method, rule)
    assert fingerprint(db) == before


def test_every_v1_route_with_an_id_refuses_the_other_modes_object(app, db, api, live_objects):
    """A test key given a live object's id gets resource_missing and changes nothing."""
    routes = [(m, r) for m, r in v1_routes(app) if PATH_PARAM.search(r)]
    assert len(routes) >= 15
    before = fingerprint(db)
    for method, rule in routes:
        path = PATH_PARAM.sub(lambda m: live_objects[m.group(1)], rule)
        # A well-formed body, so that only the path's object can be what is refused.
        body = WELL_FORMED_BODIES.get(rule.rsplit("/", 1)[-1], {})
        if rule.endswith("/attach_payment"):
            body = {"payment_intent": live_objects["pi_id"]}
        response = call(api.client, method, path, api._headers(None), body)
        assert response.status_code == 404, (method, rule, response.json)
        assert response.json["error"]["code"] == "resource_missing", (method, rule)
    assert fingerprint(db) == before


def test_lists_under_a_test_key_show_no_live_object(app, api, live_objects):
    live_ids = set(live_objects.values())
    lists = [r for m, r in v1_routes(app) if m == "GET" and not PATH_PARAM.search(r)]
    assert len(lists) >= 7
    for rule in lists:
        # A search takes a query: one every object matches.
        query = {"query": "created>0"} if rule.endswith("/search") else {}
        response = api.get(rule, {"limit": 100, **query})
        assert response.status_code == 200, (rule, response.json)
        shown = {obj["id"] for obj in response.json["data"]}
        assert not shown & live_ids, rule
