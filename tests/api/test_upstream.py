"""Upstream Stripe, played by a second Tally: instance A (its own database, served over
HTTP) is Stripe; instance B, configured with A's key, mirrors A's customers and
PaymentIntents when it is asked about ids it has never seen."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
import stripe
from psycopg import sql

from devtools.localenv import free_port
from service.adapters.upstream import Upstream
from service.config import ConfigError, Settings
from service.errors import UpstreamUnavailable
from tests import factories
from tests.conftest import LIVE_KEY, TEST_KEY, ApiClient, serving
from tests.upstream_stripe import (
    A_LIVE_KEY,
    A_TEST_KEY,
    BOUND,
    SLACK,
    StripeA,
    attach,
    b_invoice_for_a_customer,
)


def row(db: psycopg.Connection[Any], table: str, id_: str) -> dict[str, Any] | None:
    query = sql.SQL("SELECT * FROM {} WHERE id = %s").format(sql.Identifier(table))
    return db.execute(query, (id_,)).fetchone()


def snapshot(db: psycopg.Connection[Any], invoice_id: str) -> tuple[Any, ...]:
    """What B holds about an invoice: its row, its payments and its events."""
    return (
        row(db, "invoices", invoice_id),
        db.execute("SELECT * FROM invoice_payments WHERE invoice = %s", (invoice_id,)).fetchall(),
        factories.invoice_events(db, invoice_id),
    )


def test_a_payment_intent_that_succeeded_upstream_attaches_and_credits_at_once(a, b, db):
    # given A's customer and a PaymentIntent of theirs that succeeded at A, and B's
    # invoice for that customer
    customer, invoice = b_invoice_for_a_customer(a, b, 1500)
    pi = factories.payment_intent(a.api, invoice, 1500)
    factories.settle(a.dsn, pi)
    assert row(db, "payment_intents", pi["id"]) is None

    # when B is asked to attach it
    response = attach(b, invoice["id"], pi["id"])

    # then B mirrored it under A's id and credited it at once
    assert response.status_code == 200, response.json
    assert response.json["status"] == "paid"
    assert response.json["amount_paid"] == 1500
    mirrored = row(db, "payment_intents", pi["id"])
    assert mirrored["status"] == "succeeded"
    assert (mirrored["customer"], mirrored["livemode"]) == (customer["id"], False)
    assert factories.invoice_events(db, invoice["id"])[-4:] == factories.PAYING_EVENTS


def test_an_unpaid_upstream_payment_intent_waits_open_and_is_credited_by_its_webhook(
    a, b, db, service_urls
):
    # given B's invoice and A's PaymentIntent that has not succeeded yet
    _, invoice = b_invoice_for_a_customer(a, b, 700)
    pi = factories.payment_intent(a.api, invoice, 700)

    # when B attaches it, and later hears that it succeeded
    attached = attach(b, invoice["id"], pi["id"])
    factories.settle(service_urls["DATABASE_URL"], pi)

    # then it waited as an open payment, and the success credited it
    assert attached.status_code == 200, attached.json
    assert attached.json["status"] == "open"
    assert row(db, "invoices", invoice["id"])["status"] == "paid"


def test_an_upstream_payment_intent_is_refused_by_the_attach_rules_and_not_kept(a, b, db):
    # given A's PaymentIntent for more than B's invoice asks
    _, invoice = b_invoice_for_a_customer(a, b, 500)
    pi = factories.payment_intent(a.api, invoice, 900)

    # when B is asked to attach it
    response = attach(b, invoice["id"], pi["id"])

    # then the normal rules refuse it, and the refusal rolled the mirror back too
    assert response.status_code == 400
    assert response.json["error"]["param"] == "payment_intent"
    assert row(db, "payment_intents", pi["id"]) is None


def test_a_payment_intent_upstream_does_not_have_is_resource_missing(a, b, db):
    _, invoice = b_invoice_for_a_customer(a, b, 500)
    before = snapshot(db, invoice["id"])

    response = attach(b, invoice["id"], "pi_neverheardof")

    assert response.status_code == 400
    assert response.json["error"]["code"] == "resource_missing"
    assert response.json["error"]["param"] == "payment_intent"
    assert snapshot(db, invoice["id"]) == before


@pytest.mark.parametrize(
    ("upstream_key", "caller_key", "a_mode"),
    [
        # B's upstream key sees the PaymentIntent, but it is of the other mode than B's
        # caller: B refuses it.
        pytest.param(A_TEST_KEY, LIVE_KEY, "test", id="test-pi-for-a-live-caller"),
        pytest.param(A_LIVE_KEY, TEST_KEY, "live", id="live-pi-for-a-test-caller"),
        # B's upstream key is of the other mode: A itself answers 404.
        pytest.param(A_TEST_KEY, LIVE_KEY, "live", id="live-pi-fetched-with-a-test-key"),
    ],
)
def test_a_payment_intent_of_the_other_mode_is_resource_missing(
    a, make_b, db, upstream_key, caller_key, a_mode
):
    # given a PaymentIntent at A in one mode, and B's invoice in the other
    b = ApiClient(make_b(key=upstream_key), caller_key)
    invoice = factories.open_invoice(b, 500)
    a_api = a.api if a_mode == "test" else a.live_api
    pi = a_api.post("/v1/payment_intents", {"amount": 500, "currency": "usd"}).json

    # when B is asked to attach it
    response = attach(b, invoice["id"], pi["id"])

    # then it does not exist for that caller, and B mirrored nothing
    assert response.status_code == 400
    assert response.json["error"]["code"] == "resource_missing"
    assert response.json["error"]["param"] == "payment_intent"
    assert row(db, "payment_intents", pi["id"]) is None


CUSTOMER_CREATES = [
    pytest.param("/v1/invoices", {}, id="invoice"),
    pytest.param("/v1/invoiceitems", {"amount": 100, "currency": "usd"}, id="invoice-item"),
    pytest.param("/v1/payment_intents", {"amount": 100, "currency": "usd"}, id="payment-intent"),
]


@pytest.mark.parametrize(("path", "params"), CUSTOMER_CREATES)
def test_an_unknown_customer_is_fetched_from_upstream_and_mirrored_under_its_id(
    a, b, db, path, params
):
    # given a customer only A knows
    customer = factories.customer(a.api, email="stripe@example.com", name="Upstream Payer")
    assert row(db, "customers", customer["id"]) is None

    # when B is asked to bill them
    response = b.post(path, {"customer": customer["id"], **params})

    # then B fetched and mirrored them, under the same id
    assert response.status_code == 200, response.json
    assert response.json["customer"] == customer["id"]
    mirrored = b.get(f"/v1/customers/{customer['id']}").json
    for field in ("id", "email", "name", "livemode", "created", "metadata"):
        assert mirrored[field] == customer[field]


def test_a_mirrored_customer_is_announced_by_customer_created(a, b, db):
    # given a customer only A knows
    customer = factories.customer(a.api, email="mirror@example.com")

    # when B mirrors it to bill it
    response = b.post("/v1/invoices", {"customer": customer["id"]})

    # then B wrote customer.created for it, with the request that mirrored it, and
    # before the invoice's own event
    assert response.status_code == 200, response.json
    types = db.execute(
        "SELECT type, data, request_id FROM events"
        " WHERE data->'object'->>'id' IN (%s, %s) ORDER BY seq",
        (customer["id"], response.json["id"]),
    ).fetchall()
    assert [t["type"] for t in types] == ["customer.created", "invoice.created"]
    assert types[0]["data"]["object"] == b.get(f"/v1/customers/{customer['id']}").json
    assert types[0]["request_id"] == response.headers["Request-Id"]


def test_a_customer_deleted_upstream_is_resource_missing_and_not_mirrored(a, b, db):
    customer = factories.customer(a.api)
    assert a.api.delete(f"/v1/customers/{customer['id']}").status_code == 200

    response = b.post("/v1/invoices", {"customer": customer["id"]})

    assert response.status_code == 400
    assert (response.json["error"]["code"], response.json["error"]["param"]) == (
        "resource_missing",
        "customer",
    )
    assert row(db, "customers", customer["id"]) is None


def test_a_mirrored_customer_is_fetched_once(a, b):
    customer = factories.customer(a.api)
    b.post("/v1/invoiceitems", {"customer": customer["id"], "amount": 100, "currency": "usd"})
    a.faults.fail("500")  # A is down: B no longer needs it for this customer

    response = b.post("/v1/invoices", {"customer": customer["id"]})

    assert response.status_code == 200, response.json


@pytest.mark.parametrize(("path", "params"), CUSTOMER_CREATES)
def test_a_customer_upstream_does_not_have_is_resource_missing(b, db, path, params):
    response = b.post(path, {"customer": "cus_neverheardof", **params})

    assert response.status_code == 400
    assert response.json["error"]["code"] == "resource_missing"
    assert response.json["error"]["param"] == "customer"
    assert row(db, "customers", "cus_neverheardof") is None


def faulty(a: StripeA, make_b: Any, fault: str) -> ApiClient:
    """B's API, with A failing in the way named."""
    if fault == "unreachable":
        return ApiClient(make_b(base=f"http://127.0.0.1:{free_port()}"))
    a.faults.fail(fault)
    return ApiClient(make_b())


FAULTS = ["500", "hang", "unreachable", "proxy-404", "proxy-200"]


def assert_retryable_api_error(response: Any, started: float, param: str) -> None:
    assert time.monotonic() - started < BOUND + SLACK
    assert response.status_code == 503, response.json
    assert response.json["error"]["type"] == "api_error"
    assert response.json["error"]["param"] == param


@pytest.mark.parametrize("fault", FAULTS)
def test_an_upstream_failure_on_attach_is_a_retryable_api_error_and_changes_nothing(
    a, b, make_b, db, fault
):
    # given B's invoice for A's customer, and A's PaymentIntent for it
    _, invoice = b_invoice_for_a_customer(a, b, 800)
    pi = factories.payment_intent(a.api, invoice, 800)
    factories.settle(a.dsn, pi)
    before = snapshot(db, invoice["id"])

    # when B is asked to attach it while A fails
    broken_b = faulty(a, make_b, fault)
    started = time.monotonic()
    response = attach(broken_b, invoice["id"], pi["id"])

    # then the caller hears a retryable api_error within the bound, and B is unchanged
    assert_retryable_api_error(response, started, "payment_intent")
    assert row(db, "payment_intents", pi["id"]) is None
    assert snapshot(db, invoice["id"]) == before


@pytest.mark.parametrize(("path", "params"), CUSTOMER_CREATES)
@pytest.mark.parametrize("fault", FAULTS)
def test_an_upstream_failure_on_a_customer_is_a_retryable_api_error_and_changes_nothing(
    a, make_b, db, fault, path, params
):
    customer = factories.customer(a.api)
    broken_b = faulty(a, make_b, fault)

    started = time.monotonic()
    response = broken_b.post(path, {"customer": customer["id"], **params})

    assert_retryable_api_error(response, started, "customer")
    assert row(db, "customers", customer["id"]) is None


def test_a_wrong_upstream_key_is_a_retryable_api_error_not_the_callers_fault(a, make_b, db):
    # given B configured with a key A refuses (401 at A)
    customer = factories.customer(a.api)
    b = ApiClient(make_b(key="sk_test_not_a_key_of_a"))

    response = b.post("/v1/invoices", {"customer": customer["id"]})

    assert response.status_code == 503, response.json
    assert response.json["error"]["type"] == "api_error"
    assert row(db, "customers", customer["id"]) is None


def test_an_upstream_failure_under_an_idempotency_key_leaves_the_key_free(a, b, db):
    # given B's invoice and A's succeeded PaymentIntent, and A failing
    _, invoice = b_invoice_for_a_customer(a, b, 600)
    pi = factories.payment_intent(a.api, invoice, 600)
    factories.settle(a.dsn, pi)
    a.faults.fail("500")

    # when the attach fails upstream, and is retried with the same key once A is back
    failed = attach(b, invoice["id"], pi["id"], **{"Idempotency-Key": "upstream-retry"})
    a.faults.fail("ok")
    retried = attach(b, invoice["id"], pi["id"], **{"Idempotency-Key": "upstream-retry"})

    # then the failure was not stored: the retry ran afresh and credited the invoice
    assert failed.status_code == 503
    assert retried.status_code == 200, retried.json
    assert "Idempotent-Replayed" not in retried.headers
    assert retried.json["status"] == "paid"


def test_no_row_is_locked_while_upstream_is_asked(a, b, b_app, service_urls):
    # given B's invoice, A's PaymentIntent for it, and A hanging
    _, invoice = b_invoice_for_a_customer(a, b, 300)
    pi = factories.payment_intent(a.api, invoice, 300)
    a.faults.fail("hang")

    # when an attach under an Idempotency-Key (one request transaction) waits on A
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            attach, ApiClient(b_app), invoice["id"], pi["id"], **{"Idempotency-Key": "held"}
        )
        assert a.faults.hanging.wait(BOUND)
        # then the invoice row is free meanwhile: a change that locks it goes through
        with psycopg.connect(service_urls["DATABASE_URL"]) as conn:
            conn.execute("SET lock_timeout = '200ms'")
            conn.execute("SELECT 1 FROM invoices WHERE id = %s FOR UPDATE", (invoice["id"],))
        updated = b.post(f"/v1/invoices/{invoice['id']}", {"metadata[during]": "fetch"})
        assert updated.status_code == 200, updated.json
        assert waiting.result().status_code == 503


def test_the_stripe_sdk_retries_an_upstream_failure_to_success(a, b, b_app, db):
    # given B's invoice and A's succeeded PaymentIntent, and A failing once
    _, invoice = b_invoice_for_a_customer(a, b, 400)
    pi = factories.payment_intent(a.api, invoice, 400)
    factories.settle(a.dsn, pi)
    a.faults.fail("500", times=1)

    # when a client using the stripe SDK, with retries on, attaches it in B
    with serving(b_app) as b_url:
        client = stripe.StripeClient(TEST_KEY, base_addresses={"api": b_url}, max_network_retries=2)
        attached = client.v1.invoices.attach_payment(
            invoice["id"], params={"payment_intent": pi["id"]}
        )

    # then the SDK's retry of B's 503 ran afresh and credited the invoice once
    assert attached.status == "paid"
    assert attached.amount_paid == 400
    assert factories.invoice_events(db, invoice["id"]).count("invoice_payment.paid") == 1


def test_the_client_fetches_a_payment_intent_by_id_for_a_mode(a):
    # given A's test-mode PaymentIntent, as the sweeper re-fetches one
    pi = a.api.post("/v1/payment_intents", {"amount": 250, "currency": "eur"}).json
    upstream = Upstream(A_TEST_KEY, a.url, timeout=BOUND)

    # then it is found in its mode only, an unknown id is None, and a failure raises
    assert upstream.payment_intent(pi["id"], livemode=False)["amount"] == 250
    assert upstream.payment_intent(pi["id"], livemode=True) is None
    assert upstream.payment_intent("pi_neverheardof", livemode=False) is None
    a.faults.fail("500")
    with pytest.raises(UpstreamUnavailable):
        upstream.payment_intent(pi["id"], livemode=False)


@pytest.mark.parametrize(
    ("environ", "key", "base"),
    [
        ({"STRIPE_API_KEY": "sk_test_a"}, "sk_test_a", "https://api.stripe.com"),
        (
            {"TALLY_STRIPE_API_KEY": "sk_test_b", "TALLY_STRIPE_API_BASE": "http://b"},
            "sk_test_b",
            "http://b",
        ),
        (
            {
                "STRIPE_API_KEY": "sk_test_a",
                "TALLY_STRIPE_API_KEY": "sk_test_b",
                "STRIPE_API_BASE": "http://a",
            },
            "sk_test_a",
            "http://a",
        ),
        ({}, None, "https://api.stripe.com"),
    ],
)
def test_the_upstream_key_and_base_are_read_under_stripes_names_or_tallys(environ, key, base):
    settings = Settings.from_env({"TALLY_API_KEYS": TEST_KEY, **environ})
    assert (settings.stripe_api_key, settings.stripe_api_base) == (key, base)
    assert settings.stripe_api_timeout == 5


@pytest.mark.parametrize("timeout", ["0", "5.5", "30"])
def test_the_upstream_bound_is_at_most_five_seconds(timeout):
    with pytest.raises(ConfigError, match="TALLY_STRIPE_TIMEOUT"):
        Settings.from_env({"TALLY_API_KEYS": TEST_KEY, "TALLY_STRIPE_TIMEOUT": timeout})


def test_a_lower_upstream_bound_may_be_configured():
    settings = Settings.from_env({"TALLY_API_KEYS": TEST_KEY, "TALLY_STRIPE_TIMEOUT": "2.5"})
    assert settings.stripe_api_timeout == 2.5


# -- cancel: a PaymentIntent Stripe owns is canceled at Stripe first -------------------


def attached_in_b(a: StripeA, b: ApiClient, amount: int) -> tuple[dict, dict]:
    """B's open invoice with A's PaymentIntent attached (so mirrored in B), open."""
    _, invoice = b_invoice_for_a_customer(a, b, amount)
    pi = factories.payment_intent(a.api, invoice, amount)
    attached = attach(b, invoice["id"], pi["id"])
    assert attached.status_code == 200, attached.json
    return invoice, pi


def b_state(db: psycopg.Connection[Any], invoice_id: str, pi_id: str) -> tuple[Any, ...]:
    """What B holds about a PaymentIntent and its invoice."""
    return (row(db, "payment_intents", pi_id), snapshot(db, invoice_id))


def sdk(url: str, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": url}, max_network_retries=retries)


def cancel(api: ApiClient, pi_id: str, **headers: str) -> Any:
    return api.post(f"/v1/payment_intents/{pi_id}/cancel", {}, headers=headers)


def test_a_cancel_of_a_payment_intent_from_stripe_cancels_it_there_first(a, b, b_app, db):
    # given B's invoice with A's PaymentIntent attached, open
    _, pi = attached_in_b(a, b, 700)

    # when a client cancels it in B with the stripe SDK
    with serving(b_app) as b_url:
        canceled = sdk(b_url).v1.payment_intents.cancel(
            pi["id"], params={"cancellation_reason": "abandoned"}
        )

    # then it was canceled at A, and B's copy mirrors what A answered, its invoice
    # payment canceled with it
    at_a = a.api.get(f"/v1/payment_intents/{pi['id']}").json
    assert (at_a["status"], at_a["cancellation_reason"]) == ("canceled", "abandoned")
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    assert canceled.canceled_at == at_a["canceled_at"]
    mirrored = row(db, "payment_intents", pi["id"])
    assert (mirrored["status"], mirrored["canceled_at"]) == ("canceled", at_a["canceled_at"])
    payments = db.execute(
        "SELECT status FROM invoice_payments WHERE payment_intent = %s", (pi["id"],)
    ).fetchall()
    assert payments == [{"status": "canceled"}]


@pytest.mark.parametrize("fault", FAULTS)
def test_an_upstream_failure_on_cancel_is_a_retryable_api_error_and_changes_nothing(
    a, b, make_b, db, fault
):
    # given B's invoice with A's PaymentIntent attached
    invoice, pi = attached_in_b(a, b, 800)
    before = b_state(db, invoice["id"], pi["id"])

    # when B is asked to cancel it while A fails
    broken_b = faulty(a, make_b, fault)
    started = time.monotonic()
    response = cancel(broken_b, pi["id"])

    # then the caller hears a retryable api_error within the bound; B and A are unchanged
    assert_retryable_api_error(response, started, "payment_intent")
    assert b_state(db, invoice["id"], pi["id"]) == before
    # (read A before letting a hung cancel go on: A then applies it, a race with the read)
    a.faults.fail("ok")
    assert a.api.get(f"/v1/payment_intents/{pi['id']}").json["status"] == "requires_payment_method"
    a.faults.release.set()


def test_a_cancel_whose_answer_was_lost_is_retried_to_success_with_the_same_key(a, b, b_app, db):
    # given B's invoice with A's PaymentIntent attached, and A that will cancel it but
    # answer too late for B
    invoice, pi = attached_in_b(a, b, 900)
    before = b_state(db, invoice["id"], pi["id"])
    a.faults.fail("late", times=1)
    key = {"Idempotency-Key": f"lost-cancel-{pi['id']}"}

    # when the cancel times out in B, and the client retries it with the same key
    lost = cancel(b, pi["id"], **key)
    after_lost = b_state(db, invoice["id"], pi["id"])
    a.faults.release.set()
    retried = cancel(b, pi["id"], **key)

    # then the first changed nothing in B (though A canceled); the retry got A's saved
    # answer (not a refusal to cancel a canceled PaymentIntent) and B mirrored it
    assert lost.status_code == 503, lost.json
    assert after_lost == before
    assert retried.status_code == 200, retried.json
    assert retried.json["status"] == "canceled"
    assert row(db, "payment_intents", pi["id"])["status"] == "canceled"


def test_a_cancel_stripe_refuses_is_passed_through_and_changes_nothing(a, b, b_app, db):
    # given B's invoice with A's PaymentIntent attached, which then succeeded at A
    # before B heard of it
    invoice, pi = attached_in_b(a, b, 600)
    factories.settle(a.dsn, pi)
    before = b_state(db, invoice["id"], pi["id"])

    # when a client cancels it in B with the stripe SDK
    with serving(b_app) as b_url, pytest.raises(stripe.InvalidRequestError) as refused:
        sdk(b_url).v1.payment_intents.cancel(pi["id"])

    # then A's refusal reaches the client as Stripe gave it, and B is unchanged
    assert refused.value.http_status == 400
    assert refused.value.code == "payment_intent_unexpected_state"
    assert "status of succeeded" in refused.value.user_message
    assert b_state(db, invoice["id"], pi["id"]) == before


def test_a_payment_intent_created_in_tally_is_canceled_in_tally_alone(a, b, db):
    # given B's own customer, invoice and PaymentIntent, and A down (it must not be asked)
    invoice = factories.open_invoice(b, 500)
    pi = factories.payment_intent(b, invoice, 500)
    a.faults.fail("500")

    # when it is canceled in B
    response = cancel(b, pi["id"])

    # then B canceled it, as its owner
    assert response.status_code == 200, response.json
    assert row(db, "payment_intents", pi["id"])["status"] == "canceled"


def test_without_upstream_a_payment_intent_from_stripe_is_canceled_in_tally(api, db, service_urls):
    # given no upstream configured, and a PaymentIntent Tally mirrored from a Stripe event
    invoice = factories.open_invoice(api, 400)
    pi = {
        "id": f"pi_from_stripe_{time.monotonic_ns()}",
        "object": "payment_intent",
        "amount": 400,
        "currency": "usd",
        "customer": invoice["customer"],
        "livemode": False,
    }
    factories.settle(service_urls["DATABASE_URL"], pi, status="requires_payment_method")
    assert row(db, "payment_intents", pi["id"])["origin"] == "stripe"

    # when it is canceled
    response = cancel(api, pi["id"])

    # then Tally, owning its PaymentIntents without an upstream, canceled it itself
    assert response.status_code == 200, response.json
    assert row(db, "payment_intents", pi["id"])["status"] == "canceled"


def test_no_row_is_locked_while_stripe_is_asked_to_cancel(a, b, b_app, service_urls):
    # given B's invoice with A's PaymentIntent attached, and A hanging
    invoice, pi = attached_in_b(a, b, 300)
    a.faults.fail("hang")

    # when a cancel under an Idempotency-Key (one request transaction) waits on A
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            cancel, ApiClient(b_app), pi["id"], **{"Idempotency-Key": "held-cancel"}
        )
        assert a.faults.hanging.wait(BOUND)
        # then the PaymentIntent, its invoice payment and its invoice are free meanwhile
        with psycopg.connect(service_urls["DATABASE_URL"]) as conn:
            conn.execute("SET lock_timeout = '200ms'")
            conn.execute("SELECT 1 FROM payment_intents WHERE id = %s FOR UPDATE", (pi["id"],))
            conn.execute(
                "SELECT 1 FROM invoice_payments WHERE payment_intent = %s FOR UPDATE", (pi["id"],)
            )
            conn.execute("SELECT 1 FROM invoices WHERE id = %s FOR UPDATE", (invoice["id"],))
        assert waiting.result().status_code == 503
