"""Invoice numbers never collide, and a constraint the API meets is never a 500."""

from __future__ import annotations

import uuid
from typing import Any

from service.api import deps
from service.domain.invoices import new_invoice_prefix
from service.operations import customers as customer_operations
from service.store import customers
from tests import factories
from tests.conftest import ApiClient
from tests.factories import ids_sharing_a_hash_prefix


def prefix_of(db: Any, customer_id: str) -> str:
    row = db.execute("SELECT invoice_prefix FROM customers WHERE id = %s", (customer_id,))
    return str(row.fetchone()["invoice_prefix"])


def test_customers_whose_ids_share_the_old_hash_prefix_both_finalize(api, db):
    # given: two customers (as the previous version stored them) whose ids collided
    # under the old hash prefix, so both their first invoices were XXXXXXXX-0001
    pair = ids_sharing_a_hash_prefix()
    for customer_id in pair:
        db.execute(
            "INSERT INTO customers (id, livemode, created) VALUES (%s, false, 0)", (customer_id,)
        )
    # when: each finalizes a first invoice
    first, second = (factories.open_invoice(api, 100, cus={"id": c}) for c in pair)
    # then: both are numbered, differently, each its customer's 0001
    assert first["number"] != second["number"]
    assert first["number"].endswith("-0001") and second["number"].endswith("-0001")


def test_a_prefix_clash_at_creation_is_retried(api, db, monkeypatch):
    # given: a prefix generator that twice hands out a prefix another customer holds
    taken = prefix_of(db, factories.customer(api)["id"])
    handed = iter([taken, taken])
    monkeypatch.setattr(
        customer_operations,
        "new_invoice_prefix",
        lambda: next(handed, None) or new_invoice_prefix(),
    )
    # when: a customer is created, and invoiced
    created = factories.customer(api)
    invoice = factories.open_invoice(api, 100, cus=created)
    # then: it got a prefix of its own, which numbers its invoices
    assert next(handed, None) is None
    prefix = prefix_of(db, created["id"])
    assert prefix != taken
    assert invoice["number"] == f"{prefix}-0001"


def test_a_unique_violation_reaching_the_api_is_a_clean_409(api, db):
    # given: a customer whose sequence was set back, so its next number is taken
    invoice = factories.open_invoice(api, 100)
    db.execute(
        "UPDATE customers SET next_invoice_sequence = 1 WHERE id = %s", (invoice["customer"],)
    )
    item = {"customer": invoice["customer"], "amount": 100, "currency": "usd"}
    assert api.post("/v1/invoiceitems", item).status_code == 200
    draft = api.post(
        "/v1/invoices",
        {"customer": invoice["customer"], "pending_invoice_items_behavior": "include"},
    ).json
    headers = {"Idempotency-Key": f"clash-{uuid.uuid4()}"}
    # when: it is finalized (twice, with one key, as the SDK retries a 409)
    responses = [api.post(f"/v1/invoices/{draft['id']}/finalize", {}, headers) for _ in "ab"]
    # then: a Stripe-shaped 409 (naming no constraint: internal names stay inside),
    # nothing changed, nothing stored
    for response in responses:
        assert response.status_code == 409
        error = response.json["error"]
        assert (error["type"], error["code"]) == (
            "invalid_request_error",
            "resource_already_exists",
        )
        assert "invoices_number_key" not in error["message"]
        assert "Idempotent-Replayed" not in response.headers
    row = db.execute("SELECT status, number FROM invoices WHERE id = %s", (draft["id"],))
    assert row.fetchone() == {"status": "draft", "number": None}


def test_another_constraint_reaching_the_api_is_a_clean_400(private_app, db):
    # given: a route whose write breaks a CHECK constraint that no validation caught
    email = f"check-{uuid.uuid4().hex}@example.com"

    @private_app.post("/v1/test_bad_prefix")
    def bad_prefix() -> Any:
        row = {"id": f"cus_{uuid.uuid4().hex}", "livemode": False, "email": email, "name": None,
               "phone": None, "description": None, "metadata": {}, "created": 0,
               "invoice_prefix": "not a prefix"}  # fmt: skip
        return customers.insert(deps.get_conn(), row) or {}

    # when: it is called, then retried with the same key
    headers = {"Idempotency-Key": f"check-{uuid.uuid4()}"}
    response = ApiClient(private_app).post("/v1/test_bad_prefix", {}, headers)
    again = ApiClient(private_app).post("/v1/test_bad_prefix", {}, headers)
    # then: a 400 (naming no constraint), stored as a refusal, and nothing written
    assert response.status_code == 400
    assert response.json["error"]["type"] == "invalid_request_error"
    assert "customers_invoice_prefix_check" not in response.json["error"]["message"]
    assert "constraint" in response.json["error"]["message"]
    assert again.headers["Idempotent-Replayed"] == "true"
    found = db.execute("SELECT count(*) AS n FROM customers WHERE email = %s", (email,))
    assert found.fetchone()["n"] == 0
