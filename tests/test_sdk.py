"""The official stripe SDK, unchanged, pointed at a real Tally over HTTP."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest
import stripe

from tests.conftest import LIVE_KEY, TEST_KEY

SEED = Path("/work/shared/seeds/000_995ef94600ba56ea.txt")


def seed_invoice() -> dict:
    """The example response of the page Tally grew from."""
    text = (Path(__file__).parent / "seed_invoice.json").read_text()
    return json.loads(text)


@pytest.fixture
def client(server):
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)


@pytest.fixture
def invoice(client):
    customer = client.v1.customers.create(params={"email": "test@test.com"})
    client.v1.invoice_items.create(
        params={
            "customer": customer.id,
            "amount": 1299,
            "currency": "usd",
            "description": "My First Invoice Item (created for API docs)",
        }
    )
    draft = client.v1.invoices.create(
        params={"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    return client.v1.invoices.finalize_invoice(draft.id)


def _json_type(value):
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer"}.get(
        type(value), "null"
    )


def test_seed_flow_returns_the_seed_invoice_shape(client, invoice):
    # given a PaymentIntent for the invoice
    pi = client.v1.payment_intents.create(
        params={"amount": 1299, "currency": "usd", "customer": invoice.customer}
    )

    # when it is attached with payments expanded, as the seed's curl does
    attached = client.v1.invoices.attach_payment(
        invoice.id, params={"payment_intent": pi.id, "expand": ["payments"]}
    )

    # then the SDK gets the seed's invoice back, field for field and type for type
    assert isinstance(attached, stripe.Invoice)
    body = attached.to_dict()
    seed = seed_invoice()
    assert set(seed) <= set(body), set(seed) - set(body)
    for key, value in seed.items():
        if value is not None and body[key] is not None:
            assert _json_type(body[key]) == _json_type(value), key
    assert attached.status == "open"
    assert attached.amount_remaining == 1299
    assert attached.lines.data[0].amount == 1299
    payment = attached.payments.data[0]
    assert isinstance(payment, stripe.InvoicePayment)
    assert payment.payment.payment_intent == pi.id
    assert payment.status == "open"


def test_sdk_lists_and_retrieves_invoice_payments(client, invoice):
    pi = client.v1.payment_intents.create(
        params={"amount": 500, "currency": "usd", "customer": invoice.customer}
    )
    client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": pi.id})
    payments = client.v1.invoice_payments.list(params={"invoice": invoice.id})
    assert [p.payment.payment_intent for p in payments.data] == [pi.id]
    fetched = client.v1.invoice_payments.retrieve(payments.data[0].id)
    assert fetched.amount_requested == 500


def test_sdk_expands_nested_paths(client, invoice):
    pi = client.v1.payment_intents.create(
        params={"amount": 500, "currency": "usd", "customer": invoice.customer}
    )
    client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": pi.id})
    fetched = client.v1.invoices.retrieve(
        invoice.id, params={"expand": ["customer", "payments.data.payment.payment_intent"]}
    )
    assert fetched.customer.email == "test@test.com"
    assert fetched.payments.data[0].payment.payment_intent.id == pi.id


@pytest.mark.parametrize(
    ("params", "error", "param"),
    [
        ({"payment_intent": "pi_missing"}, stripe.InvalidRequestError, "payment_intent"),
        ({}, stripe.InvalidRequestError, "payment_intent"),
        ({"payment_intent": "pi_x", "bogus": "1"}, stripe.InvalidRequestError, "bogus"),
    ],
)
def test_sdk_refusals_raise_the_sdk_exception(client, invoice, params, error, param):
    with pytest.raises(error) as caught:
        client.v1.invoices.attach_payment(invoice.id, params=params)
    assert caught.value.param == param
    assert caught.value.http_status == 400


def test_sdk_unknown_invoice_is_invalid_request_404(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.invoices.attach_payment("in_missing", params={"payment_intent": "pi_missing"})
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"


def test_sdk_amount_over_remaining_is_refused(client, invoice):
    pi = client.v1.payment_intents.create(
        params={"amount": 5000, "currency": "usd", "customer": invoice.customer}
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": pi.id})
    assert caught.value.param == "payment_intent"


def test_sdk_bad_key_raises_authentication_error(server):
    bad = stripe.StripeClient(
        "sk_test_wrong", base_addresses={"api": server}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.customers.create(params={"email": "x@example.com"})


def test_sdk_live_key_cannot_see_test_invoice(server, invoice):
    live = stripe.StripeClient(LIVE_KEY, base_addresses={"api": server}, max_network_retries=0)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        live.v1.invoices.retrieve(invoice.id)
    assert caught.value.http_status == 404


def test_sdk_retries_reuse_the_idempotency_key_without_doubling(client, server, invoice):
    pi = client.v1.payment_intents.create(
        params={"amount": 100, "currency": "usd", "customer": invoice.customer}
    )
    options = {"idempotency_key": f"sdk-{pi.id}"}
    first = client.v1.invoices.attach_payment(
        invoice.id, params={"payment_intent": pi.id}, options=options
    )
    again = client.v1.invoices.attach_payment(
        invoice.id, params={"payment_intent": pi.id}, options=options
    )
    assert first.to_dict() == again.to_dict()
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(client.v1.invoice_payments.list(params={"invoice": invoice.id}).data) == 1


def test_seed_fixture_matches_the_seed_page():
    """tests/seed_invoice.json is the seed page's example, verbatim."""
    page = SEED.read_text() if SEED.exists() else None
    if page is None:
        pytest.skip("the shared seed page is not on this machine")
    example = json.loads(re.search(r"Response\n(\{.*\})", page, re.S).group(1))
    assert example == seed_invoice()


def _always_present(cls: type) -> set[str]:
    """Fields a stripe-python class declares without Optional (nullable, or left out)."""
    return {
        name
        for name, annotation in cls.__annotations__.items()
        if typing.get_origin(annotation) is not typing.ClassVar
        and type(None) not in typing.get_args(annotation)
    }


# Declared nullable but always present by stripe-node's types (`x: T | null`, no `?`).
NODE_ALWAYS_PRESENT = {
    "invoice": {
        "automatically_finalizes_at": None,
        "customer_account": None,
        "rendering": None,
        "total_pretax_credit_amounts": [],
    },
    "payment_intent": {
        "excluded_payment_method_types": None,
        "payment_method_configuration_details": None,
    },
}


def test_objects_carry_every_field_the_sdks_declare_always_present(api, client, invoice):
    # given an invoice with a payment, its PaymentIntent and its invoice payment
    pi = client.v1.payment_intents.create(
        params={"amount": 500, "currency": "usd", "customer": invoice.customer}
    )
    client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": pi.id})
    payment = client.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0]

    # when each is fetched raw
    bodies = {
        "invoice": api.get(f"/v1/invoices/{invoice.id}").json,
        "payment_intent": api.get(f"/v1/payment_intents/{pi.id}").json,
        "invoice_payment": api.get(f"/v1/invoice_payments/{payment.id}").json,
    }

    # then every field the SDKs say is always there is there
    classes = {
        "invoice": stripe.Invoice,
        "payment_intent": stripe.PaymentIntent,
        "invoice_payment": stripe.InvoicePayment,
    }
    for name, cls in classes.items():
        missing = _always_present(cls) - set(bodies[name])
        assert not missing, f"{name} lacks {sorted(missing)}"
    for name, expected in NODE_ALWAYS_PRESENT.items():
        assert {key: bodies[name].get(key, "absent") for key in expected} == expected, name
    # an includable field stays out unless expanded
    assert "amount_paid_off_stripe" not in bodies["invoice"]
