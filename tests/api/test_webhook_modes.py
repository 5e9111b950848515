"""Inbound signing secrets belong to a mode: an event is accepted only when a secret of
its own mode (`livemode`) verifies it. Whoever holds the test-mode secret (laptops, CI,
`stripe listen`) must not be able to sign a live-mode payment_intent.succeeded."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import time

import psycopg
import pytest
from psycopg.rows import dict_row

from devtools.stripe_events import signed_webhook, stripe_event
from service.app import create_app
from service.config import EITHER_MODE_SECRETS_WARNING, ConfigError, Settings
from service.domain.signatures import WebhookSecrets
from service.operations.process_inbound import process_inbound_batch
from tests import factories
from tests.conftest import LIVE_WEBHOOK_SECRET, ROOT, TEST_KEY, WEBHOOK_SECRET

LEGACY_SECRET = "whsec_tally_suite_either_mode_secret"


def signature_of(body, secret):
    return signed_webhook(body, secret)[1]["Stripe-Signature"]


def signed_event(pi, *, livemode, secret, **over):
    event = stripe_event({**pi, "livemode": livemode}, "payment_intent.succeeded", **over)
    body, headers = signed_webhook(event, secret)
    return event, body, headers["Stripe-Signature"]


def post(app, body, signature):
    return app.test_client().post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )


def stored(db, event_id=None):
    if event_id is None:
        return db.execute("SELECT count(*) AS n FROM inbound_events").fetchone()["n"]
    return db.execute("SELECT livemode FROM inbound_events WHERE id = %s", (event_id,)).fetchall()


def drain(dsn):
    """Process every stored event as the worker does."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        while process_inbound_batch(conn, now=int(time.time())).claimed:
            pass


def test_live_event_signed_with_the_test_secret_is_refused_and_credits_nothing(
    app, db, live_api, service_urls
):
    # given a live-mode invoice waiting on a live PaymentIntent
    invoice, pi = factories.attached_invoice(live_api, 2500)
    before = stored(db)

    # when a live payment_intent.succeeded for it arrives signed with the test-mode secret
    event, body, forged = signed_event(pi, livemode=True, secret=WEBHOOK_SECRET)
    response = post(app, body, forged)

    # then it is refused and nothing is stored, so nothing can credit the invoice
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "signature_invalid"
    assert "live-mode" in response.json["error"]["message"]
    assert stored(db) == before
    drain(service_urls["DATABASE_URL"])
    refused = live_api.get(f"/v1/invoices/{invoice['id']}").json
    assert (refused["status"], refused["amount_paid"]) == ("open", 0)

    # and the same event signed with the live-mode secret is accepted and credits it
    genuine = post(app, body, signature_of(body, LIVE_WEBHOOK_SECRET))
    assert genuine.status_code == 200, genuine.json
    assert stored(db, event["id"]) == [{"livemode": True}]
    drain(service_urls["DATABASE_URL"])
    paid = live_api.get(f"/v1/invoices/{invoice['id']}").json
    assert (paid["status"], paid["amount_paid"]) == ("paid", 2500)


def test_test_event_signed_with_the_live_secret_is_refused(app, db, api):
    _, pi = factories.attached_invoice(api, 700)
    before = stored(db)
    event, body, signature = signed_event(pi, livemode=False, secret=LIVE_WEBHOOK_SECRET)
    response = post(app, body, signature)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "signature_invalid"
    assert stored(db) == before
    own = post(app, body, signature_of(body, WEBHOOK_SECRET))
    assert own.status_code == 200, own.json
    assert stored(db, event["id"]) == [{"livemode": False}]


def test_rotation_any_secret_of_the_events_mode_verifies(settings, db, api):
    rotating = dataclasses.replace(
        settings,
        webhook_secrets=WebhookSecrets(
            test=("whsec_test_old", "whsec_test_new"), live=("whsec_live_old", "whsec_live_new")
        ),
    )
    app = create_app(rotating)
    try:
        pi = {"id": "pi_rotation", "amount": 1, "currency": "usd"}
        for livemode, secret in [(False, "whsec_test_old"), (False, "whsec_test_new"),
                                 (True, "whsec_live_old"), (True, "whsec_live_new")]:  # fmt: skip
            event, body, signature = signed_event(pi, livemode=livemode, secret=secret)
            assert post(app, body, signature).status_code == 200
            assert stored(db, event["id"]) == [{"livemode": livemode}]
        for livemode, secret in [(True, "whsec_test_new"), (False, "whsec_live_old")]:
            event, body, signature = signed_event(pi, livemode=livemode, secret=secret)
            assert post(app, body, signature).status_code == 400
            assert stored(db, event["id"]) == []
    finally:
        app.extensions["pool"].close()


@pytest.mark.parametrize("livemode", ["missing", None, "true", 1, 0, "false", [True]])
def test_livemode_that_is_not_a_boolean_is_refused(app, db, livemode):
    pi = {"id": "pi_no_mode", "amount": 1, "currency": "usd"}
    event, _, _ = signed_event(pi, livemode=False, secret=WEBHOOK_SECRET)
    if livemode == "missing":
        del event["livemode"]
    else:
        event["livemode"] = livemode
    body = json.dumps(event).encode()
    before = stored(db)
    for secret in (WEBHOOK_SECRET, LIVE_WEBHOOK_SECRET):
        response = post(app, body, signature_of(body, secret))
        assert response.status_code == 400, response.json
        assert response.json["error"]["param"] == "livemode"
    assert stored(db) == before


def test_a_mode_without_its_own_secret_refuses_its_events(settings, db):
    test_only = dataclasses.replace(
        settings, webhook_secrets=WebhookSecrets(test=(WEBHOOK_SECRET,))
    )
    app = create_app(test_only)
    try:
        before = stored(db)
        pi = {"id": "pi_test_only", "amount": 1, "currency": "usd"}
        _, body, signature = signed_event(pi, livemode=True, secret=WEBHOOK_SECRET)
        response = post(app, body, signature)
        assert response.status_code == 400, response.json
        assert response.json["error"]["code"] == "webhook_secret_missing"
        assert "STRIPE_WEBHOOK_SECRETS_LIVE" in response.json["error"]["message"]
        assert stored(db) == before
    finally:
        app.extensions["pool"].close()


def test_the_older_setting_verifies_both_modes(settings, db):
    legacy = dataclasses.replace(
        settings, webhook_secrets=WebhookSecrets(either_mode=(LEGACY_SECRET,))
    )
    app = create_app(legacy)
    try:
        pi = {"id": "pi_legacy", "amount": 1, "currency": "usd"}
        for livemode in (False, True):
            event, body, signature = signed_event(pi, livemode=livemode, secret=LEGACY_SECRET)
            assert post(app, body, signature).status_code == 200
            assert stored(db, event["id"]) == [{"livemode": livemode}]
    finally:
        app.extensions["pool"].close()


# -- settings ----------------------------------------------------------------------------------


def test_settings_read_each_modes_secrets():
    settings = Settings.from_env({
        "TALLY_API_KEYS": TEST_KEY,
        "STRIPE_WEBHOOK_SECRETS_TEST": "whsec_t1, whsec_t2",
        "STRIPE_WEBHOOK_SECRETS_LIVE": "whsec_l1",
    })  # fmt: skip
    assert settings.webhook_secrets == WebhookSecrets(
        test=("whsec_t1", "whsec_t2"), live=("whsec_l1",)
    )


def test_one_secret_in_both_modes_refuses_to_start():
    with pytest.raises(ConfigError, match="both"):
        Settings.from_env({
            "TALLY_API_KEYS": TEST_KEY,
            "STRIPE_WEBHOOK_SECRETS_TEST": "whsec_t1,whsec_same",
            "STRIPE_WEBHOOK_SECRETS_LIVE": "whsec_same",
        })  # fmt: skip


def test_the_older_setting_warns_that_it_cannot_bind_a_mode(caplog):
    with caplog.at_level(logging.WARNING, logger="service.config"):
        Settings.from_env({"TALLY_API_KEYS": TEST_KEY, "STRIPE_WEBHOOK_SECRETS_TEST": "whsec_t"})
    assert caplog.records == []
    with caplog.at_level(logging.WARNING, logger="service.config"):
        settings = Settings.from_env(
            {"TALLY_API_KEYS": TEST_KEY, "STRIPE_WEBHOOK_SECRETS": LEGACY_SECRET}
        )
    assert settings.webhook_secrets == WebhookSecrets(either_mode=(LEGACY_SECRET,))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message == EITHER_MODE_SECRETS_WARNING
    assert "STRIPE_WEBHOOK_SECRETS_TEST" in message and "STRIPE_WEBHOOK_SECRETS_LIVE" in message
    assert LEGACY_SECRET not in message


def test_the_web_process_warns_once_at_start_not_per_request(monkeypatch, caplog, service_urls):
    # given the environment of a deployment still on the older setting
    for name, value in {**service_urls, "TALLY_API_KEYS": TEST_KEY,
                        "STRIPE_WEBHOOK_SECRETS": LEGACY_SECRET}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRETS_TEST", raising=False)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRETS_LIVE", raising=False)
    with caplog.at_level(logging.WARNING):
        # when the web process builds its app and serves webhooks
        app = create_app()
        try:
            pi = {"id": "pi_legacy_process", "amount": 1, "currency": "usd"}
            for livemode in (False, True, False):
                _, body, signature = signed_event(pi, livemode=livemode, secret=LEGACY_SECRET)
                assert post(app, body, signature).status_code == 200
        finally:
            app.extensions["pool"].close()
    # then it warned once, at start
    warnings = [r for r in caplog.records if r.getMessage() == EITHER_MODE_SECRETS_WARNING]
    assert len(warnings) == 1


def test_a_celery_process_warns_once_when_it_builds_its_app(service_urls):
    # `celery -A workers …` (worker, deliveries, beat) builds its app from the environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "STRIPE_"))}
    env.update(service_urls, TALLY_API_KEYS=TEST_KEY, STRIPE_WEBHOOK_SECRETS=LEGACY_SECRET)
    started = subprocess.run(
        [sys.executable, "-c", "import workers; workers.app; workers.app"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert started.stderr.count(EITHER_MODE_SECRETS_WARNING) == 1
    assert LEGACY_SECRET not in started.stderr


# -- the dev command and `tally trigger` -------------------------------------------------------


def test_trigger_signs_with_the_secret_of_the_events_mode(monkeypatch, capsys, server, db):
    from service import trigger

    for name in list(os.environ):
        if name.startswith(("STRIPE_", "TALLY_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS_TEST", WEBHOOK_SECRET)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS_LIVE", LIVE_WEBHOOK_SECRET)
    monkeypatch.setattr(trigger, "read_dev_env", dict)  # not this checkout's bin/dev settings
    by_hand = ["--url", server, "--amount", "100", "--currency", "usd"]
    for livemode, flags in [(False, []), (True, ["--livemode"])]:
        status = trigger.main(["payment_intent.succeeded", "pi_triggered", *by_hand, *flags])
        out = capsys.readouterr().out
        assert status == 0, out
        event_id = out.split()[0]
        assert stored(db, event_id) == [{"livemode": livemode}]


def test_dev_keeps_an_older_dev_env_secret_as_the_test_mode_one(monkeypatch, tmp_path):
    from devtools.dev import _dev_secrets, read_dev_env

    for name in ("TALLY_API_KEYS", "STRIPE_WEBHOOK_SECRETS", "STRIPE_WEBHOOK_SECRETS_TEST"):
        monkeypatch.delenv(name, raising=False)
    older = tmp_path / "dev.env"
    older.write_text("TALLY_API_KEYS=sk_test_dev_1\nSTRIPE_WEBHOOK_SECRETS=whsec_dev_older\n")
    expected = {"TALLY_API_KEYS": "sk_test_dev_1", "STRIPE_WEBHOOK_SECRETS_TEST": "whsec_dev_older"}
    assert _dev_secrets(older) == expected
    assert read_dev_env(older) == expected  # so the dev processes do not warn
    fresh = _dev_secrets(tmp_path / "fresh.env")
    assert fresh["STRIPE_WEBHOOK_SECRETS_TEST"].startswith("whsec_dev_")
