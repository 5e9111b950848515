"""Customers, and through them the API conventions every endpoint shares."""

from __future__ import annotations

import base64


def test_create_and_retrieve_customer(api):
    created = api.post(
        "/v1/customers", {"email": "ada@example.com", "name": "Ada", "metadata[order]": "42"}
    )
    assert created.status_code == 200
    body = created.json
    assert body["object"] == "customer"
    assert body["id"].startswith("cus_")
    assert body["metadata"] == {"order": "42"}
    assert body["livemode"] is False
    fetched = api.get(f"/v1/customers/{body['id']}")
    assert fetched.json == body
    assert fetched.headers["Request-Id"].startswith("req_")


def test_basic_auth_with_key_as_user_name_is_accepted(api, app):
    token = base64.b64encode(f"{api.key}:".encode()).decode()
    response = app.test_client().post("/v1/customers", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 200


def test_missing_or_unknown_key_is_401(app):
    client = app.test_client()
    assert client.get("/v1/customers").status_code == 401
    response = client.get("/v1/customers", headers={"Authorization": "Bearer sk_test_nope"})
    assert response.status_code == 401
    assert response.json["error"]["type"] == "authentication_error"
    assert "sk_test_nope" not in response.get_data(as_text=True)


def test_test_key_cannot_see_live_customer(api, live_api):
    live = live_api.post("/v1/customers", {"email": "live@example.com"}).json
    assert live["livemode"] is True
    response = api.get(f"/v1/customers/{live['id']}")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "resource_missing"


def test_unknown_parameter_is_named(api, db):
    before = db.execute("SELECT count(*) AS n FROM customers").fetchone()["n"]
    response = api.post("/v1/customers", {"emial": "x@example.com"})
    assert response.status_code == 400
    assert response.json["error"]["param"] == "emial"
    assert response.json["error"]["code"] == "parameter_unknown"
    assert db.execute("SELECT count(*) AS n FROM customers").fetchone()["n"] == before


def test_metadata_limits_are_enforced(api):
    too_many = {f"metadata[k{i}]": "v" for i in range(51)}
    assert api.post("/v1/customers", too_many).json["error"]["param"] == "metadata"
    long_key = api.post("/v1/customers", {"metadata[" + "k" * 41 + "]": "v"})
    assert long_key.status_code == 400
    long_value = api.post("/v1/customers", {"metadata[k]": "v" * 501})
    assert long_value.status_code == 400


def test_idempotent_replay_returns_stored_bytes(api, db):
    headers = {"Idempotency-Key": "idem-customer-1"}
    first = api.post("/v1/customers", {"email": "once@example.com"}, headers)
    again = api.post("/v1/customers", {"email": "once@example.com"}, headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Original-Request"] == first.headers["Request-Id"]
    assert again.headers["Idempotency-Key"] == "idem-customer-1"
    assert again.get_data() == first.get_data()
    count = db.execute(
        "SELECT count(*) AS n FROM customers WHERE email = 'once@example.com'"
    ).fetchone()["n"]
    assert count == 1
    other = api.post("/v1/customers", {"email": "other@example.com"}, headers)
    assert other.status_code == 400
    assert other.json["error"]["type"] == "idempotency_error"


def test_list_paginates_newest_first(api):
    ids = [api.post("/v1/customers", {"description": "page"}).json["id"] for _ in range(3)]
    first = api.get("/v1/customers", {"limit": 2}).json
    assert [c["id"] for c in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    after = api.get("/v1/customers", {"limit": 1, "starting_after": ids[1]}).json
    assert after["data"][0]["id"] == ids[0]
    before = api.get("/v1/customers", {"limit": 5, "ending_before": ids[1]}).json
    assert [c["id"] for c in before["data"]] == [ids[2]]


def test_limit_out_of_range_names_limit(api):
    response = api.get("/v1/customers", {"limit": 101})
    assert response.status_code == 400
    assert response.json["error"]["param"] == "limit"
