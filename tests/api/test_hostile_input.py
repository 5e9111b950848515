"""Hostile input (parameters nested thousands deep, huge numbers and arrays, oversized
or deeply nested signed webhooks): a clean Stripe-shaped 4xx naming the parameter where
it can, never a 5xx, and nothing stored or changed."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from devtools.stripe_events import signed_webhook
from service.config import ConfigError, Settings
from service.domain.events import event_object, payment_intent_event
from tests import factories
from tests.conftest import TEST_KEY, WEBHOOK_SECRET

DEEP = 5000  # far past Python's recursion limit (1000)
TABLES = ("customers", "invoice_items", "invoices", "payment_intents", "webhook_endpoints",
          "inbound_events", "events", "idempotency_keys")  # fmt: skip


def counts(db) -> dict[str, int]:
    return {t: db.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"] for t in TABLES}  # noqa: S608


def post_form(api, path, body: str):
    return api.client.post(
        path,
        data=body,
        headers={**api._headers(None), "Content-Type": "application/x-www-form-urlencoded"},
    )


def post_json(api, path, body: str | bytes):
    return api.client.post(
        path, data=body, headers={**api._headers(None), "Content-Type": "application/json"}
    )


def assert_refused(response, param=None, status=400):
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert error["type"] == "invalid_request_error"
    assert error.get("param") == param, error


# -- bracket keys and JSON bodies nested deep ------------------------------------------------


@pytest.mark.parametrize("depth", [DEEP, 17])
def test_form_body_nested_deep_is_400_naming_the_parameter(api, db, depth):
    before = counts(db)
    key = "metadata" + "[a]" * depth
    response = post_form(api, "/v1/customers", f"email=x%40example.com&{key}=1")
    assert_refused(response, "metadata")
    assert "nested" in response.json["error"]["message"]
    assert counts(db) == before


def test_query_string_nested_deep_is_400(api):
    response = api.client.get(
        "/v1/customers?" + "email" + "[a]" * DEEP + "=1", headers=api._headers(None)
    )
    assert_refused(response, "email")


def test_bracket_nesting_within_the_cap_still_works(api):
    # metadata[a] is two levels: Stripe's own deepest parameters are a few levels.
    response = post_form(api, "/v1/customers", "email=x%40example.com&metadata[order]=42")
    assert response.status_code == 200, response.json
    assert response.json["metadata"] == {"order": "42"}


@pytest.mark.parametrize("depth", [DEEP, 990, 17])
def test_json_body_nested_deep_is_400_naming_the_parameter(api, db, depth):
    before = counts(db)
    body = '{"email": "x@example.com", "metadata": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
    response = post_json(api, "/v1/customers", body)
    assert response.status_code == 400, response.json
    assert response.json["error"]["type"] == "invalid_request_error"
    if depth < 990:  # parsed, then measured: the parameter is known
        assert response.json["error"]["param"] == "metadata"
    assert "nested" in response.json["error"]["message"]
    assert counts(db) == before


def test_json_array_nested_deep_is_400(api, db):
    before = counts(db)
    response = post_json(api, "/v1/customers", '{"expand": ' + "[" * DEEP + "]" * DEEP + "}")
    assert_refused(response)
    assert "nested" in response.json["error"]["message"]
    assert counts(db) == before


# -- huge numbers and arrays -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "amount"),
    [
        ("form", str(10**400)),
        ("form", "9" * 100_000),
        ("form", "-" + "9" * 5000),
        ("json", str(10**400)),
        ("json", "9" * 100_000),
        ("json", "1e400"),
        ("json", "-1e400"),
    ],
)
def test_huge_amount_is_400(api, db, encoding, amount):
    cus = factories.customer(api)
    before = counts(db)
    if encoding == "form":
        response = post_form(
            api, "/v1/invoiceitems", f"customer={cus['id']}&currency=usd&amount={amount}"
        )
    else:
        body = f'{{"customer": "{cus["id"]}", "currency": "usd", "amount": {amount}}}'
        response = post_json(api, "/v1/invoiceitems", body)
    assert response.status_code == 400, response.json
    assert response.json["error"]["type"] == "invalid_request_error"
    assert response.json["error"]["param"] == "amount"
    assert counts(db) == before


@pytest.mark.parametrize("value", [str(10**400), "9" * 5000])
def test_huge_numbers_in_list_filters_are_400(api, value):
    for query in ({"limit": value}, {"created[gt]": value}, {"created": value}):
        response = api.get("/v1/invoices", query)
        assert response.status_code == 400, (query.keys(), response.json)
        assert response.json["error"]["param"] in ("limit", "created", "created[gt]")


def test_array_index_with_thousands_of_digits_is_400(api, db):
    before = counts(db)
    response = post_form(api, "/v1/customers", f"email=x%40example.com&expand[{'9' * 5000}]=x")
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == "expand"
    assert counts(db) == before


def test_huge_arrays_are_400(api, db):
    before = counts(db)
    many = "&".join(f"enabled_events[]=e{i}" for i in range(10_000))
    response = post_form(api, "/v1/webhook_endpoints", f"url=https://example.com/h&{many}")
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"].startswith("enabled_events")
    keys = "&".join(f"metadata[k{i}]=v" for i in range(10_000))
    response = post_form(api, "/v1/customers", f"email=x%40example.com&{keys}")
    assert_refused(response, "metadata")
    expand = "&".join("expand[]=payments" for _ in range(10_000))
    response = api.client.get(f"/v1/invoices?{expand}", headers=api._headers(None))
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == "expand"
    assert counts(db) == before


# -- signed webhooks ---------------------------------------------------------------------------


def signed(client, body: bytes, secret: str = WEBHOOK_SECRET):
    body, headers = signed_webhook(body, secret)
    return client.post("/webhooks/stripe", data=body, headers=headers)


def event_with(extra: str, event_type: str = "payment_intent.succeeded") -> bytes:
    pi = {"id": f"pi_{uuid.uuid4().hex}", "amount": 100, "currency": "usd"}
    event = payment_intent_event("payment_intent.succeeded", pi, now=int(time.time()))
    event["type"] = event_type
    text = json.dumps(event)
    return (text[:-1] + ", " + extra + "}").encode()


@pytest.mark.parametrize(
    "extra",
    [
        '"x": ' + "[" * DEEP + "]" * DEEP,
        '"x": ' + '{"a": ' * DEEP + "1" + "}" * DEEP,
        '"x": ' + "[" * 500 + "]" * 500,
        '"x": ' + "9" * 100_000,
        '"x": 1e400',
    ],
    ids=["list-5000", "object-5000", "list-500", "int-100k-digits", "float-1e400"],
)
def test_signed_webhook_with_hostile_json_is_400_and_stores_nothing(app, db, extra):
    before = counts(db)
    response = signed(app.test_client(), event_with(extra))
    assert_refused(response)
    assert counts(db) == before


def padded_event(event_type: str, size: int) -> dict:
    event = event_object(
        id=f"evt_{uuid.uuid4().hex}", type=event_type, created=int(time.time()),
        data={"object": {"id": f"pi_{uuid.uuid4().hex}", "object": "payment_intent"}},
        livemode=False, pending_webhooks=1,
    )  # fmt: skip
    return {**event, "padding": "x" * size}


def test_oversized_event_of_an_ignored_type_is_acknowledged_and_not_stored(app, db):
    # given a signed event over max_body_bytes of a type Tally does nothing with
    before = counts(db)
    body = json.dumps(padded_event("customer.updated", 300 * 1024)).encode()
    assert len(body) > app.extensions["settings"].max_body_bytes
    # when Stripe sends it, then it is acknowledged (Stripe stops retrying) and not stored
    response = signed(app.test_client(), body)
    assert response.status_code == 200, response.json
    assert response.json == {"received": True}
    assert counts(db) == before


def test_oversized_event_of_an_ignored_type_is_acknowledged_over_http(server, db):
    import requests

    before = counts(db)
    body, headers = signed_webhook(padded_event("customer.updated", 600 * 1024), WEBHOOK_SECRET)
    response = requests.post(f"{server}/webhooks/stripe", data=body, headers=headers, timeout=10)
    assert (response.status_code, response.json()) == (200, {"received": True})
    assert counts(db) == before


def test_oversized_event_of_a_handled_type_stays_413(app, db):
    before = counts(db)
    body = json.dumps(padded_event("payment_intent.succeeded", 300 * 1024)).encode()
    response = signed(app.test_client(), body)
    assert_refused(response, status=413)
    assert counts(db) == before


@pytest.mark.parametrize("secret", ["whsec_forged", None])
def test_oversized_event_not_signed_by_us_is_refused(app, db, secret):
    before = counts(db)
    body = json.dumps(padded_event("customer.updated", 300 * 1024)).encode()
    if secret is None:
        response = app.test_client().post("/webhooks/stripe", data=body)
    else:
        response = signed(app.test_client(), body, secret)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "signature_invalid"
    assert counts(db) == before


def test_event_over_the_read_limit_is_413_unread(app, db):
    from service.operations.record_webhook import MAX_READ_BYTES

    before = counts(db)
    body = json.dumps(padded_event("customer.updated", MAX_READ_BYTES)).encode()
    response = signed(app.test_client(), body)
    assert_refused(response, status=413)
    assert counts(db) == before


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize("tolerance", ["0", "-1", "-300", "abc", ""])
def test_webhook_tolerance_that_would_turn_off_replay_protection_refuses_to_start(tolerance):
    with pytest.raises(ConfigError, match="TALLY_WEBHOOK_TOLERANCE"):
        Settings.from_env({"TALLY_API_KEYS": TEST_KEY, "TALLY_WEBHOOK_TOLERANCE": tolerance})


def test_positive_webhook_tolerance_is_read():
    settings = Settings.from_env({"TALLY_API_KEYS": TEST_KEY, "TALLY_WEBHOOK_TOLERANCE": "60"})
    assert settings.webhook_tolerance == 60
