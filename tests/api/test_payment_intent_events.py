"""payment_intent.* events whenever Tally's copy of a PaymentIntent changes, from the
API, a webhook or an upstream fetch: one per change, none for a duplicate or a late
webhook that changes nothing, each carrying the request that caused it (or nulls)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import stripe
from psycopg.rows import dict_row

from devtools.stripe_events import stripe_event
from service.adapters.upstream import Upstream
from service.operations.sweep import REFETCH_BATCH, refetch_open_payments
from tests import factories
from tests.conftest import TEST_KEY, serving
from tests.factories import delivered_to, receive, stripes
from tests.upstream_stripe import A_TEST_KEY, attach, b_invoice_for_a_customer

TYPES = (
    "payment_intent.created",
    "payment_intent.requires_action",
    "payment_intent.processing",
    "payment_intent.succeeded",
    "payment_intent.canceled",
    "payment_intent.payment_failed",
)


@pytest.fixture
def client(server: str) -> stripe.StripeClient:
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)


@pytest.fixture
def endpoint(api: Any) -> Iterator[dict[str, Any]]:
    """A webhook endpoint subscribed to every payment_intent.* type, removed after."""
    params = {f"enabled_events[{n}]": t for n, t in enumerate(TYPES)}
    response = api.post("/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/hook", **params})
    assert response.status_code == 200, response.json
    yield response.json
    assert api.delete(f"/v1/webhook_endpoints/{response.json['id']}").status_code == 200


def pi_events(db: Any, pi_id: str) -> list[dict[str, Any]]:
    """The payment_intent.* events of `pi_id`, oldest first."""
    return db.execute(
        """
        SELECT id, type, data, request_id, idempotency_key FROM events
        WHERE type LIKE 'payment_intent.%%' AND data->'object'->>'id' = %s ORDER BY seq
        """,
        (pi_id,),
    ).fetchall()


def types_of(db: Any, pi_id: str) -> list[str]:
    return [e["type"] for e in pi_events(db, pi_id)]


def pi_row(db: Any, pi_id: str) -> dict[str, Any] | None:
    return db.execute(
        "SELECT status, amount, amount_received, canceled_at FROM payment_intents WHERE id = %s",
        (pi_id,),
    ).fetchone()


def test_sdk_create_writes_payment_intent_created(client, api, db, endpoint):
    cus = factories.customer(api)

    pi = client.v1.payment_intents.create(
        params={"amount": 1500, "currency": "usd", "customer": cus["id"]},
        options={"idempotency_key": f"pi-for-{cus['id']}"},
    )

    written = pi_events(db, pi.id)
    assert [e["type"] for e in written] == ["payment_intent.created"]
    (created,) = written
    assert created["data"]["object"] == api.get(f"/v1/payment_intents/{pi.id}").json
    assert created["data"]["object"]["status"] == "requires_payment_method"
    assert created["idempotency_key"] == f"pi-for-{cus['id']}"
    assert created["request_id"].startswith("req_")
    assert delivered_to(db, endpoint["id"], created["id"])
    listed = api.get("/v1/events", {"type": "payment_intent.created", "limit": 100}).json
    assert created["id"] in [e["id"] for e in listed["data"]]


def test_sdk_cancel_writes_payment_intent_canceled(client, api, db):
    invoice = factories.open_invoice(api, 800)
    pi = factories.payment_intent(api, invoice, 800)

    canceled = client.v1.payment_intents.cancel(
        pi["id"], params={"cancellation_reason": "abandoned"}
    )

    assert canceled.status == "canceled"
    written = pi_events(db, pi["id"])
    assert [e["type"] for e in written] == ["payment_intent.created", "payment_intent.canceled"]
    obj = written[1]["data"]["object"]
    assert (obj["status"], obj["cancellation_reason"]) == ("canceled", "abandoned")
    assert obj == api.get(f"/v1/payment_intents/{pi['id']}").json
    assert written[1]["request_id"].startswith("req_")
    assert written[1]["request_id"] != written[0]["request_id"]


def test_refused_create_and_cancel_write_nothing(api, db, service_urls):
    cus = factories.customer(api)
    count = db.execute("SELECT count(*) AS n FROM payment_intents").fetchone()["n"]

    bad = api.post("/v1/payment_intents", {"amount": -5, "currency": "usd", "customer": cus["id"]})

    assert bad.status_code == 400
    assert bad.json["error"]["param"] == "amount"
    assert db.execute("SELECT count(*) AS n FROM payment_intents").fetchone()["n"] == count
    # and a PaymentIntent that cannot be canceled any more writes no second event
    invoice = factories.open_invoice(api, 300)
    pi = factories.payment_intent(api, invoice, 300)
    factories.settle(service_urls["DATABASE_URL"], pi)
    before = (pi_row(db, pi["id"]), types_of(db, pi["id"]))
    assert before[1] == ["payment_intent.created", "payment_intent.succeeded"]
    refused = api.post(f"/v1/payment_intents/{pi['id']}/cancel")
    assert refused.status_code == 400
    assert refused.json["error"]["code"] == "payment_intent_unexpected_state"
    assert (pi_row(db, pi["id"]), types_of(db, pi["id"])) == before


def test_webhooks_write_one_event_per_change_of_the_copy(api, db, server, service_urls, endpoint):
    dsn = service_urls["DATABASE_URL"]
    pi = stripes()

    # when Stripe tells of a PaymentIntent Tally has never seen, processing
    processing = stripe_event(pi, "payment_intent.processing")
    receive(server, dsn, processing)
    # then the new copy is created, then processing, with no request (a webhook did it)
    written = pi_events(db, pi["id"])
    assert [e["type"] for e in written] == ["payment_intent.created", "payment_intent.processing"]
    assert {(e["request_id"], e["idempotency_key"]) for e in written} == {(None, None)}
    assert written[1]["data"]["object"] == api.get(f"/v1/payment_intents/{pi['id']}").json
    assert all(delivered_to(db, endpoint["id"], e["id"]) for e in written)

    # when the same webhook comes again, and another event says the same
    receive(server, dsn, processing)
    receive(server, dsn, stripe_event(pi, "payment_intent.processing"))
    # then nothing more is written
    assert len(pi_events(db, pi["id"])) == 2

    # when it needs an action, fails, succeeds, and a late processing comes after
    for event_type in (
        "payment_intent.requires_action",
        "payment_intent.payment_failed",
        "payment_intent.succeeded",
        "payment_intent.processing",
        "payment_intent.succeeded",
    ):
        receive(server, dsn, stripe_event(pi, event_type))

    # then one event per move of the copy, none for the late or repeated ones
    assert types_of(db, pi["id"]) == [
        "payment_intent.created",
        "payment_intent.processing",
        "payment_intent.requires_action",
        "payment_intent.payment_failed",
        "payment_intent.succeeded",
    ]
    assert pi_row(db, pi["id"])["status"] == "succeeded"
    succeeded = pi_events(db, pi["id"])[-1]["data"]["object"]
    assert (succeeded["status"], succeeded["amount_received"]) == ("succeeded", 2500)


def test_a_webhook_success_writes_its_event_before_the_credit_events(api, db, server, service_urls):
    invoice, pi = factories.attached_invoice(api, 900)

    receive(server, service_urls["DATABASE_URL"], stripe_event(pi, "payment_intent.succeeded"))

    written = [
        e
        for e in db.execute(
            "SELECT type, request_id FROM events WHERE data->'object'->>'id' = ANY(%s)"
            " ORDER BY seq",
            ([invoice["id"], pi["id"]],),
        ).fetchall()
        if e["type"] not in ("invoice.created", "invoice.finalized")
    ]
    assert [e["type"] for e in written] == [
        "payment_intent.created",
        "payment_intent.succeeded",
        "invoice.updated",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    assert written[0]["request_id"] is not None  # the API created it
    assert {e["request_id"] for e in written[1:]} == {None}
    assert api.get(f"/v1/invoices/{invoice['id']}").json["status"] == "paid"


def test_a_webhook_cancel_writes_payment_intent_canceled_once(api, db, server, service_urls):
    dsn = service_urls["DATABASE_URL"]
    _, pi = factories.attached_invoice(api, 400)
    canceled = stripe_event(pi, "payment_intent.canceled")

    receive(server, dsn, canceled)
    receive(server, dsn, stripe_event(pi, "payment_intent.canceled"))

    assert types_of(db, pi["id"]) == ["payment_intent.created", "payment_intent.canceled"]
    inpay = db.execute(
        "SELECT status FROM invoice_payments WHERE payment_intent = %s", (pi["id"],)
    ).fetchone()
    assert inpay == {"status": "canceled"}


def test_an_attach_that_fetches_upstream_writes_the_events_with_its_request(a, b, db):
    # given A's PaymentIntent that succeeded at A, which B has never seen
    _, invoice = b_invoice_for_a_customer(a, b, 1100)
    pi = factories.payment_intent(a.api, invoice, 1100)
    factories.settle(a.dsn, pi)

    # when B attaches it
    attached = attach(b, invoice["id"], pi["id"], **{"Idempotency-Key": f"attach-{pi['id']}"})

    # then B's new copy wrote created and succeeded, carrying the attach's request
    assert attached.status_code == 200, attached.json
    written = pi_events(db, pi["id"])
    assert [e["type"] for e in written] == ["payment_intent.created", "payment_intent.succeeded"]
    assert {e["idempotency_key"] for e in written} == {f"attach-{pi['id']}"}
    assert {e["request_id"] for e in written} == {attached.headers["Request-Id"]}
    assert written[1]["data"]["object"] == b.get(f"/v1/payment_intents/{pi['id']}").json


def test_a_cancel_upstream_writes_one_canceled_event_and_its_webhook_none(
    a, b, b_app, db, service_urls
):
    # given A's PaymentIntent attached in B, open
    _, invoice = b_invoice_for_a_customer(a, b, 700)
    pi = factories.payment_intent(a.api, invoice, 700)
    assert attach(b, invoice["id"], pi["id"]).status_code == 200
    assert types_of(db, pi["id"]) == ["payment_intent.created"]

    # when a client cancels it in B (so at A first), and A's webhook of it arrives
    with serving(b_app) as b_url:
        sdk = stripe.StripeClient(TEST_KEY, base_addresses={"api": b_url}, max_network_retries=0)
        sdk.v1.payment_intents.cancel(pi["id"], options={"idempotency_key": f"c-{pi['id']}"})
        at_a = a.api.get(f"/v1/payment_intents/{pi['id']}").json
        receive(b_url, service_urls["DATABASE_URL"], stripe_event(at_a, "payment_intent.canceled"))

    # then B wrote one payment_intent.canceled, with the cancel's request
    written = pi_events(db, pi["id"])
    assert [e["type"] for e in written] == ["payment_intent.created", "payment_intent.canceled"]
    assert written[1]["idempotency_key"] == f"c-{pi['id']}"
    assert written[1]["data"]["object"]["status"] == "canceled"


def test_the_sweepers_refetch_writes_the_success_with_no_request(a, b, db, service_urls):
    # given A's PaymentIntent attached in B, open, that then succeeded at A, its
    # webhook never reaching B
    _, invoice = b_invoice_for_a_customer(a, b, 650)
    pi = factories.payment_intent(a.api, invoice, 650)
    assert attach(b, invoice["id"], pi["id"]).status_code == 200
    factories.settle(a.dsn, pi)
    stale = db.execute(
        "SELECT count(*) AS n FROM invoice_payments WHERE status = 'open'"
        " AND payment_intent IS NOT NULL"
    ).fetchone()["n"]

    # when the sweeper re-fetches open PaymentIntents from upstream
    upstream = Upstream(A_TEST_KEY, a.url, timeout=5)
    with psycopg.connect(service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row) as c:
        for _ in range(stale // REFETCH_BATCH + 1):
            refetch_open_payments(c, upstream, refetch_after=0, now=int(time.time()) + 1)
            if pi_row(db, pi["id"])["status"] == "succeeded":
                break

    # then the copy's success is an event with no request, as a webhook's would be
    written = pi_events(db, pi["id"])
    assert [e["type"] for e in written] == ["payment_intent.created", "payment_intent.succeeded"]
    assert (written[1]["request_id"], written[1]["idempotency_key"]) == (None, None)
    assert b.get(f"/v1/invoices/{invoice['id']}").json["status"] == "paid"
