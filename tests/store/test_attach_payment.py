"""attach_payment and crediting: the ledger rules of the contract, as tables."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg.rows import dict_row

from devtools.stripe_events import signed_webhook
from service.domain import ledger
from service.operations.process_inbound import process_inbound_batch
from service.store import credits, invoices
from tests import factories
from tests.conftest import WEBHOOK_SECRET


def attach(api, invoice_id, **params):
    return api.post(f"/v1/invoices/{invoice_id}/attach_payment", params)


def ledger_row(db, invoice_id):
    return db.execute(
        "SELECT status, total, amount_paid FROM invoices WHERE id = %s", (invoice_id,)
    ).fetchone()


def test_attaching_an_unpaid_payment_intent_moves_no_money(api, db):
    invoice = factories.open_invoice(api, 1299)
    pi = factories.payment_intent(api, invoice, 1299)

    response = attach(api, invoice["id"], payment_intent=pi["id"], **{"expand[]": "payments"})

    assert response.status_code == 200, response.json
    body = response.json
    assert body["amount_paid"] == 0
    assert body["amount_remaining"] == 1299
    assert body["status"] == "open"
    [payment] = body["payments"]["data"]
    assert payment["status"] == "open"
    assert payment["amount_requested"] == 1299
    assert payment["amount_paid"] is None
    assert payment["is_default"] is False
    assert payment["payment"] == {"type": "payment_intent", "payment_intent": pi["id"]}
    assert ledger_row(db, invoice["id"])["amount_paid"] == 0
    assert "invoice_payment.paid" not in factories.invoice_events(db, invoice["id"])


def test_payments_are_absent_unless_expanded(api):
    invoice = factories.open_invoice(api, 500)
    pi = factories.payment_intent(api, invoice, 500)
    body = attach(api, invoice["id"], payment_intent=pi["id"]).json
    assert "payments" not in body


def test_success_after_attach_credits_and_pays(api, db, service_urls):
    # given an open invoice with an attached PaymentIntent
    invoice = factories.open_invoice(api, 1299)
    pi = factories.payment_intent(api, invoice, 1299)
    attach(api, invoice["id"], payment_intent=pi["id"])

    # when Stripe says it succeeded
    factories.settle(service_urls["DATABASE_URL"], pi)

    # then the invoice is paid, with the contract's events in order
    body = api.get(f"/v1/invoices/{invoice['id']}", {"expand[]": "payments"}).json
    assert body["status"] == "paid"
    assert body["amount_paid"] == 1299
    assert body["amount_remaining"] == 0
    assert body["status_transitions"]["paid_at"] is not None
    assert body["payments"]["data"][0]["status"] == "paid"
    assert body["payments"]["data"][0]["amount_paid"] == 1299
    assert factories.invoice_events(db, invoice["id"])[-4:] == factories.PAYING_EVENTS
    updated = factories.events_data(db, "invoice.updated", invoice["id"])[0]
    assert updated["previous_attributes"]["amount_paid"] == 0
    assert updated["previous_attributes"]["amount_remaining"] == 1299
    assert "payments" not in updated["object"]
    # the snapshot is the invoice exactly as the API renders it after the change
    assert updated["object"] == api.get(f"/v1/invoices/{invoice['id']}").json


def test_already_succeeded_payment_intent_is_credited_at_attach(api, db, service_urls):
    invoice = factories.open_invoice(api, 800)
    pi = factories.payment_intent(api, invoice, 800)
    factories.settle(service_urls["DATABASE_URL"], pi)

    body = attach(api, invoice["id"], payment_intent=pi["id"]).json

    assert body["status"] == "paid"
    assert body["amount_paid"] == 800
    assert factories.invoice_events(db, invoice["id"]).count("invoice.paid") == 1


@pytest.mark.parametrize(
    ("total", "payments", "status", "amount_paid", "remaining", "overpaid"),
    [
        pytest.param(1000, [400], "open", 400, 600, 0, id="partial"),
        pytest.param(1000, [1000], "paid", 1000, 0, 0, id="exact"),
        pytest.param(1000, [600, 400], "paid", 1000, 0, 0, id="two-parts-exact"),
        pytest.param(1000, [700, 600], "paid", 1300, 0, 300, id="overpaid"),
    ],
)
def test_crediting_arithmetic(
    api, db, service_urls, total, payments, status, amount_paid, remaining, overpaid
):
    # given every payment attached while open (each within the remainder at attach time)
    invoice = factories.open_invoice(api, total)
    intents = [factories.payment_intent(api, invoice, amount) for amount in payments]
    for pi in intents:
        assert attach(api, invoice["id"], payment_intent=pi["id"]).status_code == 200

    # when they all succeed
    for pi in intents:
        factories.settle(service_urls["DATABASE_URL"], pi)

    # then
    body = api.get(f"/v1/invoices/{invoice['id']}").json
    assert (body["status"], body["amount_paid"]) == (status, amount_paid)
    assert (body["amount_remaining"], body["amount_overpaid"]) == (remaining, overpaid)
    types = factories.invoice_events(db, invoice["id"])
    assert types.count("invoice_payment.paid") == len(payments)
    assert types.count("invoice.paid") == (1 if status == "paid" else 0)
    assert types.count("invoice.overpaid") == (1 if overpaid else 0)
    paid_sum = db.execute(
        "SELECT coalesce(sum(amount_paid), 0) AS s FROM invoice_payments"
        " WHERE invoice = %s AND status = 'paid'",
        (invoice["id"],),
    ).fetchone()["s"]
    assert paid_sum == ledger_row(db, invoice["id"])["amount_paid"] == amount_paid


def test_replayed_success_credits_once(api, db, service_urls):
    invoice = factories.open_invoice(api, 1000)
    pi = factories.payment_intent(api, invoice, 1000)
    attach(api, invoice["id"], payment_intent=pi["id"])
    for _ in range(3):
        factories.settle(service_urls["DATABASE_URL"], pi)
    assert ledger_row(db, invoice["id"])["amount_paid"] == 1000
    assert factories.invoice_events(db, invoice["id"]).count("invoice_payment.paid") == 1


def test_late_processing_does_not_undo_success(api, service_urls):
    invoice = factories.open_invoice(api, 1000)
    pi = factories.payment_intent(api, invoice, 1000)
    factories.settle(service_urls["DATABASE_URL"], pi, "succeeded")
    factories.settle(service_urls["DATABASE_URL"], pi, "processing")
    assert api.get(f"/v1/payment_intents/{pi['id']}").json["status"] == "succeeded"


def test_canceled_payment_intent_cancels_its_open_invoice_payment(api, service_urls):
    invoice = factories.open_invoice(api, 1000)
    pi = factories.payment_intent(api, invoice, 1000)
    attach(api, invoice["id"], payment_intent=pi["id"])
    factories.settle(service_urls["DATABASE_URL"], pi, "canceled")
    payments = api.get("/v1/invoice_payments", {"invoice": invoice["id"]}).json["data"]
    assert [p["status"] for p in payments] == ["canceled"]
    assert payments[0]["status_transitions"]["canceled_at"] is not None
    assert api.get(f"/v1/invoices/{invoice['id']}").json["amount_paid"] == 0


def test_guaranteed_payment_record_credits_at_once(api, db):
    invoice = factories.open_invoice(api, 2500)
    record = api.post(
        "/v1/payment_records/report_payment",
        {
            "amount_requested[value]": 2500,
            "amount_requested[currency]": "usd",
            "customer_details[customer]": invoice["customer"],
            "initiated_at": 1_700_000_000,
            "outcome": "guaranteed",
            "guaranteed[guaranteed_at]": 1_700_000_100,
            "payment_method_details[type]": "custom",
        },
    )
    assert record.status_code == 200, record.json
    assert record.json["amount_guaranteed"] == {"currency": "usd", "value": 2500}

    body = attach(api, invoice["id"], payment_record=record.json["id"]).json

    assert body["status"] == "paid"
    assert body["amount_paid"] == 2500
    payment = api.get("/v1/invoice_payments", {"invoice": invoice["id"]}).json["data"][0]
    assert payment["payment"] == {"type": "payment_record", "payment_record": record.json["id"]}


def _report(api, invoice, amount, currency="usd", outcome="guaranteed"):
    return api.post(
        "/v1/payment_records/report_payment",
        {
            "amount_requested[value]": amount,
            "amount_requested[currency]": currency,
            "customer_details[customer]": invoice["customer"],
            "initiated_at": 1_700_000_000,
            "outcome": outcome,
        },
    ).json


REFUSALS = {
    # name: (build params from (api, invoice, other_invoice) -> dict, status, param)
    "neither": (lambda api, inv, other, service_urls: {}, 400, "payment_intent"),
    "both": (
        lambda api, inv, other, service_urls: {
            "payment_intent": factories.payment_intent(api, inv, 100)["id"],
            "payment_record": _report(api, inv, 100)["id"],
        },
        400,
        "payment_record",
    ),
    "unknown_payment_intent": (
        lambda api, inv, other, service_urls: {"payment_intent": "pi_doesnotexist"},
        400,
        "payment_intent",
    ),
    "wrong_prefix": (
        lambda api, inv, other, service_urls: {"payment_intent": inv["customer"]},
        400,
        "payment_intent",
    ),
    "currency_mismatch": (
        lambda api, inv, other, service_urls: {
            "payment_intent": api.post(
                "/v1/payment_intents",
                {"amount": 100, "currency": "eur", "customer": inv["customer"]},
            ).json["id"]
        },
        400,
        "payment_intent",
    ),
    "customer_mismatch": (
        lambda api, inv, other, service_urls: {
            "payment_intent": api.post(
                "/v1/payment_intents",
                {"amount": 100, "currency": "usd", "customer": factories.customer(api)["id"]},
            ).json["id"]
        },
        400,
        "payment_intent",
    ),
    "amount_over_remaining": (
        lambda api, inv, other, service_urls: {
            "payment_intent": factories.payment_intent(api, inv, 1001)["id"]
        },
        400,
        "payment_intent",
    ),
    "canceled_payment_intent": (
        lambda api, inv, other, service_urls: {
            "payment_intent": api.post(
                f"/v1/payment_intents/{factories.payment_intent(api, inv, 100)['id']}/cancel"
            ).json["id"]
        },
        400,
        "payment_intent",
    ),
    "attached_to_other_invoice": (
        lambda api, inv, other, service_urls: {"payment_intent": _attached_elsewhere(api, other)},
        400,
        "payment_intent",
    ),
    "failed_payment_record": (
        lambda api, inv, other, service_urls: {
            "payment_record": _report(api, inv, 100, outcome="failed")["id"]
        },
        400,
        "payment_record",
    ),
    "record_over_remaining": (
        lambda api, inv, other, service_urls: {"payment_record": _report(api, inv, 5000)["id"]},
        400,
        "payment_record",
    ),
}


def _attached_elsewhere(api, other):
    pi = factories.payment_intent(api, other, 100)
    assert attach(api, other["id"], payment_intent=pi["id"]).status_code == 200
    return pi["id"]


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_attach_refusals_change_nothing(api, db, service_urls, case):
    # given an open invoice of 1000 and another invoice of the same customer
    invoice = factories.open_invoice(api, 1000)
    customer = api.get(f"/v1/customers/{invoice['customer']}").json
    other = factories.open_invoice(api, 1000, cus=customer)
    build, status, param = REFUSALS[case]
    params = build(api, invoice, other, service_urls)
    events_before = db.execute("SELECT count(*) AS n FROM events").fetchone()["n"]

    # when
    response = attach(api, invoice["id"], **params)

    # then a clear error naming the parameter, and nothing changed
    assert response.status_code == status, response.json
    assert response.json["error"]["param"] == param
    assert response.json["error"]["type"] == "invalid_request_error"
    payments = db.execute(
        "SELECT count(*) AS n FROM invoice_payments WHERE invoice = %s", (invoice["id"],)
    ).fetchone()["n"]
    assert payments == 0
    assert ledger_row(db, invoice["id"])["amount_paid"] == 0
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == events_before


def test_attaching_the_same_payment_intent_twice_is_refused_not_doubled(api, db, service_urls):
    invoice = factories.open_invoice(api, 1000)
    pi = factories.payment_intent(api, invoice, 400)
    factories.settle(service_urls["DATABASE_URL"], pi)
    assert attach(api, invoice["id"], payment_intent=pi["id"]).status_code == 200

    again = attach(api, invoice["id"], payment_intent=pi["id"])

    assert again.status_code == 400
    assert again.json["error"]["param"] == "payment_intent"
    assert ledger_row(db, invoice["id"])["amount_paid"] == 400


@pytest.mark.parametrize(
    ("setup", "expected_status"),
    [
        pytest.param("draft", 400, id="draft"),
        pytest.param("void", 400, id="void"),
        pytest.param("paid", 400, id="paid"),
        pytest.param("uncollectible", 200, id="uncollectible"),
        pytest.param("open", 200, id="open"),
    ],
)
def test_attach_by_invoice_status(api, db, setup, expected_status):
    cus = factories.customer(api)
    if setup == "draft":
        api.post("/v1/invoiceitems", {"customer": cus["id"], "amount": 1000, "currency": "usd"})
        invoice = api.post(
            "/v1/invoices", {"customer": cus["id"], "pending_invoice_items_behavior": "include"}
        ).json
    else:
        invoice = factories.open_invoice(api, 1000, cus=cus)
        moves = {"void": "void", "paid": "pay", "uncollectible": "mark_uncollectible"}
        if setup in moves:
            extra = {"paid_out_of_band": "true"} if setup == "paid" else {}
            moved = api.post(f"/v1/invoices/{invoice['id']}/{moves[setup]}", extra)
            assert moved.status_code == 200, moved.json
    pi = factories.payment_intent(api, invoice, 1000)

    response = attach(api, invoice["id"], payment_intent=pi["id"])

    assert response.status_code == expected_status, response.json
    count = db.execute(
        "SELECT count(*) AS n FROM invoice_payments WHERE payment_intent = %s", (pi["id"],)
    ).fetchone()["n"]
    assert count == (1 if expected_status == 200 else 0)


def test_unknown_invoice_is_404(api):
    cus = factories.customer(api)
    pi = api.post("/v1/payment_intents", {"amount": 100, "currency": "usd", "customer": cus["id"]})
    response = attach(api, "in_doesnotexist", payment_intent=pi.json["id"])
    assert response.status_code == 404
    assert response.json["error"]["code"] == "resource_missing"


def test_live_payment_intent_is_missing_for_a_test_key(api, live_api):
    invoice = factories.open_invoice(api, 1000)
    live_customer = factories.customer(live_api)
    live_pi = live_api.post(
        "/v1/payment_intents", {"amount": 100, "currency": "usd", "customer": live_customer["id"]}
    ).json
    assert live_pi["livemode"] is True
    response = attach(api, invoice["id"], payment_intent=live_pi["id"])
    assert response.status_code == 400
    assert response.json["error"]["code"] == "resource_missing"
    assert response.json["error"]["param"] == "payment_intent"


def test_idempotent_attach_replays_byte_for_byte(api, db):
    invoice = factories.open_invoice(api, 1000)
    pi = factories.payment_intent(api, invoice, 1000)
    headers = {"Idempotency-Key": f"attach-{pi['id']}"}
    first = api.post(
        f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}, headers
    )
    second = api.post(
        f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}, headers
    )
    assert first.status_code == second.status_code == 200
    assert second.get_data() == first.get_data()
    assert second.headers["Idempotent-Replayed"] == "true"
    count = db.execute(
        "SELECT count(*) AS n FROM invoice_payments WHERE payment_intent = %s", (pi["id"],)
    ).fetchone()["n"]
    assert count == 1


def test_a_live_event_never_moves_a_test_payment_intent(api, service_urls):
    invoice = factories.open_invoice(api, 1000)
    pi = factories.payment_intent(api, invoice, 1000)
    attach(api, invoice["id"], payment_intent=pi["id"])
    factories.settle(service_urls["DATABASE_URL"], {**pi, "livemode": True})
    assert api.get(f"/v1/payment_intents/{pi['id']}").json["status"] == "requires_payment_method"
    assert api.get(f"/v1/invoices/{invoice['id']}").json["amount_paid"] == 0


def _settled_types(db, invoice_id, settle):
    """The invoice's event types written by `settle()`, oldest first."""
    before = len(factories.invoice_events(db, invoice_id))
    settle()
    return factories.invoice_events(db, invoice_id)[before:]


def test_overpaid_is_announced_once_at_the_move_to_paid(api, db, service_urls):
    # given two payments of 600 on an invoice of 1000, each within the remainder
    invoice = factories.open_invoice(api, 1000)
    first, second = (factories.payment_intent(api, invoice, 600) for _ in range(2))
    for pi in (first, second):
        assert attach(api, invoice["id"], payment_intent=pi["id"]).status_code == 200
    dsn = service_urls["DATABASE_URL"]

    # when both succeed
    partial = _settled_types(db, invoice["id"], lambda: factories.settle(dsn, first))
    paying = _settled_types(db, invoice["id"], lambda: factories.settle(dsn, second))

    # then the second one pays it overpaid by 200: invoice.overpaid comes last, once
    assert partial == ["invoice_payment.paid", "invoice.updated"]
    assert paying == [*factories.PAYING_EVENTS, "invoice.overpaid"]
    overpaid = factories.events_data(db, "invoice.overpaid", invoice["id"])[0]
    assert overpaid["object"]["amount_overpaid"] == 200
    assert ledger_row(db, invoice["id"]) == {"status": "paid", "total": 1000, "amount_paid": 1200}


def test_a_credit_on_a_paid_invoice_is_only_payment_paid_and_invoice_updated(api, db, service_urls):
    # given an invoice of 1000 with payments of 1000 and 500 attached while it was open
    invoice = factories.open_invoice(api, 1000)
    full = factories.payment_intent(api, invoice, 1000)
    extra = factories.payment_intent(api, invoice, 500)
    for pi in (full, extra):
        assert attach(api, invoice["id"], payment_intent=pi["id"]).status_code == 200
    dsn = service_urls["DATABASE_URL"]
    paying = _settled_types(db, invoice["id"], lambda: factories.settle(dsn, full))
    assert paying == factories.PAYING_EVENTS

    # when the second succeeds after the invoice is paid
    late = _settled_types(db, invoice["id"], lambda: factories.settle(dsn, extra))

    # then it is credited (overpaying by 500), with no second paid or any overpaid event
    assert late == ["invoice_payment.paid", "invoice.updated"]
    updated = factories.events_data(db, "invoice.updated", invoice["id"])[-1]
    assert updated["previous_attributes"] == {"amount_paid": 1000, "amount_overpaid": 0}
    assert updated["object"]["amount_overpaid"] == 500
    assert ledger_row(db, invoice["id"]) == {"status": "paid", "total": 1000, "amount_paid": 1500}


def _webhook_success(app, pi, **received):
    """POST a signed payment_intent.succeeded for `pi` to /webhooks/stripe, then drain
    the inbound events as the worker does."""
    obj = {key: value for key, value in pi.items() if key != "amount_received"}
    obj.update(status="succeeded", **received)
    event = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "payment_intent.succeeded",
    }
    body, headers = signed_webhook(event, WEBHOOK_SECRET)
    response = app.test_client().post("/webhooks/stripe", data=body, headers=headers)
    assert response.status_code == 200, response.json
    with psycopg.connect(
        app.extensions["settings"].database_url, autocommit=True, row_factory=dict_row
    ) as conn:
        process_inbound_batch(conn, now=int(time.time()), limit=10_000)


@pytest.mark.parametrize(
    ("received", "credited"),
    [
        pytest.param({"amount_received": 0}, 0, id="received-nothing"),
        pytest.param({"amount_received": 400}, 400, id="received-part"),
        pytest.param({"amount_received": None}, 1000, id="null-means-all"),
        pytest.param({}, 1000, id="absent-means-all"),
    ],
)
@pytest.mark.parametrize("attached", ["before", "after"])
def test_a_success_credits_what_was_received_even_nothing(
    app, api, db, received, credited, attached
):
    # given an invoice of 1000 and a PaymentIntent of 1000, attached before or after
    invoice = factories.open_invoice(api, 1000)
    pi = factories.payment_intent(api, invoice, 1000)
    if attached == "before":
        assert attach(api, invoice["id"], payment_intent=pi["id"]).status_code == 200

    # when Stripe's webhook says it succeeded having received `received`
    _webhook_success(app, pi, **received)
    if attached == "after":
        assert attach(api, invoice["id"], payment_intent=pi["id"]).status_code == 200

    # then exactly that is credited: a payment that received nothing is paid with 0
    payment = db.execute(
        "SELECT status, amount_paid FROM invoice_payments WHERE payment_intent = %s", (pi["id"],)
    ).fetchone()
    assert payment == {"status": "paid", "amount_paid": credited}
    row = ledger_row(db, invoice["id"])
    assert row["amount_paid"] == credited
    assert row["status"] == ("paid" if credited == 1000 else "open")
    types = factories.invoice_events(db, invoice["id"])
    assert types.count("invoice_payment.paid") == 1
    # a credit of 0 changes nothing on the invoice, so no invoice.updated
    assert types.count("invoice.updated") == (0 if credited == 0 else 1)


def test_concurrent_credits_without_the_invoice_lock_lose_nothing(api, db, service_urls):
    # given an invoice of 1000 with open payments of 600 and 400
    invoice = factories.open_invoice(api, 1000)
    payments = []
    for amount in (600, 400):
        pi = factories.payment_intent(api, invoice, amount)
        assert attach(api, invoice["id"], payment_intent=pi["id"]).status_code == 200
        payments.append(
            db.execute(
                "SELECT id FROM invoice_payments WHERE payment_intent = %s", (pi["id"],)
            ).fetchone()["id"]
        )
    dsn = service_urls["DATABASE_URL"]

    def credit(conn, payment_id, amount):
        return credits.apply_credits(
            conn,
            [(invoice["id"], payment_id, amount)],
            now=int(time.time()),
            payable=ledger.PAYABLE_STATUSES,
        )[payment_id]

    # when two callers credit them at once, neither holding the invoice's row lock first
    with (
        psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as first,
        psycopg.connect(dsn, row_factory=dict_row) as second,  # its own open transaction
        ThreadPoolExecutor(1) as pool,
    ):
        with first.transaction():
            credit(first, payments[0], 600)
            blocked = pool.submit(credit, second, payments[1], 400)
            time.sleep(0.3)
            assert not blocked.done()  # it waits on the row the first one updated
        after = blocked.result(timeout=10)
        second.commit()

    # then both credits count, and the invoice is paid
    assert (after.amount_paid, after.status) == (1000, "paid")
    assert ledger_row(db, invoice["id"]) == {"status": "paid", "total": 1000, "amount_paid": 1000}


@pytest.mark.parametrize("paid", [400, 1000, 1300], ids=["partial", "full", "over"])
def test_a_credits_previous_attributes_are_every_rendered_field_it_changed(
    api, db, service_urls, paid
):
    # given an open invoice of 1000 with a payment of `paid` attached
    from service.domain.events import changed_attributes
    from service.domain.ledger import as_dict
    from service.render.invoices import render_invoice

    invoice = factories.open_invoice(api, max(paid, 1000))
    pi = factories.payment_intent(api, invoice, paid)
    assert attach(api, invoice["id"], payment_intent=pi["id"]).status_code == 200
    # (a payment attaches only within what remains: overpay by lowering the total after)
    db.execute("UPDATE invoices SET total = 1000 WHERE id = %s", (invoice["id"],))
    before = invoices.get(db, invoice["id"], False)

    # when it is credited
    factories.settle(service_urls["DATABASE_URL"], pi)

    # then invoice.updated's previous_attributes (the credit renders only the fields it
    # can change, for speed) are exactly what a full render of both states differs in
    after = invoices.get(db, invoice["id"], False)
    updated = factories.events_data(db, "invoice.updated", invoice["id"])[0]
    full = changed_attributes(
        render_invoice(as_dict(before), []), render_invoice(as_dict(after), [])
    )
    assert updated["previous_attributes"] == json.loads(json.dumps(full))
    assert {"amount_paid", "amount_remaining"} <= set(full)
