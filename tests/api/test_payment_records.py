"""/v1/payment_records: payments made outside Stripe and their lifecycle, driven by the
stripe SDK. A record is money received only once its attempt is guaranteed."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from service.store.reconciliation import breaches
from tests import factories
from tests.conftest import TEST_KEY
from tests.sdk_declarations import always_present

T0 = 1_700_000_000


@pytest.fixture
def client(server):
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)


def _report(client, invoice: dict[str, Any], amount: int, **params: Any) -> stripe.PaymentRecord:
    return client.v1.payment_records.report_payment(
        params={
            "amount_requested": {"value": amount, "currency": invoice["currency"]},
            "customer_details": {"customer": invoice["customer"]},
            "initiated_at": T0,
            "payment_method_details": {"type": "custom"},
            **params,
        }
    )


def _attach(client, invoice: dict[str, Any], record_id: str) -> stripe.Invoice:
    return client.v1.invoices.attach_payment(invoice["id"], params={"payment_record": record_id})


def _ledger(db, invoice_id: str | None = None) -> dict[str, Any]:
    """What a refusal must leave as it was: records, refunds, invoice payments, the
    invoice, events."""
    return {
        "records": db.execute(
            "SELECT id, outcome, initiated_at, guaranteed_at, failed_at, canceled_at,"
            " description, customer, metadata FROM payment_records ORDER BY seq"
        ).fetchall(),
        "refunds": db.execute("SELECT * FROM payment_record_refunds ORDER BY seq").fetchall(),
        "payments": db.execute(
            "SELECT id, status, amount_paid, paid_at, canceled_at FROM invoice_payments"
            " ORDER BY seq"
        ).fetchall(),
        "invoice": db.execute(
            "SELECT status, amount_paid, paid_at FROM invoices WHERE id = %s", (invoice_id,)
        ).fetchone(),
        "events": db.execute("SELECT count(*) AS n FROM events").fetchone()["n"],
    }


def _amounts(record: stripe.PaymentRecord) -> dict[str, int]:
    names = ("requested", "guaranteed", "failed", "canceled", "refunded")
    return {name: record[f"amount_{name}"]["value"] for name in names}


def test_a_payment_reported_without_an_outcome_is_initiated_and_guarantees_nothing(client):
    # given a customer's invoice
    invoice = client.v1.customers.create(params={"email": "payer@example.com"})

    # when a payment is reported as it is initiated (no outcome)
    record = _report(client, {"currency": "usd", "customer": invoice.id}, 1500)

    # then nothing of it is guaranteed yet, as Stripe's example of such a report shows
    assert isinstance(record, stripe.PaymentRecord)
    assert _amounts(record) == {
        "requested": 1500, "guaranteed": 0, "failed": 0, "canceled": 0, "refunded": 0,
    }  # fmt: skip
    assert record.amount_guaranteed.currency == "usd"
    assert record.reported_by == "self"
    assert _amounts(client.v1.payment_records.retrieve(record.id)) == _amounts(record)


def test_an_attached_initiated_record_is_credited_only_once_guaranteed(api, client, db):
    # given an open invoice of 2000 and a payment of it reported as initiated
    invoice = factories.open_invoice(api, 2000)
    record = _report(client, invoice, 2000)

    # when it is attached
    attached = _attach(client, invoice, record.id)

    # then the invoice stays open and unpaid: its payment waits, open
    assert (attached.status, attached.amount_paid, attached.amount_remaining) == ("open", 0, 2000)
    row = db.execute("SELECT status, amount_paid FROM invoices WHERE id = %s", (invoice["id"],))
    assert row.fetchone() == {"status": "open", "amount_paid": 0}
    payments = client.v1.invoice_payments.list(params={"invoice": invoice["id"]}).data
    assert [(p.status, p.amount_paid) for p in payments] == [("open", None)]
    assert "invoice.paid" not in factories.invoice_events(db, invoice["id"])

    # when its attempt is reported guaranteed
    guaranteed = client.v1.payment_records.report_payment_attempt_guaranteed(
        record.id, params={"guaranteed_at": T0 + 60, "metadata": {"check": "1042"}}
    )

    # then the record shows it, and the invoice is paid as by a PaymentIntent's success:
    # same amounts, same events, in the same order
    assert _amounts(guaranteed)["guaranteed"] == 2000
    assert guaranteed.metadata.to_dict() == {"check": "1042"}
    paid = client.v1.invoices.retrieve(invoice["id"])
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 2000, 0)
    payment = client.v1.invoice_payments.retrieve(payments[0].id)
    assert (payment.status, payment.amount_paid) == ("paid", 2000)
    assert payment.status_transitions.paid_at is not None
    assert factories.invoice_events(db, invoice["id"])[-4:] == [
        "invoice_payment.paid", "invoice.updated", "invoice.paid", "invoice.payment_succeeded",
    ]  # fmt: skip
    assert not [b for b in breaches(db) if b["id"] in (invoice["id"], payment.id)]

    # and a repeated guaranteed report is refused and credits nothing twice
    before = _ledger(db, invoice["id"])
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_records.report_payment_attempt_guaranteed(
            record.id, params={"guaranteed_at": T0 + 61}
        )
    assert (caught.value.http_status, caught.value.param) == (400, "guaranteed_at")
    assert _ledger(db, invoice["id"]) == before


def test_a_retried_guaranteed_report_replays_and_credits_once(api, client, db):
    # given an attached initiated record
    invoice = factories.open_invoice(api, 700)
    record = _report(client, invoice, 700)
    _attach(client, invoice, record.id)
    options = {"idempotency_key": f"guarantee-{record.id}"}

    # when its guaranteed report is sent twice with one Idempotency-Key (an SDK retry)
    first = client.v1.payment_records.report_payment_attempt_guaranteed(
        record.id, params={"guaranteed_at": T0}, options=options
    )
    again = client.v1.payment_records.report_payment_attempt_guaranteed(
        record.id, params={"guaranteed_at": T0}, options=options
    )

    # then the second is the first's response, replayed, and the invoice was credited once
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert first.to_dict() == again.to_dict()
    assert factories.invoice_events(db, invoice["id"]).count("invoice_payment.paid") == 1
    assert client.v1.invoices.retrieve(invoice["id"]).amount_paid == 700


def test_concurrent_guaranteed_reports_credit_once(api, client, db):
    # given an attached initiated record
    invoice = factories.open_invoice(api, 900)
    record = _report(client, invoice, 900)
    _attach(client, invoice, record.id)

    # when six guaranteed reports (each its own key) arrive at the same instant
    def guarantee() -> int:
        response = api.post(
            f"/v1/payment_records/{record.id}/report_payment_attempt_guaranteed",
            {"guaranteed_at": T0},
        )
        return int(response.status_code)

    statuses = factories.together([guarantee] * 6)

    # then one of them credited the invoice, once; the others were refused
    assert sorted(statuses) == [200, 400, 400, 400, 400, 400]
    assert factories.invoice_events(db, invoice["id"]).count("invoice_payment.paid") == 1
    assert client.v1.invoices.retrieve(invoice["id"]).amount_paid == 900


@pytest.mark.parametrize("outcome", ["failed", "canceled"])
def test_a_failed_or_canceled_attempt_cancels_the_invoice_payment(api, client, db, outcome):
    # given an attached initiated record
    invoice = factories.open_invoice(api, 1200)
    record = _report(client, invoice, 1200)
    _attach(client, invoice, record.id)

    # when its attempt is reported failed, or canceled
    report = getattr(client.v1.payment_records, f"report_payment_attempt_{outcome}")
    ended = report(record.id, params={f"{outcome}_at": T0 + 5})

    # then the record shows it, its invoice payment is canceled, and nothing was paid
    assert _amounts(ended) == {
        "requested": 1200, "guaranteed": 0, "refunded": 0,
        "failed": 1200 if outcome == "failed" else 0,
        "canceled": 1200 if outcome == "canceled" else 0,
    }  # fmt: skip
    payment = client.v1.invoice_payments.list(params={"invoice": invoice["id"]}).data[0]
    assert (payment.status, payment.amount_paid) == ("canceled", None)
    assert payment.status_transitions.canceled_at is not None
    after = client.v1.invoices.retrieve(invoice["id"])
    assert (after.status, after.amount_paid, after.amount_remaining) == ("open", 0, 1200)
    assert "invoice_payment.paid" not in factories.invoice_events(db, invoice["id"])
    # and a canceled payment no longer stands in the way of marking it paid out of band
    assert (
        api.post(f"/v1/invoices/{invoice['id']}/pay", {"paid_out_of_band": "true"}).json["status"]
        == "paid"
    )


@pytest.mark.parametrize("outcome", ["failed", "canceled"])
def test_a_record_reported_failed_or_canceled_cannot_be_attached(api, client, db, outcome):
    invoice = factories.open_invoice(api, 500)
    record = _report(client, invoice, 500, outcome=outcome, **{outcome: {f"{outcome}_at": T0}})
    before = _ledger(db, invoice["id"])
    with pytest.raises(stripe.InvalidRequestError) as caught:
        _attach(client, invoice, record.id)
    assert (caught.value.http_status, caught.value.param) == (400, "payment_record")
    assert _ledger(db, invoice["id"]) == before


def test_a_new_attempt_after_a_failure_can_be_guaranteed_then_attached(api, client):
    # given a record whose first attempt failed
    invoice = factories.open_invoice(api, 800)
    record = _report(client, invoice, 800, outcome="failed", failed={"failed_at": T0})

    # when a new attempt is reported, initiated, and later guaranteed
    retried = client.v1.payment_records.report_payment_attempt(
        record.id, params={"initiated_at": T0 + 100, "description": "second try"}
    )
    assert _amounts(retried) == {
        "requested": 800, "guaranteed": 0, "failed": 0, "canceled": 0, "refunded": 0,
    }  # fmt: skip
    assert retried.description == "second try"
    client.v1.payment_records.report_payment_attempt_guaranteed(
        record.id, params={"guaranteed_at": T0 + 200}
    )

    # then attaching it pays the invoice at once
    attached = _attach(client, invoice, record.id)
    assert (attached.status, attached.amount_paid) == ("paid", 800)


# Invalid moves: (outcome reported first, attach it?, method, params, param named).
INVALID = {
    "guaranteed_on_failed": ("failed", False, "report_payment_attempt_guaranteed",
                             {"guaranteed_at": T0}, "guaranteed_at"),
    "failed_on_guaranteed": ("guaranteed", True, "report_payment_attempt_failed",
                             {"failed_at": T0}, "failed_at"),
    "canceled_on_guaranteed": ("guaranteed", True, "report_payment_attempt_canceled",
                               {"canceled_at": T0}, "canceled_at"),
    "canceled_on_canceled": ("canceled", False, "report_payment_attempt_canceled",
                             {"canceled_at": T0}, "canceled_at"),
    "new_attempt_on_initiated": (None, True, "report_payment_attempt",
                                 {"initiated_at": T0}, "initiated_at"),
    "new_attempt_on_guaranteed": ("guaranteed", True, "report_payment_attempt",
                                  {"initiated_at": T0, "outcome": "guaranteed"}, "initiated_at"),
    "new_attempt_on_attached_failure": ("failed", True, "report_payment_attempt",
                                        {"initiated_at": T0}, "initiated_at"),
    "refund_of_initiated": (None, True, "report_refund", {"outcome": "refunded",
                            "processor_details": {"type": "custom"}}, "outcome"),
    "refund_beyond_the_payment": ("guaranteed", True, "report_refund", {
        "outcome": "refunded", "processor_details": {"type": "custom"},
        "amount": {"value": 601, "currency": "usd"}}, "amount[value]"),
    "refund_in_another_currency": ("guaranteed", False, "report_refund", {
        "outcome": "refunded", "processor_details": {"type": "custom"},
        "amount": {"value": 100, "currency": "eur"}}, "amount[currency]"),
    "customer_change_of_attached": (None, True, "report_payment_attempt_informational",
                                    {"customer_details": {"customer": "cus_other"}},
                                    "customer_details[customer]"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_moves_are_refused_and_change_nothing(api, client, db, case):
    # given a record in some state, attached to an open invoice or not
    outcome, attached, method, params, param = INVALID[case]
    invoice = factories.open_invoice(api, 600)
    record = _report(client, invoice, 600)
    if attached:
        _attach(client, invoice, record.id)
    if outcome:
        report = getattr(client.v1.payment_records, f"report_payment_attempt_{outcome}")
        report(record.id, params={f"{outcome}_at": T0})
    if case == "customer_change_of_attached":
        params = {"customer_details": {"customer": factories.customer(api)["id"]}}
    before = _ledger(db, invoice["id"])

    # when the invalid report is made
    with pytest.raises(stripe.InvalidRequestError) as caught:
        getattr(client.v1.payment_records, method)(record.id, params=params)

    # then it is a 400 naming the parameter, and nothing changed
    assert (caught.value.http_status, caught.value.param) == (400, param), caught.value
    assert _ledger(db, invoice["id"]) == before


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"outcome": "failed", "guaranteed": {"guaranteed_at": T0}}, "guaranteed"),
        ({"canceled": {"canceled_at": T0}}, "canceled"),
        ({"outcome": "refunded"}, "outcome"),
    ],
)
def test_an_outcome_and_its_details_must_agree(api, client, db, params, param):
    invoice = factories.open_invoice(api, 600)
    before = _ledger(db, invoice["id"])
    with pytest.raises(stripe.InvalidRequestError) as caught:
        _report(client, invoice, 600, **params)
    assert (caught.value.http_status, caught.value.param) == (400, param)
    assert _ledger(db, invoice["id"]) == before


def test_an_unknown_record_is_a_404(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_records.report_payment_attempt_guaranteed(
            "pr_missing", params={"guaranteed_at": T0}
        )
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")


def test_a_refund_is_recorded_and_leaves_the_paid_invoice_paid(api, client, db):
    # given an invoice paid by a guaranteed record
    invoice = factories.open_invoice(api, 1000)
    record = _report(client, invoice, 1000, outcome="guaranteed", guaranteed={"guaranteed_at": T0})
    _attach(client, invoice, record.id)
    events_before = factories.invoice_events(db, invoice["id"])

    # when part of it is reported refunded, then the rest
    refund = {"outcome": "refunded", "refunded": {"refunded_at": T0 + 9}}
    partly = client.v1.payment_records.report_refund(record.id, params={
        **refund, "amount": {"value": 300, "currency": "usd"},
        "processor_details": {"type": "custom", "custom": {"refund_reference": "rf-1"}},
    })  # fmt: skip
    # and a refund reference is used once
    before = _ledger(db, invoice["id"])
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_records.report_refund(record.id, params={
            **refund, "amount": {"value": 100, "currency": "usd"},
            "processor_details": {"type": "custom", "custom": {"refund_reference": "rf-1"}},
        })  # fmt: skip
    assert (caught.value.http_status, caught.value.param) == (
        400,
        "processor_details[custom][refund_reference]",
    )
    assert _ledger(db, invoice["id"]) == before
    fully = client.v1.payment_records.report_refund(record.id, params={
        **refund, "processor_details": {"type": "custom", "custom": {"refund_reference": "rf-2"}},
    })  # fmt: skip

    # then the record shows both refunds, and the invoice is still paid, as in Stripe
    assert _amounts(partly)["refunded"] == 300
    assert _amounts(fully)["refunded"] == 1000
    assert _amounts(fully)["guaranteed"] == 1000
    after = client.v1.invoices.retrieve(invoice["id"])
    assert (after.status, after.amount_paid) == ("paid", 1000)
    assert factories.invoice_events(db, invoice["id"]) == events_before
    # and nothing is left to refund
    before = _ledger(db, invoice["id"])
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_records.report_refund(record.id, params={
            **refund, "processor_details": {"type": "custom"},
        })  # fmt: skip
    assert (caught.value.http_status, caught.value.param) == (400, "amount")
    assert _ledger(db, invoice["id"]) == before


def test_informational_reports_change_description_metadata_and_customer(api, client):
    invoice = factories.open_invoice(api, 400)
    record = _report(client, invoice, 400, description="wire", metadata={"a": "1", "b": "2"})
    other = factories.customer(api)["id"]
    updated = client.v1.payment_records.report_payment_attempt_informational(
        record.id,
        params={"description": "wire 7", "metadata": {"b": ""}, "customer_details": {
            "customer": other}},
    )  # fmt: skip
    assert updated.description == "wire 7"
    assert updated.metadata.to_dict() == {"a": "1"}
    assert updated.customer_details.customer == other
    assert _amounts(updated) == _amounts(record)


def test_payment_records_are_listed_newest_first(api, client):
    invoice = factories.open_invoice(api, 400)
    ids = [_report(client, invoice, amount).id for amount in (100, 200, 300)]
    page = client.v1.payment_records.list(params={"limit": 2})
    assert [r.id for r in page.data] == ids[::-1][:2]
    assert page.has_more is True
    rest = client.v1.payment_records.list(params={"limit": 2, "starting_after": ids[1]})
    assert ids[0] in [r.id for r in rest.data]


def test_records_carry_every_field_the_sdk_declares_always_present(api, client):
    invoice = factories.open_invoice(api, 400)
    body = api.get(f"/v1/payment_records/{_report(client, invoice, 100).id}").json
    assert not always_present(stripe.PaymentRecord) - set(body)


@pytest.mark.parametrize("outcome", ["guaranteed", "failed"])
def test_an_outcome_time_beyond_any_timestamp_is_a_400_not_a_500(api, outcome):
    # given a report whose outcome time does not fit a timestamp column
    # (found by schemathesis: guaranteed_at=106573441772356960256 was a 500)
    params = {
        "amount_requested[value]": 100,
        "amount_requested[currency]": "usd",
        "initiated_at": 1_700_000_000,
        "outcome": outcome,
        f"{outcome}[{outcome}_at]": 10**20,
    }

    # when it is reported
    response = api.post("/v1/payment_records/report_payment", params)

    # then it is refused, naming the parameter
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == f"{outcome}[{outcome}_at]"


def test_the_audit_reports_a_record_whose_invoice_payment_does_not_follow_it(api, client, db):
    # given a guaranteed record attached and paid, and one refunded in part
    invoice = factories.open_invoice(api, 500)
    record = _report(client, invoice, 500, outcome="guaranteed")
    _attach(client, invoice, record.id)
    payment = client.v1.invoice_payments.list(params={"invoice": invoice["id"]}).data[0]
    client.v1.payment_records.report_refund(
        record.id, params={"outcome": "refunded", "processor_details": {"type": "custom"},
                           "amount": {"value": 200, "currency": "usd"}},
    )  # fmt: skip
    mine = {payment.id, record.id}
    assert [b for b in breaches(db) if b["id"] in mine] == []

    # when the record's outcome is changed behind the ledger's back
    db.execute("UPDATE payment_records SET outcome = NULL WHERE id = %s", (record.id,))
    try:
        # then the audit names the paid invoice payment and the refunded record
        found = {(b["check"], b["id"]) for b in breaches(db) if b["id"] in mine}
    finally:
        db.execute("UPDATE payment_records SET outcome = 'guaranteed' WHERE id = %s", (record.id,))
    assert found == {
        ("payment_record_credited_once_guaranteed", payment.id),
        ("payment_record_refunds_within_guaranteed", record.id),
    }


def test_an_attach_and_its_guaranteed_report_at_the_same_instant_credit_once(api, db):
    for _ in range(5):
        # given an initiated record of an open invoice
        invoice = factories.open_invoice(api, 300)
        record = api.post("/v1/payment_records/report_payment", {
            "amount_requested[value]": 300, "amount_requested[currency]": "usd",
            "customer_details[customer]": invoice["customer"], "initiated_at": T0,
        }).json["id"]  # fmt: skip

        # when it is attached and reported guaranteed at once
        def attach(record: str = record, invoice_id: str = invoice["id"]) -> int:
            path = f"/v1/invoices/{invoice_id}/attach_payment"
            return int(api.post(path, {"payment_record": record}).status_code)

        def guarantee(record: str = record) -> int:
            path = f"/v1/payment_records/{record}/report_payment_attempt_guaranteed"
            return int(api.post(path, {"guaranteed_at": T0}).status_code)

        statuses = factories.together([attach, guarantee])

        # then both succeed, whichever came first, and the invoice is credited once
        assert statuses == [200, 200]
        row = db.execute("SELECT status, amount_paid FROM invoices WHERE id = %s", (invoice["id"],))
        assert row.fetchone() == {"status": "paid", "amount_paid": 300}
        assert factories.invoice_events(db, invoice["id"]).count("invoice_payment.paid") == 1


def test_concurrent_refunds_never_take_back_more_than_was_guaranteed(api, client, db):
    # given a guaranteed record of 500
    invoice = factories.open_invoice(api, 500)
    record = _report(client, invoice, 500, outcome="guaranteed").id

    # when six refunds of 200, each with its own reference, arrive at the same instant
    def refund(n: int) -> int:
        response = api.post(f"/v1/payment_records/{record}/report_refund", {
            "outcome": "refunded", "processor_details[type]": "custom",
            "processor_details[custom][refund_reference]": f"race-{record}-{n}",
            "amount[value]": 200, "amount[currency]": "usd",
        })  # fmt: skip
        return int(response.status_code)

    statuses = factories.together([lambda n=n: refund(n) for n in range(6)])

    # then two are recorded and the rest refused: 400 is all that was left to refund
    assert sorted(statuses) == [200, 200, 400, 400, 400, 400]
    refunded = db.execute(
        "SELECT sum(amount) AS s FROM payment_record_refunds WHERE payment_record = %s", (record,)
    ).fetchone()["s"]
    assert refunded == 400
    assert client.v1.payment_records.retrieve(record).amount_refunded.value == 400
