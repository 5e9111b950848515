"""The API conventions every endpoint shares: encodings, validation, errors, idempotency."""

from __future__ import annotations

import hashlib
import json

import pytest
from psycopg import sql

from tests import factories
from tests.conftest import TEST_KEY


def count(db, table):
    query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))
    return db.execute(query).fetchone()["n"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        pytest.param({"amount": "-1", "currency": "usd"}, "amount", id="negative"),
        pytest.param({"amount": "100000000", "currency": "usd"}, "amount", id="oversized"),
        pytest.param({"amount": "12.5", "currency": "usd"}, "amount", id="fractional"),
        pytest.param({"amount": "ten", "currency": "usd"}, "amount", id="not-a-number"),
        pytest.param({"currency": "usd"}, "amount", id="missing"),
        pytest.param({"amount": "100", "currency": "USD"}, "currency", id="upper-case-currency"),
        pytest.param({"amount": "100", "currency": "xyz"}, "currency", id="unknown-currency"),
        pytest.param(
            {"amount": "100", "currency": "usd", "description": "x" * 1001},
            "description",
            id="over-long-string",
        ),
        pytest.param(
            {"amount": "100", "currency": "usd", "customer": "in_123"},
            "customer",
            id="wrong-prefix",
        ),
        pytest.param(
            {"amount": "100", "currency": "usd", "customer": "cus_doesnotexist"},
            "customer",
            id="unknown-customer",
        ),
        pytest.param(
            {"amount": "100", "currency": "usd", "metadata[k]": "v" * 501},
            "metadata",
            id="metadata-value",
        ),
    ],
)
def test_bad_payment_intent_parameters_are_named_and_store_nothing(api, db, params, param):
    before = count(db, "payment_intents")
    response = api.post("/v1/payment_intents", params)
    factories.refused(response, param)
    assert count(db, "payment_intents") == before


def test_json_bodies_are_accepted(api):
    response = api.client.post(
        "/v1/customers",
        data=json.dumps({"email": "json@example.com", "metadata": {"a": "1"}}),
        headers={"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json["metadata"] == {"a": "1"}


def test_malformed_form_bodies_are_refused(api, db):
    before = count(db, "customers")
    response = api.client.post(
        "/v1/customers",
        data="metadata[a=1",
        headers={
            "Authorization": f"Bearer {TEST_KEY}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 400
    assert response.json["error"]["param"] == "metadata[a"
    assert count(db, "customers") == before


def test_invalid_json_is_refused(api):
    response = api.client.post(
        "/v1/customers",
        data="{not json",
        headers={"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json["error"]["type"] == "invalid_request_error"


def test_oversized_body_is_413(api, db):
    before = count(db, "customers")
    response = api.post("/v1/customers", {"description": "x" * (300 * 1024)})
    assert response.status_code == 413
    assert "error" in response.json
    assert count(db, "customers") == before


@pytest.mark.parametrize("spelling", ["expand[]", "expand[0]"])
def test_both_array_spellings_expand(api, spelling):
    invoice = factories.open_invoice(api, 100)
    body = api.get(f"/v1/invoices/{invoice['id']}", {spelling: "customer"}).json
    assert body["customer"]["object"] == "customer"


def test_unknown_expand_path_names_expand(api):
    invoice = factories.open_invoice(api, 100)
    response = api.get(f"/v1/invoices/{invoice['id']}", {"expand[]": "nonsense"})
    assert response.status_code == 400
    assert response.json["error"]["param"] == "expand"


def test_expansion_deeper_than_four_levels_is_refused(api):
    invoice = factories.open_invoice(api, 100)
    response = api.get(f"/v1/invoices/{invoice['id']}", {"expand[]": "a.b.c.d.e.f"})
    assert response.status_code == 400
    assert response.json["error"]["param"] == "expand"


def test_unknown_route_is_a_stripe_shaped_404(api):
    response = api.get("/v1/nothing_here")
    assert response.status_code == 404
    assert response.json["error"]["type"] == "invalid_request_error"
    assert response.headers["Request-Id"].startswith("req_")


def test_idempotency_key_in_flight_is_409(api, db):
    # given a reservation for this key whose request has not finished
    key_hash = hashlib.sha256(TEST_KEY.encode()).hexdigest()[:32]
    db.execute(
        "INSERT INTO idempotency_keys (api_key_hash, key, request_hash) VALUES (%s, %s, %s)",
        (key_hash, "still-running", "whatever"),
    )
    # when the same key arrives with the same parameters
    before = count(db, "customers")
    body = {"email": "busy@example.com"}
    fingerprint = hashlib.sha256(
        json.dumps(["/v1/customers", body], sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    db.execute(
        "UPDATE idempotency_keys SET request_hash = %s WHERE key = 'still-running'", (fingerprint,)
    )
    response = api.post("/v1/customers", body, {"Idempotency-Key": "still-running"})
    # then it is refused as in flight, and nothing is created
    assert response.status_code == 409
    assert response.json["error"]["type"] == "idempotency_error"
    assert count(db, "customers") == before


def test_idempotency_keys_are_scoped_to_the_api_key(api, live_api):
    headers = {"Idempotency-Key": "shared-key-across-modes"}
    test = api.post("/v1/customers", {"email": "t@example.com"}, headers)
    live = live_api.post("/v1/customers", {"email": "t@example.com"}, headers)
    assert test.json["id"] != live.json["id"]
    assert "Idempotent-Replayed" not in live.headers


def test_openapi_lists_the_routes(app):
    spec = app.test_client().get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    attach = spec["paths"]["/v1/invoices/{invoice_id}/attach_payment"]["post"]
    assert attach["parameters"][0]["name"] == "invoice_id"
    assert "security" in attach
    assert "/healthz" in spec["paths"]


def test_wrong_method_on_a_known_path_is_a_404_like_stripe(api):
    response = api.get("/v1/invoices/in_123/attach_payment")
    assert response.status_code == 404
    assert response.json["error"]["type"] == "invalid_request_error"


def test_missing_and_malformed_parameters_carry_stripe_codes(api):
    missing = api.post("/v1/payment_intents", {"currency": "usd"}).json["error"]
    assert (missing["code"], missing["param"]) == ("parameter_missing", "amount")
    assert missing["message"] == "Missing required param: amount."
    malformed = api.post("/v1/payment_intents", {"amount": "ten", "currency": "usd"}).json["error"]
    assert malformed["code"] == "parameter_invalid_integer"


def test_nul_characters_are_refused_by_name_not_a_500(api, db):
    before = count(db, "customers")
    body = api.post("/v1/customers", {"description": "a\x00b"})
    assert body.status_code == 400
    assert body.json["error"]["param"] == "description"
    assert count(db, "customers") == before
    listed = api.get("/v1/invoices", {"starting_after": "in_\x00"})
    assert listed.status_code == 400
    assert listed.json["error"]["param"] == "starting_after"
    assert api.get("/v1/customers/cus_%00").status_code == 400
