"""The event pipeline end to end: signed Stripe webhooks over HTTP into the web app,
a real celery worker process crediting invoices, against real PostgreSQL and Redis;
and the failures the contract lists (duplicates, races, a killed worker, Redis down)."""

# Fixtures come from tests.pipeline_support by import, which ruff reads as redefinitions.

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest
import redis
import requests
from psycopg.rows import dict_row

from devtools.stripe_events import signed_webhook, stripe_event
from service import queue
from service.adapters.stream import STREAM_KEY
from service.adapters.upstream import Upstream
from service.app import create_app
from service.domain.signatures import WebhookSecrets
from service.operations.process_inbound import BATCH_SIZE, process_inbound_batch
from service.operations.record_webhook import record_webhook
from service.operations.sweep import REFETCH_BATCH, check_invariants, refetch_open_payments
from tests import factories
from tests.conftest import TEST_KEY, WEBHOOK_SECRET
from tests.pipeline_support import send_event, wait_for


def inbound_status(db, event_id):
    row = db.execute("SELECT status FROM inbound_events WHERE id = %s", (event_id,)).fetchone()
    return row["status"] if row else None


def wait_settled(db, event_ids, timeout=30):
    ids = list(event_ids)

    def settled():
        rows = db.execute(
            "SELECT count(*) AS n FROM inbound_events WHERE id = ANY(%s) AND status <> 'pending'",
            (ids,),
        ).fetchone()
        return rows["n"] == len(ids)

    wait_for(settled, timeout, f"{len(ids)} inbound events to be processed")


def invoice_row(db, invoice_id):
    return db.execute(
        "SELECT status, total, amount_paid FROM invoices WHERE id = %s", (invoice_id,)
    ).fetchone()


def credit_counts(db, invoice_id):
    """(invoice_payment.paid, invoice.paid) events about the invoice. Only those two types
    are read (events_type_idx): the suite's whole events table is too slow to scan once
    per invoice of a backlog on a loaded machine."""
    row = db.execute(
        """
        SELECT count(*) FILTER (WHERE type = 'invoice_payment.paid') AS payment_paid,
               count(*) FILTER (WHERE type = 'invoice.paid') AS invoice_paid
        FROM events
        WHERE type IN ('invoice_payment.paid', 'invoice.paid')
          AND (data->'object'->>'id' = %(id)s OR data->'object'->>'invoice' = %(id)s)
        """,
        {"id": invoice_id},
    ).fetchone()
    return row["payment_paid"], row["invoice_paid"]


def test_webhook_pays_the_invoice_with_the_contract_events(papi, db, worker, pipeline_server):
    # given an open invoice with an attached PaymentIntent, made through the API
    cus = papi.post("/v1/customers", {"email": "e2e@example.com"}).json
    item = papi.post(
        "/v1/invoiceitems", {"customer": cus["id"], "amount": 2500, "currency": "usd"}
    ).json
    draft = papi.post(
        "/v1/invoices", {"customer": cus["id"], "pending_invoice_items_behavior": "include"}
    ).json
    assert draft["total"] == item["amount"] == 2500
    invoice = papi.post(f"/v1/invoices/{draft['id']}/finalize").json
    pi = papi.post(
        "/v1/payment_intents", {"amount": 2500, "currency": "usd", "customer": cus["id"]}
    ).json
    attached = papi.post(
        f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}
    ).json
    assert attached["status"] == "open"

    # when Stripe sends a signed payment_intent.succeeded
    event = stripe_event(pi, "payment_intent.succeeded")
    assert send_event(pipeline_server, event) == 200

    # then the worker pays the invoice
    wait_for(
        lambda: papi.get(f"/v1/invoices/{invoice['id']}").json["status"] == "paid",
        20,
        "the invoice to be paid",
    )
    paid = papi.get(f"/v1/invoices/{invoice['id']}").json
    assert (paid["amount_paid"], paid["amount_remaining"]) == (2500, 0)
    assert inbound_status(db, event["id"]) == "processed"
    assert papi.get(f"/v1/payment_intents/{pi['id']}").json["status"] == "succeeded"

    # and GET /v1/events shows the contract's events in order
    listed = papi.get("/v1/events", {"limit": 100}).json["data"]
    mine = [
        e
        for e in reversed(listed)
        if invoice["id"] in (e["data"]["object"].get("id"), e["data"]["object"].get("invoice"))
    ]
    assert [e["type"] for e in mine][-4:] == factories.PAYING_EVENTS
    updated = mine[-3]
    assert updated["data"]["previous_attributes"]["amount_paid"] == 0
    assert updated["data"]["previous_attributes"]["amount_remaining"] == 2500
    assert updated["request"] == {"id": None, "idempotency_key": None}
    assert mine[-2]["data"]["object"]["status"] == "paid"

    # and the events reach the Redis stream
    stream = redis.Redis.from_url(worker.env["REDIS_URL"])
    wanted = {e["id"] for e in mine[-4:]}
    wait_for(
        lambda: wanted <= {f[b"id"].decode() for _, f in stream.xrange(STREAM_KEY)},
        10,
        "the events on the stream",
    )


def test_same_event_ten_times_some_concurrently_credits_once(papi, db, worker, pipeline_server):
    invoice, pi = factories.attached_invoice(papi, 1500)
    event = stripe_event(pi, "payment_intent.succeeded")
    with requests.Session() as session:
        for _ in range(3):
            assert send_event(pipeline_server, event, session) == 200
    statuses = factories.together([lambda: send_event(pipeline_server, event)] * 7)
    assert statuses == [200] * 7
    wait_settled(db, [event["id"]])
    time.sleep(0.5)
    assert (
        db.execute(
            "SELECT count(*) AS n FROM inbound_events WHERE id = %s", (event["id"],)
        ).fetchone()["n"]
        == 1
    )
    assert invoice_row(db, invoice["id"])["amount_paid"] == 1500
    assert credit_counts(db, invoice["id"]) == (1, 1)


def test_two_event_ids_for_the_same_success_credit_once(papi, db, worker, pipeline_server):
    invoice, pi = factories.attached_invoice(papi, 1600)
    events = [stripe_event(pi, "payment_intent.succeeded") for _ in range(2)]
    assert factories.together([lambda e=e: send_event(pipeline_server, e) for e in events]) == [
        200,
        200,
    ]
    wait_settled(db, [e["id"] for e in events])
    assert {inbound_status(db, e["id"]) for e in events} == {"processed"}
    assert invoice_row(db, invoice["id"])["amount_paid"] == 1600
    assert credit_counts(db, invoice["id"]) == (1, 1)


def test_success_before_attach_is_credited_at_attach(papi, db, worker, pipeline_server):
    # given the success webhook arrives (and is processed) before the attach call
    invoice = factories.open_invoice(papi, 1700)
    pi = factories.payment_intent(papi, invoice, 1700)
    event = stripe_event(pi, "payment_intent.succeeded")
    assert send_event(pipeline_server, event) == 200
    wait_settled(db, [event["id"]])
    assert invoice_row(db, invoice["id"])["status"] == "open"

    # when the PaymentIntent is attached
    body = papi.post(
        f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}
    ).json

    # then it is credited at once
    assert body["status"] == "paid"
    assert body["amount_paid"] == 1700
    assert credit_counts(db, invoice["id"]) == (1, 1)


def test_attach_racing_the_webhook_credits_once(papi, db, worker, pipeline_server):
    cases = []
    for _ in range(5):
        invoice = factories.open_invoice(papi, 1800)
        pi = factories.payment_intent(papi, invoice, 1800)
        cases.append((invoice, pi, stripe_event(pi, "payment_intent.succeeded")))

    def attach(invoice, pi):
        return papi.post(
            f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]}
        ).status_code

    for invoice, pi, event in cases:
        results = factories.together(
            [
                lambda invoice=invoice, pi=pi: attach(invoice, pi),
                lambda event=event: send_event(pipeline_server, event),
            ]
        )
        assert results == [200, 200]
    wait_settled(db, [event["id"] for _, _, event in cases])
    for invoice, _, _ in cases:
        row = invoice_row(db, invoice["id"])
        assert (row["status"], row["amount_paid"]) == ("paid", 1800)
        assert credit_counts(db, invoice["id"]) == (1, 1)


def test_two_payment_intents_of_one_invoice_succeeding_at_once(papi, db, worker, pipeline_server):
    invoice = factories.open_invoice(papi, 1000)
    intents = [factories.payment_intent(papi, invoice, amount) for amount in (600, 400)]
    for pi in intents:
        papi.post(f"/v1/invoices/{invoice['id']}/attach_payment", {"payment_intent": pi["id"]})
    events = [stripe_event(pi, "payment_intent.succeeded") for pi in intents]
    factories.together([lambda e=e: send_event(pipeline_server, e) for e in events])
    wait_settled(db, [e["id"] for e in events])
    row = invoice_row(db, invoice["id"])
    assert (row["status"], row["amount_paid"]) == ("paid", 1000)
    assert credit_counts(db, invoice["id"]) == (2, 1)


def test_late_processing_and_cancel_events(papi, db, worker, pipeline_server):
    # a late `processing` after `succeeded` does not move the PaymentIntent back
    invoice, pi = factories.attached_invoice(papi, 1900)
    success = stripe_event(pi, "payment_intent.succeeded")
    send_event(pipeline_server, success)
    wait_settled(db, [success["id"]])
    late = stripe_event(pi, "payment_intent.processing")
    send_event(pipeline_server, late)
    wait_settled(db, [late["id"]])
    assert papi.get(f"/v1/payment_intents/{pi['id']}").json["status"] == "succeeded"
    assert invoice_row(db, invoice["id"])["amount_paid"] == 1900

    # a canceled PaymentIntent cancels its open invoice payment
    other, other_pi = factories.attached_invoice(papi, 500)
    canceled = stripe_event(other_pi, "payment_intent.canceled")
    send_event(pipeline_server, canceled)
    wait_settled(db, [canceled["id"]])
    payment = db.execute(
        "SELECT status FROM invoice_payments WHERE payment_intent = %s", (other_pi["id"],)
    ).fetchone()
    assert payment["status"] == "canceled"
    assert invoice_row(db, other["id"])["status"] == "open"


def test_malformed_or_refused_events_fail_alone(papi, db, worker, pipeline_server):
    # given a payment_intent event without an amount, one in the wrong currency, and a good one
    invoice, pi = factories.attached_invoice(papi, 1200)
    broken = stripe_event(pi, "payment_intent.succeeded")
    del broken["data"]["object"]["amount"]
    good = stripe_event(pi, "payment_intent.succeeded")
    unknown = stripe_event(pi, "payment_intent.succeeded", type="charge.refunded")
    for event in (broken, unknown, good):
        assert send_event(pipeline_server, event) == 200
    wait_settled(db, [good["id"], unknown["id"]])

    def attempted():
        row = db.execute(
            "SELECT status, attempts, last_error FROM inbound_events WHERE id = %s",
            (broken["id"],),
        ).fetchone()
        return row if row["attempts"] else None

    row = wait_for(attempted, 30, "a first attempt at the broken event")
    # failed once, so retried later (test_replay_inbound.py follows it to `failed`)
    assert row["status"] == "pending" and row["attempts"] == 1 and "amount" in row["last_error"]
    assert inbound_status(db, unknown["id"]) == "ignored"
    assert inbound_status(db, good["id"]) == "processed"
    assert invoice_row(db, invoice["id"])["status"] == "paid"


@pytest.fixture
def slow_crediting(db):
    """Make every invoice payment update sleep, so a batch takes long enough to be killed."""
    db.execute(
        """
        CREATE OR REPLACE FUNCTION tally_test_slow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(0.03); RETURN NEW; END $$;
        DROP TRIGGER IF EXISTS tally_test_slow ON invoice_payments;
        CREATE TRIGGER tally_test_slow BEFORE UPDATE ON invoice_payments
            FOR EACH ROW EXECUTE FUNCTION tally_test_slow();
        """
    )
    yield
    db.execute("DROP TRIGGER IF EXISTS tally_test_slow ON invoice_payments")


def backlog_while_stopped(papi, worker, server, count, amount):
    """Stop the worker, then pay `count` attached invoices by webhook; returns the
    (invoice, pi) cases and the inbound event ids, all pending."""
    worker.stop()
    cases = [factories.attached_invoice(papi, amount) for _ in range(count)]
    events = [stripe_event(pi, "payment_intent.succeeded") for _, pi in cases]
    with requests.Session() as session:
        assert {send_event(server, e, session) for e in events} == {200}
    return cases, [e["id"] for e in events]


@pytest.mark.timeout(300)  # a slow backlog on purpose; slower still on a loaded machine
def test_worker_killed_mid_crediting_credits_exactly_once(
    papi, db, worker, pipeline_server, slow_crediting
):
    # given a backlog that arrives while no worker runs, larger than what the worker's
    # processes take in their first batches (two drains may start at once: the one the
    # intake woke and the one the sweeper forces for events past their grace period)
    cases, ids = backlog_while_stopped(papi, worker, pipeline_server, 3 * BATCH_SIZE, 300)

    def processed():
        return db.execute(
            "SELECT count(*) AS n FROM inbound_events WHERE id = ANY(%s) AND status = 'processed'",
            (ids,),
        ).fetchone()["n"]

    # when the worker starts, commits some of it, and is SIGKILLed in the middle of a batch
    worker.start()
    wait_for(lambda: processed() > 0, 30, "a first batch")
    time.sleep(0.3)
    worker.kill()
    done_at_kill = processed()
    assert 0 < done_at_kill < len(ids)
    assert (
        db.execute(
            "SELECT count(*) AS n FROM invoice_payments WHERE payment_intent = ANY(%s)"
            " AND status = 'paid'",
            ([pi["id"] for _, pi in cases],),
        ).fetchone()["n"]
        == done_at_kill
    )  # nothing half-written

    # then after a restart everything is credited, each invoice exactly once
    worker.start()
    wait_settled(db, ids, 90)
    for invoice, _ in cases:
        row = invoice_row(db, invoice["id"])
        assert (row["status"], row["amount_paid"]) == ("paid", 300)
        assert credit_counts(db, invoice["id"]) == (1, 1)


def test_warm_shutdown_finishes_the_batch_in_hand(
    papi, db, worker, pipeline_server, slow_crediting
):
    # given a worker crediting a backlog slowly (each credit takes 30 ms)
    cases, ids = backlog_while_stopped(papi, worker, pipeline_server, 2 * BATCH_SIZE, 350)
    worker.start()
    wait_for(
        lambda: db.execute(
            "SELECT count(*) AS n FROM inbound_events WHERE id = ANY(%s) AND status <> 'pending'",
            (ids,),
        ).fetchone()["n"],
        30,
        "a first batch",
    )

    # when its main process gets SIGTERM (a warm shutdown) in the middle of the backlog
    started = time.monotonic()
    worker.stop(group=False)

    # then it exits once the batches in hand are done, leaving nothing half-written
    assert time.monotonic() - started < 12
    assert "Traceback" not in worker.log().rsplit("==== run", 1)[-1]
    settled = db.execute(
        "SELECT count(*) AS n FROM inbound_events WHERE id = ANY(%s) AND status = 'processed'",
        (ids,),
    ).fetchone()["n"]
    paid = db.execute(
        "SELECT count(*) AS n FROM invoice_payments WHERE payment_intent = ANY(%s)"
        " AND status = 'paid'",
        ([pi["id"] for _, pi in cases],),
    ).fetchone()["n"]
    assert 0 < settled == paid

    # and a new worker credits the rest, each invoice once
    worker.start()
    wait_settled(db, ids, 90)
    for invoice, _ in cases:
        assert credit_counts(db, invoice["id"]) == (1, 1)


def test_webhooks_while_redis_is_down_are_processed_after_it_returns(
    papi, db, worker, pipeline_server, private_redis
):
    # given open invoices with attached PaymentIntents
    cases = [factories.attached_invoice(papi, 400) for _ in range(5)]
    events = [stripe_event(pi, "payment_intent.succeeded") for _, pi in cases]

    # when Redis is down while their webhooks arrive
    private_redis.stop()
    try:
        started = time.monotonic()
        statuses = [send_event(pipeline_server, e) for e in events]
        elapsed = time.monotonic() - started
        # then every webhook is still stored and acknowledged, quickly
        assert statuses == [200] * len(events)
        assert elapsed < 5
        stored = db.execute(
            "SELECT count(*) AS n FROM inbound_events WHERE id = ANY(%s)",
            ([e["id"] for e in events],),
        ).fetchone()["n"]
        assert stored == len(events)
    finally:
        private_redis.start()

    # and once Redis is back they are processed, and their events published
    wait_settled(db, [e["id"] for e in events], 60)
    for invoice, _ in cases:
        assert invoice_row(db, invoice["id"])["status"] == "paid"
    paid_events = [
        r["id"]
        for r in db.execute(
            "SELECT id FROM events WHERE type = 'invoice.paid' AND data->'object'->>'id' = ANY(%s)",
            ([invoice["id"] for invoice, _ in cases],),
        ).fetchall()
    ]
    stream = redis.Redis.from_url(private_redis.url)
    wait_for(
        lambda: set(paid_events) <= {f[b"id"].decode() for _, f in stream.xrange(STREAM_KEY)},
        30,
        "the events to be published after Redis returned",
    )


def test_sweeper_redrives_events_that_were_never_woken(db, worker, service_urls):
    # given a pending inbound event stored without any wake-up (as if the LPUSH was lost)
    event_id = f"evt_swept{int(time.time() * 1000)}"
    with psycopg.connect(service_urls["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO inbound_events (id, type, livemode, payload, received_at)"
            " VALUES (%s, 'customer.created', false, '{}', now() - interval '1 minute')",
            (event_id,),
        )
    # then the worker still settles it
    wait_settled(db, [event_id], 20)
    assert inbound_status(db, event_id) == "ignored"


def test_trigger_command_pays_an_attached_invoice(papi, db, worker, pipeline_server):
    # given an invoice with an attached PaymentIntent
    invoice, pi = factories.attached_invoice(papi, 2100)
    env = {**os.environ, "TALLY_API_KEYS": TEST_KEY, "STRIPE_WEBHOOK_SECRETS_TEST": WEBHOOK_SECRET}

    # when `python -m service.trigger payment_intent.succeeded pi_…` runs
    done = subprocess.run(
        [sys.executable, "-m", "service.trigger", "payment_intent.succeeded", pi["id"],
         "--url", pipeline_server],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip

    # then Tally acknowledged a signed event built from the PaymentIntent, and paid
    assert done.returncode == 0, done.stderr
    assert '-> 200 {"received":true}' in done.stdout
    wait_for(lambda: invoice_row(db, invoice["id"])["status"] == "paid", 20, "paid")


def test_sweeper_reports_a_ledger_breach(papi, db, caplog, service_urls):
    # given a paid invoice whose amount_paid no longer matches its payments
    invoice, pi = factories.attached_invoice(papi, 2200)
    factories.settle(service_urls["DATABASE_URL"], pi)
    db.execute("UPDATE invoices SET amount_paid = amount_paid + 1 WHERE id = %s", (invoice["id"],))
    try:
        # when the sweeper checks the invariants
        with psycopg.connect(
            service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row
        ) as conn:
            assert check_invariants(conn) >= 1
        # then the breach is logged loudly, naming the invoice
        assert any(
            r.levelname == "ERROR"
            and "LEDGER INVARIANT BREACH amount_paid_matches_payments" in r.getMessage()
            and invoice["id"] in r.getMessage()
            for r in caplog.records
        )
    finally:
        db.execute(
            "UPDATE invoices SET amount_paid = amount_paid - 1 WHERE id = %s", (invoice["id"],)
        )
    caplog.clear()
    with psycopg.connect(service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row) as c:
        check_invariants(c)
    assert not [r for r in caplog.records if invoice["id"] in r.getMessage()]


def test_metrics_show_the_pipeline(pipeline_settings, papi, db, worker, pipeline_server):
    from service.api import metrics

    app = create_app(pipeline_settings)
    if "metrics" not in app.blueprints:
        app.register_blueprint(metrics.bp)
    try:
        # when the ledger check's task runs (beat sends it every minute; here at once)
        queue.make_task_queue(pipeline_settings, app.extensions["redis"]).send(
            queue.CHECK_LEDGER, ()
        )
        # then the worker ran it, and its result is in Redis for the web's /metrics; and
        # beat's sweep ran too (every second here)
        wait_for(
            lambda: all(
                gauge in app.test_client().get("/metrics").data
                for gauge in (
                    b"tally_ledger_invariant_breaches_last ",
                    b"tally_sweep_last_completed_timestamp_seconds ",
                )
            ),
            15,
            "the breach gauge and the sweep's",
        )
        text = app.test_client().get("/metrics").get_data(as_text=True)
        assert 'tally_inbound_events{status="pending"}' in text
        assert 'tally_inbound_events{status="failed"}' in text
        assert "tally_events_unpublished " in text
        assert 'tally_webhook_deliveries_pending{state="due"}' in text
        assert "tally_ledger_invariant_breaches_total " in text
        # beat's health: the worker ran beat's sweep, and the web reads when from PostgreSQL
        [swept] = [
            float(line.split()[1])
            for line in text.splitlines()
            if line.startswith("tally_sweep_last_completed_timestamp_seconds ")
        ]
        assert time.time() - swept < 10
    finally:
        app.extensions["pool"].close()


def test_one_bad_event_in_a_batch_fails_alone(papi, db, service_urls):
    # given three pending events that will be claimed in one batch, the middle one broken
    invoice, pi = factories.attached_invoice(papi, 2300)
    other, other_pi = factories.attached_invoice(papi, 2400)
    broken = stripe_event(pi, "payment_intent.succeeded")
    broken["data"]["object"]["currency"] = "not-a-currency"
    events = [
        stripe_event(pi, "payment_intent.succeeded"),
        broken,
        stripe_event(other_pi, "payment_intent.succeeded"),
    ]
    with psycopg.connect(
        service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row
    ) as conn:
        for event in events:
            body, headers = signed_webhook(event, WEBHOOK_SECRET)
            record_webhook(
                conn,
                body,
                headers["Stripe-Signature"],
                secrets=WebhookSecrets(test=(WEBHOOK_SECRET,)),
                tolerance=300,
                max_bytes=1 << 20,
                now=int(time.time()),
            )
        # when one batch processes them
        result = process_inbound_batch(conn, now=int(time.time()), limit=10_000)
    # then the broken one failed (to be retried later), and the others were credited
    assert result.retrying >= 1 and result.processed >= 2
    assert inbound_status(db, events[0]["id"]) == "processed"
    assert inbound_status(db, broken["id"]) == "pending"
    assert inbound_status(db, events[2]["id"]) == "processed"
    assert invoice_row(db, invoice["id"])["status"] == "paid"
    assert invoice_row(db, other["id"])["status"] == "paid"
    assert credit_counts(db, invoice["id"]) == (1, 1)


def test_sweeper_refetches_a_payment_intent_whose_webhook_never_came(papi, db, service_urls):
    # given an attached PaymentIntent, open for longer than the refetch delay, and an
    # upstream Stripe that says it succeeded; and, opened before it, more open
    # PaymentIntents than one sweep takes that upstream does not know
    unknown = [factories.attached_invoice(papi, 100)[1]["id"] for _ in range(REFETCH_BATCH + 1)]
    db.execute(
        "UPDATE invoice_payments SET created = created - 10 WHERE payment_intent = ANY(%s)",
        (unknown,),
    )
    invoice, pi = factories.attached_invoice(papi, 2500)
    upstream_pi = {**pi, "object": "payment_intent", "status": "succeeded", "amount_received": 2500}

    class FakeStripe(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(upstream_pi).encode()
            ok = self.path == f"/v1/payment_intents/{pi['id']}" and "Authorization" in self.headers
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeStripe)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    stale = db.execute(
        "SELECT count(*) AS n FROM invoice_payments WHERE status = 'open'"
        " AND payment_intent IS NOT NULL"
    ).fetchone()["n"]
    try:
        with psycopg.connect(
            service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row
        ) as conn:
            # when the sweeper's re-fetch runs as often as it takes to ask about every
            # open PaymentIntent once (the ones upstream fails on go to the back)
            upstream = Upstream(
                "sk_test_upstream", f"http://127.0.0.1:{httpd.server_port}", timeout=5
            )
            for _ in range(stale // REFETCH_BATCH + 1):
                refetch_open_payments(conn, upstream, refetch_after=0, now=int(time.time()) + 1)
                if invoice_row(db, invoice["id"])["status"] == "paid":
                    break
    finally:
        httpd.shutdown()
    # then the invoice is credited as if the webhook had come
    assert invoice_row(db, invoice["id"])["status"] == "paid"
    assert credit_counts(db, invoice["id"]) == (1, 1)
