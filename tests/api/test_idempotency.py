"""Idempotency-Key: the stored response commits with the change, or neither does.

Faults are injected at the one point that matters, after the operation has made its
change and before the response is stored: an `after_request` hook added to a private
app (Flask runs hooks added later first, so it runs before Tally's own), or a
test-only route that makes a real change and then raises.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from typing import Any

import pytest
import stripe
from flask import request

from service.api import deps
from service.operations.customers import create_customer
from tests import factories
from tests.conftest import TEST_KEY, ApiClient


def items_of(db: Any, customer_id: str) -> int:
    row = db.execute(
        "SELECT count(*) AS n FROM invoice_items WHERE customer = %s", (customer_id,)
    ).fetchone()
    return int(row["n"])


def test_postgres_dying_before_the_response_is_stored_leaves_nothing_for_the_retry(private_app, db):
    # given: an app whose connection is killed right after the first item is created
    killed: list[int] = []

    @private_app.after_request
    def kill_connection(response: Any) -> Any:
        if not killed and request.path == "/v1/invoiceitems":
            killed.append(deps.get_conn().info.backend_pid)
            db.execute("SELECT pg_terminate_backend(%s)", (killed[0],))
        return response

    api = ApiClient(private_app)
    customer = factories.customer(api)
    body = {"customer": customer["id"], "amount": 700, "currency": "usd"}
    headers = {"Idempotency-Key": f"crash-{uuid.uuid4()}"}
    # when: the request dies there, and the client retries with the same key, twice
    crashed = api.post("/v1/invoiceitems", body, headers)
    retried = api.post("/v1/invoiceitems", body, headers)
    replayed = api.post("/v1/invoiceitems", body, headers)
    # then: the crashed request claimed nothing, the retry ran it once, and replays it
    assert killed
    assert crashed.status_code == 503, crashed.json
    assert retried.status_code == 200, retried.json
    assert "Idempotent-Replayed" not in retried.headers
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_data() == retried.get_data()
    assert items_of(db, customer["id"]) == 1


def test_a_crash_after_the_change_rolls_it_back_with_the_key(private_app, db):
    # given: a route that makes a real change and then fails, as a bug or a dying
    # process would between the change and the stored response
    @private_app.post("/v1/test_crash_after_change")
    def crash_after_change() -> Any:
        create_customer(deps.get_conn(), deps.caller(), {"email": email}, now=int(time.time()))
        raise RuntimeError("the process dies here")

    email = f"crash-{uuid.uuid4().hex}@example.com"
    api = ApiClient(private_app)
    headers = {"Idempotency-Key": f"crash-{uuid.uuid4()}"}
    # when: it runs twice with one key
    statuses = [api.post("/v1/test_crash_after_change", {}, headers).status_code for _ in "ab"]
    # then: each attempt failed cleanly and left nothing behind, key included
    assert statuses == [500, 500]
    count = db.execute("SELECT count(*) AS n FROM customers WHERE email = %s", (email,))
    assert count.fetchone()["n"] == 0
    stored = db.execute("SELECT count(*) AS n FROM idempotency_keys WHERE key = %s",
                        (headers["Idempotency-Key"],))  # fmt: skip
    assert stored.fetchone()["n"] == 0


def test_one_key_sent_twice_at_once_runs_once(private_app, db):
    # given: requests that hold their key for a while after making their change
    @private_app.after_request
    def linger(response: Any) -> Any:
        time.sleep(0.5)
        return response

    api = ApiClient(private_app)
    customer = factories.customer(api)
    body = {"customer": customer["id"], "amount": 300, "currency": "usd"}
    headers = {"Idempotency-Key": f"race-{uuid.uuid4()}"}
    start = threading.Barrier(2)
    responses: list[Any] = []

    def send() -> None:
        client = ApiClient(private_app)
        start.wait()
        responses.append(client.post("/v1/invoiceitems", body, headers))

    # when: two requests with one key run at the same time
    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: one ran; the other was told it is in progress (or replayed it)
    ran = [r for r in responses if r.status_code == 200 and "Idempotent-Replayed" not in r.headers]
    assert len(ran) == 1
    others = [r for r in responses if r is not ran[0]]
    assert others[0].status_code in (200, 409)
    if others[0].status_code == 409:
        assert others[0].json["error"]["code"] == "idempotency_key_in_use"
    assert items_of(db, customer["id"]) == 1
    later = api.post("/v1/invoiceitems", body, headers)
    assert later.headers["Idempotent-Replayed"] == "true"
    assert later.get_data() == ran[0].get_data()


def test_a_response_stored_first_by_another_request_refuses_ours_and_rolls_it_back(private_app, db):
    # given: a route that makes a change, and meanwhile another request with the same
    # key stores its response (it committed between this claim's snapshot and its lock)
    @private_app.post("/v1/test_stored_meanwhile")
    def stored_meanwhile() -> Any:
        create_customer(deps.get_conn(), deps.caller(), {"email": email}, now=0)
        db.execute(
            "INSERT INTO idempotency_keys"
            " (api_key_hash, key, request_hash, status_code, response_body, request_id)"
            " VALUES (%s, %s, 'theirs', 200, '{}', 'req_theirs')",
            (hashlib.sha256(TEST_KEY.encode()).hexdigest()[:32], key),
        )
        return {"created": True}

    email = f"meanwhile-{uuid.uuid4().hex}@example.com"
    key = f"meanwhile-{uuid.uuid4()}"
    # when: it runs with that key
    response = ApiClient(private_app).post(
        "/v1/test_stored_meanwhile", {}, {"Idempotency-Key": key}
    )
    # then: it is told the key is in use, and its change did not happen
    assert response.status_code == 409, response.json
    assert response.json["error"]["code"] == "idempotency_key_in_use"
    count = db.execute("SELECT count(*) AS n FROM customers WHERE email = %s", (email,))
    assert count.fetchone()["n"] == 0
    assert stored_keys(db, key) == [200]


def test_a_stale_reservation_of_the_previous_version_is_taken_over(api, db):
    # given: a key reserved, without a response, by a request of the previous version
    # that died over a minute ago
    key = f"stale-{uuid.uuid4()}"
    db.execute(
        "INSERT INTO idempotency_keys (api_key_hash, key, request_hash, created_at)"
        " VALUES (%s, %s, 'whatever', now() - interval '2 minutes')",
        (hashlib.sha256(TEST_KEY.encode()).hexdigest()[:32], key),
    )
    # when: the key arrives again, and then once more
    body = {"email": f"stale-{uuid.uuid4().hex}@example.com"}
    ran = api.post("/v1/customers", body, {"Idempotency-Key": key})
    replayed = api.post("/v1/customers", body, {"Idempotency-Key": key})
    # then: the request ran once, its response replaced the reservation and is replayed
    assert ran.status_code == 200, ran.json
    assert "Idempotent-Replayed" not in ran.headers
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_data() == ran.get_data()
    assert stored_keys(db, key) == [200]


def test_a_refusal_after_the_change_rolls_it_back_and_stores_nothing(api, db):
    # given: a request that creates a customer but then asks for an impossible expansion
    # (refused after the operation ran: rendering is where expand paths are checked)
    email = f"refused-{uuid.uuid4().hex}@example.com"
    body = {"email": email, "expand[]": "nonsense"}
    headers = {"Idempotency-Key": f"refused-{uuid.uuid4()}"}
    # when: it is sent, then retried with the same key
    refused = api.post("/v1/customers", body, headers)
    again = api.post("/v1/customers", body, headers)
    # then: a parameter failed validation, so nothing was stored: the retry ran afresh
    # and was refused again, and no customer was left behind by either
    assert refused.status_code == again.status_code == 400
    assert refused.json["error"]["param"] == "expand"
    assert "Idempotent-Replayed" not in again.headers
    count = db.execute("SELECT count(*) AS n FROM customers WHERE email = %s", (email,))
    assert count.fetchone()["n"] == 0
    assert stored_keys(db, headers["Idempotency-Key"]) == []


def test_after_commit_callbacks_run_once_the_change_is_visible(private_app, db):
    # given: a route that creates a customer and asks to be called back after commit
    seen: list[int] = []

    @private_app.post("/v1/test_after_commit")
    def create_then_call_back() -> Any:
        row = create_customer(deps.get_conn(), deps.caller(), {"email": email}, now=0)
        deps.after_commit(lambda: seen.append(count_visible(row.id)))
        return {"id": row.id}

    def count_visible(customer_id: str) -> int:
        found = db.execute("SELECT count(*) AS n FROM customers WHERE id = %s", (customer_id,))
        return int(found.fetchone()["n"])

    email = f"hook-{uuid.uuid4().hex}@example.com"
    api = ApiClient(private_app)
    # when: it runs with a key (one transaction) and without (the operation commits)
    keyed = api.post("/v1/test_after_commit", {}, {"Idempotency-Key": str(uuid.uuid4())})
    plain = api.post("/v1/test_after_commit")
    # then: each callback ran once, and saw its customer committed (another connection)
    assert (keyed.status_code, plain.status_code) == (200, 200)
    assert seen == [1, 1]


def test_after_commit_callbacks_are_dropped_when_the_change_rolls_back(private_app, db):
    seen: list[str] = []

    @private_app.post("/v1/test_after_commit_then_fail")
    def call_back_then_fail() -> Any:
        deps.after_commit(lambda: seen.append("called"))
        raise RuntimeError("rolled back")

    api = ApiClient(private_app)
    response = api.post(
        "/v1/test_after_commit_then_fail", {}, {"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 500
    assert seen == []


# -- Stripe's rule: a request refused by parameter validation saves no result ---------


def stored_keys(db: Any, key: str) -> list[int]:
    """The status codes stored under an Idempotency-Key (one at most)."""
    rows = db.execute("SELECT status_code FROM idempotency_keys WHERE key = %s", (key,))
    return [r["status_code"] for r in rows.fetchall()]


def attach_body(pi_id: str) -> dict[str, str]:
    return {"payment_intent": pi_id}


# Each: a request refused by validation, then the corrected request, under one key.
REFUSED_THEN_CORRECTED = [
    pytest.param(
        lambda pi: {**attach_body(pi), "colour": "blue"}, "colour", id="unknown-parameter"
    ),
    pytest.param(lambda pi: {}, "payment_intent", id="neither-payment"),
    pytest.param(
        lambda pi: {**attach_body(pi), "payment_record": "pr_x"}, "payment_record", id="both"
    ),
    pytest.param(lambda pi: {"payment_intent": "in_not_a_pi"}, "payment_intent", id="bad-id"),
    pytest.param(lambda pi: {**attach_body(pi), "expand[]": "nonsense"}, "expand", id="bad-expand"),
]


@pytest.mark.parametrize(("refused_body", "param"), REFUSED_THEN_CORRECTED)
def test_a_validation_refusal_stores_nothing_so_the_corrected_retry_runs(
    api, db, refused_body, param
):
    # given an open invoice and a PaymentIntent for it
    invoice = factories.open_invoice(api, 800)
    pi = factories.payment_intent(api, invoice, 800)
    path = f"/v1/invoices/{invoice['id']}/attach_payment"
    headers = {"Idempotency-Key": f"corrected-{uuid.uuid4()}"}

    # when an attach with a bad parameter is refused, and is sent again corrected
    refused = api.post(path, refused_body(pi["id"]), headers)
    stored_after_refusal = stored_keys(db, headers["Idempotency-Key"])
    corrected = api.post(path, attach_body(pi["id"]), headers)

    # then the refusal named the parameter and saved nothing; the corrected request ran
    # (no replay, no idempotency_error for other parameters) and attached the payment
    assert refused.status_code == 400, refused.json
    assert refused.json["error"]["param"] == param
    assert stored_after_refusal == []
    assert corrected.status_code == 200, corrected.json
    assert "Idempotent-Replayed" not in corrected.headers
    payments = db.execute(
        "SELECT status FROM invoice_payments WHERE invoice = %s", (invoice["id"],)
    ).fetchall()
    assert payments == [{"status": "open"}]
    assert stored_keys(db, headers["Idempotency-Key"]) == [200]


def test_the_stripe_sdk_retries_a_corrected_request_with_the_same_key(server, api, db):
    # given an open invoice and a PaymentIntent for it, and the stripe SDK against Tally
    invoice = factories.open_invoice(api, 500)
    pi = factories.payment_intent(api, invoice, 500)
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)
    options: Any = {"idempotency_key": f"sdk-corrected-{uuid.uuid4()}"}

    # when an attach with an unknown parameter is refused, then corrected under that key
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.invoices.attach_payment(
            invoice["id"], params={"payment_intent": pi["id"], "colour": "blue"}, options=options
        )
    attached = client.v1.invoices.attach_payment(
        invoice["id"], params={"payment_intent": pi["id"]}, options=options
    )

    # then the corrected attach ran: the payment is attached, once
    assert refused.value.param == "colour"
    assert "Idempotent-Replayed" not in attached.last_response.headers
    assert [p.payment.payment_intent for p in attached_payments(client, invoice["id"])] == [
        pi["id"]
    ]


def attached_payments(client: Any, invoice_id: str) -> list[Any]:
    return list(client.v1.invoice_payments.list(params={"invoice": invoice_id}).data)


def test_a_refusal_by_the_operation_is_stored_and_replayed(api, db):
    # given a draft invoice (it cannot take payments yet) and a PaymentIntent for it
    invoice = factories.draft_invoice(api, 900)
    pi = factories.payment_intent(api, invoice, 900)
    path = f"/v1/invoices/{invoice['id']}/attach_payment"
    headers = {"Idempotency-Key": f"refused-by-operation-{uuid.uuid4()}"}

    # when the attach is refused by the invoice's state, the invoice is finalized (so a
    # fresh run would now attach), and the attach is retried with the same key
    refused = api.post(path, attach_body(pi["id"]), headers)
    factories.finalize(api, invoice["id"])
    again = api.post(path, attach_body(pi["id"]), headers)

    # then the refusal was stored and replayed byte for byte: the retry did not run
    assert refused.status_code == 400, refused.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == refused.get_data()
    assert stored_keys(db, headers["Idempotency-Key"]) == [400]
    count = db.execute(
        "SELECT count(*) AS n FROM invoice_payments WHERE invoice = %s", (invoice["id"],)
    ).fetchone()
    assert count["n"] == 0
