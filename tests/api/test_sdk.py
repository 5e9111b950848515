"""The official stripe SDK, unchanged, pointed at a real Tally over HTTP."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest
import stripe
from stripe._object_classes import get_object_class

from tests import factories, node_declarations
from tests.conftest import LIVE_KEY, TEST_KEY
from tests.sdk_declarations import SEED_FIELDS_GONE, always_present

SEED = Path("/work/shared/seeds/000_995ef94600ba56ea.txt")


def seed_invoice() -> dict:
    """The example response of the page Tally grew from."""
    text = (Path(__file__).parents[1] / "seed_invoice.json").read_text()
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
    seed = {k: v for k, v in seed_invoice().items() if k not in SEED_FIELDS_GONE}
    assert set(seed) <= set(body), set(seed) - set(body)
    assert not SEED_FIELDS_GONE & set(body)
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


# stripe-node 23.1.0's declarations (the version pinning 2026-10-28.endive), extracted
# by tests/node_declarations.py: stripe-node tells "may be left out" (`?`) from
# "may be null" (`| null`), which stripe-python's Optional does not.
NODE = node_declarations.read(Path(__file__).parents[1] / "node_declarations.json")

# The interface of each object type, by its `object` (and `deleted`).
NODE_INTERFACES = {
    "customer": "Customer",
    "customer_balance_transaction": "CustomerBalanceTransaction",
    "event": "Event",
    "invoice": "Invoice",
    "invoice_payment": "InvoicePayment",
    "invoiceitem": "InvoiceItem",
    "line_item": "InvoiceLineItem",
    "list": "ApiList",
    "payment_intent": "PaymentIntent",
    "payment_record": "PaymentRecord",
    "search_result": "ApiSearchResult",
    "webhook_endpoint": "WebhookEndpoint",
}


_KINDS = {bool: "boolean", int: "number", str: "string", list: "array", dict: "object"}


def _kind(value: typing.Any) -> str:
    return _KINDS.get(type(value), "null")


def _node_mismatches(value: dict, interface: str, path: str) -> list[str]:
    """Where `value` is not what stripe-node declares of `interface`: a field it
    declares always present missing, one it does not declare (Stripe removed it, or
    never had it), a value of another type (null included) or not among the values it
    lists; nested objects likewise."""
    declared = NODE[interface]
    if not declared:  # a map of any keys (metadata, previous_attributes)
        return []
    problems = [
        f"{path}.{field} is missing"
        for field, declaration in declared.items()
        if not declaration.optional and field not in value
    ]
    for field, item in value.items():
        if field not in declared:
            problems.append(f"{path}.{field} is not declared")
            continue
        declaration = declared[field]
        if "any" not in declaration.kinds and _kind(item) not in declaration.kinds:
            problems.append(f"{path}.{field} is {_kind(item)}, not {sorted(declaration.kinds)}")
        if isinstance(item, str) and declaration.values and item not in declaration.values:
            problems.append(f"{path}.{field} is {item!r}, not one of {sorted(declaration.values)}")
        nested = [x for x in declaration.refs if x not in NODE_INTERFACES.values()]
        for element in item if isinstance(item, list) else [item]:
            if isinstance(element, dict) and isinstance(element.get("object"), str):
                problems += _node_mismatches_of_object(element, f"{path}.{field}")
            elif isinstance(element, dict) and nested and nested[0] not in NODE:
                problems.append(f"{path}.{field}: {nested[0]} is not extracted")
            elif isinstance(element, dict) and nested:
                problems += _node_mismatches(element, nested[0], f"{path}.{field}")
    return problems


def _node_mismatches_of_object(value: dict, path: str) -> list[str]:
    interface = NODE_INTERFACES[value["object"]]
    return _node_mismatches(
        value, f"Deleted{interface}" if value.get("deleted") else interface, path
    )


def _stripe_classes(annotation: typing.Any) -> list[type]:
    """The stripe-python classes (nested objects) an annotation admits."""
    if isinstance(annotation, type) and issubclass(annotation, stripe.StripeObject):
        return [annotation]
    return [c for arg in typing.get_args(annotation) for c in _stripe_classes(arg)]


def _python_mismatches(value: dict, cls: type, path: str) -> list[str]:
    """Where `value` is not what stripe-python declares of `cls`: a field declared
    without Optional missing, a field not declared; nested objects likewise."""
    declared = {
        name: annotation
        for name, annotation in getattr(cls, "__annotations__", {}).items()
        if typing.get_origin(annotation) is not typing.ClassVar
    }
    if not declared:  # an untyped map (metadata)
        return []
    if "object" in value:  # every object has one (ListObject does not annotate it)
        declared.setdefault("object", str)
    problems = [f"{path}.{name} is missing" for name in sorted(always_present(cls) - set(value))]
    for field, item in value.items():
        if field not in declared:
            problems.append(f"{path}.{field} is not declared")
            continue
        nested = _stripe_classes(declared[field])
        for element in item if isinstance(item, list) else [item]:
            if isinstance(element, dict) and isinstance(element.get("object"), str):
                problems += _python_mismatches_of_object(element, f"{path}.{field}")
            elif isinstance(element, dict) and nested:
                problems += _python_mismatches(element, nested[0], f"{path}.{field}")
    return problems


def _python_mismatches_of_object(value: dict, path: str) -> list[str]:
    if value.get("deleted"):  # stripe-python has no class of its own for these
        return []
    return _python_mismatches(value, get_object_class("V1", value["object"]), path)


def sdk_mismatches(body: dict) -> list[str]:
    """Every way a rendered object departs from what the SDKs declare."""
    name = body["object"]
    return [
        *(f"node: {p}" for p in _node_mismatches_of_object(body, name)),
        *(f"python: {p}" for p in _python_mismatches_of_object(body, name)),
    ]


def test_sdk_declarations_find_what_is_missing_undeclared_or_of_another_type():
    body = {
        "id": "cus_1",
        "object": "customer",
        "balance": None,
        "email": 7,
        "invoice_settings": {"footer": None},
        "tax_exempt": "sometimes",
        "transfer_data": None,
    }
    problems = sdk_mismatches(body)
    assert "node: customer.created is missing" in problems
    assert "python: customer.created is missing" in problems
    assert "node: customer.balance is null, not ['number']" in problems
    assert "node: customer.email is number, not ['null', 'string']" in problems
    assert "node: customer.invoice_settings.custom_fields is missing" in problems
    assert (
        "node: customer.tax_exempt is 'sometimes', not one of ['exempt', 'none', 'reverse']"
        in problems
    )
    assert "node: customer.transfer_data is not declared" in problems
    assert "python: customer.transfer_data is not declared" in problems


def test_every_object_is_what_the_sdks_declare(api, client, invoice):
    # given one of each object Tally renders: a customer with a balance transaction, an
    # open invoice with a PaymentIntent and a payment record attached, a draft with an
    # item, a webhook endpoint, and the events of all that
    customer = invoice.customer
    client.v1.customers.balance_transactions.create(
        customer, params={"amount": -100, "currency": "usd"}
    )
    pi = client.v1.payment_intents.create(
        params={"amount": 500, "currency": "usd", "customer": customer}
    )
    client.v1.invoices.attach_payment(invoice.id, params={"payment_intent": pi.id})
    record = client.v1.payment_records.report_payment(
        params={
            "amount_requested": {"value": 100, "currency": "usd"},
            "customer_details": {"customer": customer},
            "initiated_at": 1_700_000_000,
            "payment_method_details": {"type": "custom"},
            "processor_details": {"type": "custom", "custom": {"payment_reference": "chq 7"}},
            "outcome": "guaranteed",
            "guaranteed": {"guaranteed_at": 1_700_000_001},
        }
    )
    client.v1.invoices.attach_payment(invoice.id, params={"payment_record": record.id})
    item = client.v1.invoice_items.create(
        params={"customer": customer, "amount": 250, "currency": "usd"}
    )
    draft = client.v1.invoices.create(
        params={"customer": customer, "pending_invoice_items_behavior": "include"}
    )
    endpoint = api.post(
        "/v1/webhook_endpoints", {"url": "https://example.com/h", "enabled_events[]": "*"}
    ).json

    # when each is fetched raw: alone, listed and expanded
    expanded = {"expand[0]": "payments", "expand[1]": "customer"}
    bodies = {
        "customer": api.get(f"/v1/customers/{customer}", {"expand[]": "invoice_credit_balance"}),
        "customers": api.get("/v1/customers"),
        "balance transactions": api.get(f"/v1/customers/{customer}/balance_transactions"),
        "invoice": api.get(f"/v1/invoices/{invoice.id}", expanded),
        "invoice off stripe": api.get(
            f"/v1/invoices/{invoice.id}", {"expand[]": "amount_paid_off_stripe"}
        ),
        "draft": api.get(f"/v1/invoices/{draft.id}"),
        "invoices": api.get("/v1/invoices"),
        "lines": api.get(f"/v1/invoices/{invoice.id}/lines"),
        "invoice item": api.get(f"/v1/invoiceitems/{item.id}"),
        "invoice items": api.get("/v1/invoiceitems"),
        "invoice payments": api.get("/v1/invoice_payments", {"invoice": invoice.id}),
        "payment intent": api.get(f"/v1/payment_intents/{pi.id}"),
        "payment intents": api.get("/v1/payment_intents"),
        "payment record": api.get(f"/v1/payment_records/{record.id}"),
        "payment records": api.get("/v1/payment_records"),
        "webhook endpoints": api.get("/v1/webhook_endpoints"),
        "deleted webhook endpoint": api.delete(f"/v1/webhook_endpoints/{endpoint['id']}"),
        "events": api.get("/v1/events", {"limit": 100}),
    }
    bodies = {name: response.json for name, response in bodies.items()}
    bodies["new webhook endpoint"] = endpoint

    # then each is what stripe-node and stripe-python declare, nested objects too
    assert {name: sdk_mismatches(body) for name, body in bodies.items()} == {
        name: [] for name in bodies
    }
    # (the events carry every kind of object the calls above changed)
    events = {e["data"]["object"]["object"] for e in bodies["events"]["data"]}
    assert {"customer", "invoice", "invoice_payment"} <= events
    # a draft has no number nor ending balance yet: nulls the SDKs allow
    assert (bodies["draft"]["number"], bodies["draft"]["ending_balance"]) == (None, None)
    # an includable field stays out unless expanded
    assert "amount_paid_off_stripe" not in bodies["invoice"]
    assert bodies["invoice off stripe"]["amount_paid_off_stripe"] == 100


def test_objects_in_every_state_are_what_the_sdks_declare(api, client, service_urls):
    # given invoices paid (overpaid, crediting the balance), void and uncollectible, a
    # draft with a credit item, a canceled and a succeeded PaymentIntent, and records
    # failed, canceled and refunded
    customer = factories.customer(api)
    paid = factories.overpaid_invoice(api, service_urls["DATABASE_URL"], customer, 300, 50)
    void = factories.open_invoice(api, 200, cus=customer)
    api.post(f"/v1/invoices/{void['id']}/void")
    uncollectible = factories.open_invoice(api, 200, cus=customer)
    api.post(f"/v1/invoices/{uncollectible['id']}/mark_uncollectible")
    out_of_band = factories.open_invoice(api, 200, cus=customer)
    api.post(f"/v1/invoices/{out_of_band['id']}/pay", {"paid_out_of_band": "true"})
    api.post("/v1/invoiceitems", {"customer": customer["id"], "amount": -75, "currency": "usd"})
    draft = factories.draft_invoice(api, 100, cus=customer)
    canceled = factories.payment_intent(api, void, 100)
    api.post(f"/v1/payment_intents/{canceled['id']}/cancel", {"cancellation_reason": "abandoned"})
    records = {}
    for outcome in ("failed", "canceled", "guaranteed"):
        records[outcome] = client.v1.payment_records.report_payment(
            params={
                "amount_requested": {"value": 100, "currency": "usd"},
                "initiated_at": 1_700_000_000,
                "payment_method_details": {"type": "custom"},
                "outcome": outcome,
                outcome: {f"{outcome}_at": 1_700_000_001},
            }
        ).id
    client.v1.payment_records.report_refund(
        records["guaranteed"],
        params={"outcome": "refunded", "processor_details": {"type": "custom"},
                "amount": {"value": 40, "currency": "usd"}},
    )  # fmt: skip

    # when each is fetched raw
    invoices = (paid, void, uncollectible, out_of_band, draft)
    requests = [
        *((f"/v1/invoices/{invoice['id']}", {}) for invoice in invoices),
        (f"/v1/customers/{customer['id']}", {}),
        (f"/v1/customers/{customer['id']}/balance_transactions", {}),
        ("/v1/invoice_payments", {"invoice": paid["id"]}),
        (f"/v1/payment_intents/{canceled['id']}", {}),
        ("/v1/payment_intents", {"limit": 100}),
        *((f"/v1/payment_records/{record}", {}) for record in records.values()),
        ("/v1/events", {"limit": 100}),
    ]
    bodies = {path: api.get(path, query).json for path, query in requests}

    # then each is what stripe-node and stripe-python declare
    assert {path: sdk_mismatches(body) for path, body in bodies.items()} == {
        path: [] for path in bodies
    }
    statuses = [bodies[f"/v1/invoices/{i['id']}"]["status"] for i in (paid, void, uncollectible)]
    assert statuses == ["paid", "void", "uncollectible"]
    assert bodies[f"/v1/payment_intents/{canceled['id']}"]["cancellation_reason"] == "abandoned"
    intents = bodies["/v1/payment_intents"]["data"]
    assert "succeeded" in {pi["status"] for pi in intents}
