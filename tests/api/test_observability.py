"""/metrics and the JSON log line, in process: the counts move with a real credit."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families
from psycopg.rows import dict_row

from devtools.stripe_events import signed_webhook, stripe_event
from service import observability
from service.operations.deliver import deliver_batch
from service.operations.process_inbound import process_inbound_batch
from service.store import deliveries
from tests import factories
from tests.conftest import TEST_KEY, WEBHOOK_SECRET
from tests.pipeline_support import Receiver


def scrape(api: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def post_webhook(api: Any, event: dict[str, Any]) -> Any:
    body, headers = signed_webhook(event, WEBHOOK_SECRET)
    return api.client.post("/webhooks/stripe", data=body, headers=headers)


def drain(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        while process_inbound_batch(conn, now=int(time.time())).claimed:
            pass


def test_metrics_move_with_a_credit_through_the_intake_and_the_worker(api, settings, db):
    # given an invoice with an attached PaymentIntent, and nothing left pending
    invoice, pi = factories.attached_invoice(api, 2500)
    drain(settings.database_url)
    before = scrape(api)
    succeeded = {"type": "payment_intent.succeeded", "outcome": "processed"}

    # when Stripe's signed success arrives at the intake
    event = stripe_event(pi, "payment_intent.succeeded")
    assert post_webhook(api, event).status_code == 200
    waiting = scrape(api)
    # and a worker processes it
    drain(settings.database_url)
    after = scrape(api)

    # then the invoice is paid and every count moved by the credit
    assert api.get(f"/v1/invoices/{invoice['id']}").json["status"] == "paid"
    intake = {"method": "POST", "route": "/webhooks/stripe", "status": "200"}
    count = "tally_http_request_duration_seconds_count"
    assert value(after, count, **intake) == value(before, count, **intake) + 1
    # (events other tests left pending, due later, count before and after alike)
    pending = value(before, "tally_inbound_events", status="pending")
    assert value(waiting, "tally_inbound_events", status="pending") == pending + 1
    assert value(waiting, "tally_inbound_oldest_pending_age_seconds") >= 0
    assert value(after, "tally_inbound_events", status="pending") == pending
    if pending == 0:
        assert value(after, "tally_inbound_oldest_pending_age_seconds") == 0
    settled = "tally_inbound_events_settled_total"
    assert value(after, settled, **succeeded) >= value(before, settled, **succeeded) + 1
    latency = "tally_inbound_received_to_processed_seconds_count"
    assert value(after, latency, type="payment_intent.succeeded") >= 1 + value(
        before, latency, type="payment_intent.succeeded"
    )
    # the credit wrote events that nobody has published yet: their age is visible
    assert value(after, "tally_events_unpublished") >= 1
    assert value(after, "tally_events_oldest_unpublished_age_seconds") >= 0


def test_request_metrics_use_the_route_template_not_the_path(api):
    before = scrape(api)
    for n in range(3):
        api.get(f"/v1/invoices/in_doesnotexist{n}")
    after = scrape(api)
    labels = {"method": "GET", "route": "/v1/invoices/<invoice_id>", "status": "404"}
    count = "tally_http_request_duration_seconds_count"
    assert value(after, count, **labels) == value(before, count, **labels) + 3
    assert not [key for key in after if "in_doesnotexist" in str(key)]


def test_unknown_inbound_types_share_one_label():
    assert (
        observability.inbound_type_label("payment_intent.succeeded") == "payment_intent.succeeded"
    )
    assert observability.inbound_type_label("customer.created") == "other"


def test_a_delivery_attempt_is_counted_and_timed(api, settings, db):
    # given an endpoint on loopback and an event pending delivery to it
    receiver = Receiver()
    try:
        created = api.post("/v1/webhook_endpoints", {"url": receiver.url, "enabled_events[]": "*"})
        receiver.secret = created.json["secret"]
        factories.open_invoice(api, 700)  # its events are published to the endpoint
        row = db.execute(
            "SELECT id FROM webhook_deliveries WHERE endpoint_id = %s ORDER BY id DESC LIMIT 1",
            (created.json["id"],),
        ).fetchone()
        before = scrape(api)

        # when it is delivered
        with psycopg.connect(settings.database_url, autocommit=True, row_factory=dict_row) as c:
            outcomes = deliver_batch(
                c, [(row["id"], None)], timeout=5, schedule=(1,), allow_private=True
            )
            outcome = outcomes[row["id"]]
        after = scrape(api)

        # then the attempt is counted, and its latency observed
        assert outcome == "succeeded"
        assert deliveries.get(db, row["id"])["status"] == "succeeded"
        attempts = "tally_webhook_delivery_attempts_total"
        assert value(after, attempts, outcome="succeeded") == 1 + value(
            before, attempts, outcome="succeeded"
        )
        timed = "tally_webhook_delivery_duration_seconds_count"
        assert value(after, timed, outcome="succeeded") == 1 + value(
            before, timed, outcome="succeeded"
        )
    finally:
        api.delete(f"/v1/webhook_endpoints/{created.json['id']}")
        receiver.close()


def test_a_request_logs_one_json_line_with_its_ids_and_no_key(api, caplog):
    handler = observability.json_handler()
    lines: list[str] = []
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        with caplog.at_level(logging.INFO):
            response = api.get("/v1/invoices/in_missing123")
    finally:
        logging.getLogger().removeHandler(handler)
    request_lines = [json.loads(line) for line in lines if '"tally.request"' in line]
    assert len(request_lines) == 1
    line = request_lines[0]
    assert line["request_id"] == response.headers["Request-Id"]
    assert line["route"] == "/v1/invoices/<invoice_id>"
    assert line["invoice_id"] == "in_missing123"
    assert line["status"] == 404
    assert line["outcome"] == "refused"
    assert line["duration_ms"] >= 0
    assert TEST_KEY not in "".join(lines)


def test_secrets_are_redacted_from_any_log_line():
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "key %s secret %s header %s", None, None
    )
    record.args = (TEST_KEY, WEBHOOK_SECRET, "Authorization: Basic c2tfdGVzdF94eXo6")
    text = observability.json_handler().format(record)
    assert TEST_KEY not in text
    assert WEBHOOK_SECRET not in text
    assert "c2tfdGVzdF94eXo6" not in text
    assert json.loads(text)["message"].count(observability.REDACTED) == 3
