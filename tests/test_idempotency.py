"""Idempotency-Key: the stored response commits with the change, or neither does.

Faults are injected at the one point that matters, after the operation has made its
change and before the response is stored: an `after_request` hook added to a private
app (Flask runs hooks added later first, so it runs before Tally's own), or a
test-only route that makes a real change and then raises.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from flask import request

from service.api import deps
from service.operations.customers import create_customer
from tests import factories
from tests.conftest import ApiClient


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


def test_a_stored_client_error_changed_nothing(api, db):
    # given: a request that creates a customer but then asks for an impossible expansion
    email = f"refused-{uuid.uuid4().hex}@example.com"
    body = {"email": email, "expand[]": "nonsense"}
    headers = {"Idempotency-Key": f"refused-{uuid.uuid4()}"}
    # when: it is sent, then retried with the same key
    refused = api.post("/v1/customers", body, headers)
    again = api.post("/v1/customers", body, headers)
    # then: the 400 is stored and replayed, and no customer was left behind
    assert refused.status_code == 400
    assert refused.json["error"]["param"] == "expand"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == refused.get_data()
    count = db.execute("SELECT count(*) AS n FROM customers WHERE email = %s", (email,))
    assert count.fetchone()["n"] == 0


def test_after_commit_callbacks_run_once_the_change_is_visible(private_app, db):
    # given: a route that creates a customer and asks to be called back after commit
    seen: list[int] = []

    @private_app.post("/v1/test_after_commit")
    def create_then_call_back() -> Any:
        row = create_customer(deps.get_conn(), deps.caller(), {"email": email}, now=0)
        deps.after_commit(lambda: seen.append(count_visible(row["id"])))
        return {"id": row["id"]}

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
