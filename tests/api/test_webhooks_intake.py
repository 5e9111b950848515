"""POST /webhooks/stripe: verify, store once, acknowledge; refuse the rest unstored."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools.stripe_events import signed_webhook
from service.app import create_app
from service.domain.events import event_object
from service.domain.signatures import WebhookSecrets
from service.wakeups import DRAIN_QUEUED, PUBLISH_QUEUED
from tests.conftest import WEBHOOK_SECRET


def make_event(event_type="payment_intent.succeeded", **over):
    obj = {"id": f"pi_{uuid.uuid4().hex}", "object": "payment_intent"}
    event = event_object(
        id=f"evt_{uuid.uuid4().hex}",
        type=event_type,
        created=int(time.time()),
        data={"object": obj},
        livemode=False,
        pending_webhooks=1,
    )
    return {**event, **over}


def post_signed(client, body: bytes, *, secret=WEBHOOK_SECRET, timestamp=None, header=None):
    body, headers = signed_webhook(body, secret, timestamp=timestamp)
    if header is not None:
        headers["Stripe-Signature"] = header
    return client.post("/webhooks/stripe", data=body, headers=headers)


def count(db, event_id=None):
    if event_id is None:
        return db.execute("SELECT count(*) AS n FROM inbound_events").fetchone()["n"]
    return db.execute(
        "SELECT count(*) AS n FROM inbound_events WHERE id = %s", (event_id,)
    ).fetchone()["n"]


def test_valid_event_is_stored_and_acknowledged(app, db):
    event = make_event()
    body = json.dumps(event).encode()
    response = post_signed(app.test_client(), body)
    assert response.status_code == 200
    assert response.json == {"received": True}
    row = db.execute("SELECT * FROM inbound_events WHERE id = %s", (event["id"],)).fetchone()
    assert row["type"] == "payment_intent.succeeded"
    assert row["status"] == "pending"
    assert row["livemode"] is False
    assert row["payload"] == event


def test_valid_event_wakes_a_drain_task(app):
    client = app.extensions["redis"]
    client.delete(DRAIN_QUEUED, "inbound")
    event = make_event()
    assert post_signed(app.test_client(), json.dumps(event).encode()).status_code == 200
    assert client.exists(DRAIN_QUEUED)
    [message] = client.lrange("inbound", 0, -1)
    assert json.loads(message)["headers"]["task"] == "inbound.drain"
    client.delete(DRAIN_QUEUED, "inbound")


def test_same_event_twice_is_one_row(app, db):
    event = make_event()
    body = json.dumps(event).encode()
    first = post_signed(app.test_client(), body)
    again = post_signed(app.test_client(), body)
    assert first.status_code == again.status_code == 200
    assert again.json == {"received": True}
    assert count(db, event["id"]) == 1


def test_concurrent_duplicates_are_one_row(server, db):
    import requests

    event = make_event()
    body = json.dumps(event).encode()

    def send(_):
        _, headers = signed_webhook(body, WEBHOOK_SECRET)
        return requests.post(
            f"{server}/webhooks/stripe", data=body, headers=headers, timeout=10
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, range(16)))
    assert statuses == [200] * 16
    assert count(db, event["id"]) == 1


def test_unknown_event_type_is_stored_and_acknowledged(app, db):
    event = make_event("customer.created")
    assert post_signed(app.test_client(), json.dumps(event).encode()).status_code == 200
    assert count(db, event["id"]) == 1


@pytest.mark.parametrize(
    ("case", "body_of", "sign_with"),
    [
        ("bad signature", lambda e: json.dumps(e).encode(), "whsec_wrong"),
        ("non-JSON", lambda e: b"{not json", WEBHOOK_SECRET),
        ("JSON array", lambda e: json.dumps([e]).encode(), WEBHOOK_SECRET),
        ("not an event", lambda e: json.dumps({**e, "object": "charge"}).encode(), WEBHOOK_SECRET),
        ("id not evt_", lambda e: json.dumps({**e, "id": "ch_1"}).encode(), WEBHOOK_SECRET),
        ("no type", lambda e: json.dumps({**e, "type": None}).encode(), WEBHOOK_SECRET),
        ("NaN", lambda e: json.dumps(e).encode()[:-1] + b', "x": NaN}', WEBHOOK_SECRET),
        ("NUL in string", lambda e: json.dumps({**e, "x": "a\u0000b"}).encode(), WEBHOOK_SECRET),
    ],
)
def test_refusals_store_nothing(app, db, case, body_of, sign_with):
    before = count(db)
    response = post_signed(app.test_client(), body_of(make_event()), secret=sign_with)
    assert response.status_code == 400, case
    assert response.json["error"]["type"] == "invalid_request_error"
    assert count(db) == before


def test_old_timestamp_is_refused(app, db):
    before = count(db)
    body = json.dumps(make_event()).encode()
    response = post_signed(app.test_client(), body, timestamp=int(time.time()) - 301)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "signature_invalid"
    assert count(db) == before


def test_v0_only_and_missing_signature_are_refused(app, db):
    before = count(db)
    body = json.dumps(make_event()).encode()
    now = int(time.time())
    v1 = signed_webhook(body, WEBHOOK_SECRET, timestamp=now)[1]["Stripe-Signature"].split("v1=")[1]
    assert post_signed(app.test_client(), body, header=f"t={now},v0={v1}").status_code == 400
    missing = app.test_client().post("/webhooks/stripe", data=body)
    assert missing.status_code == 400
    assert count(db) == before


def test_oversized_body_is_413(app, db):
    before = count(db)
    event = make_event(padding="x" * (256 * 1024))
    response = post_signed(app.test_client(), json.dumps(event).encode())
    assert response.status_code == 413
    assert count(db) == before


def test_no_secrets_configured_refuses(settings, db):
    bare = create_app(dataclasses.replace(settings, webhook_secrets=WebhookSecrets()))
    try:
        before = count(db)
        body = json.dumps(make_event()).encode()
        response = post_signed(bare.test_client(), body)
        assert response.status_code == 400
        assert response.json["error"]["code"] == "webhook_secret_missing"
        assert count(db) == before
    finally:
        bare.extensions["pool"].close()


def test_redis_down_still_stores_and_acknowledges(settings, db):
    # Nothing listens on port 1: every Redis call fails at once.
    down = create_app(dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0"))
    try:
        client = down.test_client()
        started = time.monotonic()
        events = [make_event() for _ in range(5)]
        for event in events:
            assert post_signed(client, json.dumps(event).encode()).status_code == 200
        assert time.monotonic() - started < 2
        assert all(count(db, e["id"]) == 1 for e in events)
    finally:
        down.extensions["pool"].close()


def test_postgres_down_is_503(settings):
    down = create_app(dataclasses.replace(settings, database_url="postgresql://127.0.0.1:1/nope"))
    try:
        down.extensions["pool"].timeout = 0.5
        body = json.dumps(make_event()).encode()
        response = post_signed(down.test_client(), body)
        assert response.status_code == 503
    finally:
        down.extensions["pool"].close()


def test_api_calls_that_write_events_wake_the_publisher_once_committed(app):
    # given no publish task on its way
    from tests.conftest import ApiClient

    client = app.extensions["redis"]
    client.delete(PUBLISH_QUEUED, "events")
    api = ApiClient(app)

    # when calls that write no event run, nothing is sent (creating a customer writes
    # customer.created, so reads only)
    assert api.get("/v1/customers").status_code == 200
    assert api.get("/v1/events").status_code == 200
    assert not client.exists(PUBLISH_QUEUED) and client.llen("events") == 0

    # then a call that writes events sends one events.publish, and a second call
    # while that task waits in the queue sends none (the wake-ups coalesce)
    cus = api.post("/v1/customers", {"email": "loud@example.com"}).json
    for amount in (100, 200):
        item = {"customer": cus["id"], "amount": amount, "currency": "usd"}
        assert api.post("/v1/invoiceitems", item).status_code == 200
    assert client.exists(PUBLISH_QUEUED)
    [message] = client.lrange("events", 0, -1)
    assert json.loads(message)["headers"]["task"] == "events.publish"
    client.delete(PUBLISH_QUEUED, "events")


def test_an_attach_wakes_the_publisher_only_when_it_credits(app, settings):
    # given an open invoice, a PaymentIntent not yet succeeded and one succeeded
    from tests import factories
    from tests.conftest import ApiClient

    client = app.extensions["redis"]
    api = ApiClient(app)
    waiting, paid = factories.open_invoice(api, 1000), factories.open_invoice(api, 1000)
    pending_pi = factories.payment_intent(api, waiting, 1000)
    succeeded_pi = factories.payment_intent(api, paid, 1000)
    factories.settle(settings.database_url, succeeded_pi)
    client.delete(PUBLISH_QUEUED, "events")

    # when the one not succeeded is attached, it writes no events: nothing is sent
    attach = f"/v1/invoices/{waiting['id']}/attach_payment"
    key = {"Idempotency-Key": str(uuid.uuid4())}
    assert api.post(attach, {"payment_intent": pending_pi["id"]}, key).status_code == 200
    assert not client.exists(PUBLISH_QUEUED) and client.llen("events") == 0

    # then the succeeded one is credited as it is attached, and its events wake it
    attach = f"/v1/invoices/{paid['id']}/attach_payment"
    key = {"Idempotency-Key": str(uuid.uuid4())}
    assert api.post(attach, {"payment_intent": succeeded_pi["id"]}, key).json["status"] == "paid"
    [message] = client.lrange("events", 0, -1)
    assert json.loads(message)["headers"]["task"] == "events.publish"
    client.delete(PUBLISH_QUEUED, "events")
