"""`tally`, the operator command: the installed console script run as a subprocess
against the test database, on objects made through the API; asserted on its output,
its exit status and what the database holds afterwards."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import redis

from devtools.stripe_events import stripe_event
from service.migrate import migrate, versions
from service.operations.deliver import deliver_batch
from service.store import inbound_events
from service.store.inbound_events import Settlement
from tests import factories
from tests.conftest import TEST_KEY, WEBHOOK_SECRET
from tests.pipeline_support import send_event
from tests.tally_command import run_tally


@pytest.fixture
def tally(service_urls: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    return lambda *args: run_tally(
        service_urls["DATABASE_URL"], *args, redis_url=service_urls["REDIS_URL"]
    )


def as_json(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def endpoints(api: Any, live_api: Any) -> Iterator[Callable[..., dict[str, Any]]]:
    """Makes webhook endpoints (on a closed loopback port) and deletes them afterwards, so
    no later test's events are delivered to them."""
    made: list[tuple[Any, str]] = []

    def make(*events: str, live: bool = False) -> dict[str, Any]:
        client = live_api if live else api
        # A live-mode endpoint must use https.
        params = {"url": f"{'https' if live else 'http'}://127.0.0.1:9/hook"}
        params.update({f"enabled_events[{i}]": e for i, e in enumerate(events)})
        response = client.post("/v1/webhook_endpoints", params)
        assert response.status_code == 200, response.json
        made.append((client, response.json["id"]))
        return response.json  # type: ignore[no-any-return]

    yield make
    for client, endpoint_id in made:
        client.delete(f"/v1/webhook_endpoints/{endpoint_id}")


def finalized_event(api: Any, db: Any) -> dict[str, Any]:
    """The invoice.finalized event of a new invoice."""
    invoice = factories.open_invoice(api, 700)
    return db.execute(  # type: ignore[no-any-return]
        """
        SELECT id, type, created FROM events
        WHERE type = 'invoice.finalized' AND data->'object'->>'id' = %s
        """,
        (invoice["id"],),
    ).fetchone()


def delivery(db: Any, event_id: str, endpoint_id: str) -> dict[str, Any]:
    return db.execute(  # type: ignore[no-any-return]
        """
        SELECT id, status, attempts, next_attempt_at <= now() AS due,
               (SELECT count(*) FROM webhook_delivery_attempts a
                WHERE a.delivery_id = d.id) AS recorded_attempts
        FROM webhook_deliveries d WHERE event_id = %s AND endpoint_id = %s
        """,
        (event_id, endpoint_id),
    ).fetchone()


def failed_inbound_event(api: Any, db: Any, server: str) -> str:
    """An inbound event stored by the real intake, then failed as a worker fails it."""
    event = stripe_event({"id": "pi_cli", "amount": 1, "currency": "usd"}, "payment_intent.created")
    assert send_event(server, event) == 200
    inbound_events.settle(db, [Settlement(event["id"], "failed", error="KeyError: 'boom'")])
    return str(event["id"])


def inbound(db: Any, event_id: str) -> dict[str, Any]:
    return db.execute(  # type: ignore[no-any-return]
        "SELECT status, attempts, next_attempt_at <= now() AS due FROM inbound_events"
        " WHERE id = %s",
        (event_id,),
    ).fetchone()


# -- help -------------------------------------------------------------------------------

SUBCOMMANDS = [
    [], ["migrate"], ["trigger"], ["inbound"], ["inbound", "list"], ["inbound", "replay"],
    ["events"], ["events", "list"], ["events", "resend"], ["deliveries"],
    ["deliveries", "list"], ["deliveries", "retry"], ["endpoints"], ["endpoints", "enable"],
    ["audit"],
]  # fmt: skip


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "tally")
def test_every_subcommand_has_help(words):
    result = run_tally("postgresql:///unused", *words, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ")
    assert result.stderr == ""


def test_time_formats_are_documented():
    text = run_tally("postgresql:///unused", "inbound", "list", "--help").stdout
    assert "ISO 8601" in text
    assert "Unix seconds" in text
    assert "30m" in text


# -- migrate ----------------------------------------------------------------------------


def test_migrate_creates_and_migrates_a_database_then_has_nothing_to_do(scratch_dsn):
    first = run_tally(scratch_dsn, "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"migrations applied: {', '.join(versions())}\n"
    again = run_tally(scratch_dsn, "migrate")
    assert (again.returncode, again.stdout) == (0, "migrations applied: none (up to date)\n")
    with psycopg.connect(scratch_dsn) as conn:
        applied = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert applied == versions()


# -- trigger ----------------------------------------------------------------------------


def test_trigger_sends_a_signed_event_that_tally_stores(tally, api, db, server):
    invoice = factories.open_invoice(api, 1300)
    pi = factories.payment_intent(api, invoice, 1300)
    result = tally(
        "trigger", "payment_intent.succeeded", pi["id"],
        "--url", server, "--secret", WEBHOOK_SECRET, "--api-key", TEST_KEY,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    event_id, event_type, pi_id, arrow, status = result.stdout.split()[:5]
    assert (event_type, pi_id, arrow, status) == ("payment_intent.succeeded", pi["id"], "->", "200")
    stored = db.execute("SELECT type FROM inbound_events WHERE id = %s", (event_id,)).fetchone()
    assert stored == {"type": "payment_intent.succeeded"}


# -- inbound ----------------------------------------------------------------------------


def test_a_failed_inbound_event_is_listed_and_replayed_by_id(tally, api, db, server, service_urls):
    # given an inbound event that failed
    event_id = failed_inbound_event(api, db, server)

    # when the operator lists failed events received in the last hour
    listed = as_json(tally("inbound", "list", "--status", "failed", "--since", "1h", "--json"))
    table = tally("inbound", "list", "--status", "failed")

    # then it is there, with its error
    mine = [row for row in listed if row["id"] == event_id]
    assert mine == [
        {
            "id": event_id,
            "type": "payment_intent.created",
            "livemode": False,
            "status": "failed",
            "outcome": None,
            "attempts": 1,
            "received_at": mine[0]["received_at"],
            "last_error": "KeyError: 'boom'",
        }
    ]
    assert datetime.fromisoformat(mine[0]["received_at"]).tzinfo is not None
    assert {row["status"] for row in listed} == {"failed"}
    header = table.stdout.split("\n")[0].split()
    assert header == [
        "ID",
        "TYPE",
        "LIVEMODE",
        "STATUS",
        "OUTCOME",
        "ATTEMPTS",
        "RECEIVED_AT",
        "LAST_ERROR",
    ]
    assert any(line.startswith(event_id) and "failed" in line for line in table.stdout.split("\n"))

    # when it is replayed by id
    queue = redis.Redis.from_url(service_urls["REDIS_URL"])
    drains_queued = queue.llen("inbound")
    replayed = tally("inbound", "replay", event_id)

    # then it is pending again, due now, with a fresh retry budget, and a drain task
    # is queued for the workers (not left for the sweeper's next pass)
    assert replayed.returncode == 0, replayed.stderr
    assert event_id in replayed.stdout
    assert replayed.stderr == "inbound events: 1 due now; the workers were woken for them\n"
    assert inbound(db, event_id) == {"status": "pending", "attempts": 0, "due": True}
    assert queue.llen("inbound") == drains_queued + 1

    # and replaying it again (no longer failed) is refused, changing nothing
    again = tally("inbound", "replay", event_id)
    assert again.returncode == 2
    assert again.stderr == (
        f"tally: {event_id} is pending, not failed (--any-status replays it anyway)\n"
    )
    assert tally("inbound", "replay", event_id, "--any-status").returncode == 0


def test_replay_by_time_range_takes_only_failed_events_received_in_it(tally, api, db, server):
    # given failed events received at 10:00, 10:30 and 11:00 one day in 1999, and a
    # processed one at 10:30
    day = datetime(1999, 3, 14, tzinfo=UTC)
    events = {}
    received = [
        ("early", 10, 0, "failed"),
        ("inside", 10, 30, "failed"),
        ("done", 10, 30, "processed"),
        ("late", 11, 0, "failed"),
    ]
    for name, hour, minute, status in received:
        events[name] = failed_inbound_event(api, db, server)
        db.execute(
            "UPDATE inbound_events SET status = %s, received_at = %s WHERE id = %s",
            (status, day.replace(hour=hour, minute=minute), events[name]),
        )

    # when failed events received from 10:15 (Unix seconds) until 10:45 (ISO) are replayed
    since = str(int(day.replace(hour=10, minute=15).timestamp()))
    result = tally(
        "inbound",
        "replay",
        "--failed",
        "--since",
        since,
        "--until",
        "1999-03-14T10:45:00Z",
        "--json",
    )

    # then only the failed one inside the range is
    assert [(r["id"], r["previous_status"]) for r in as_json(result)] == [
        (events["inside"], "failed")
    ]
    assert inbound(db, events["inside"])["status"] == "pending"
    for name in ("early", "late"):
        assert inbound(db, events[name])["status"] == "failed"
    assert inbound(db, events["done"])["status"] == "processed"


# -- events -----------------------------------------------------------------------------


def test_events_list_filters_by_type_newest_first(tally, api, db):
    event = finalized_event(api, db)
    rows = as_json(tally("events", "list", "--type", "invoice.finalized", "--limit", "3", "--json"))
    assert rows[0] == {
        "id": event["id"],
        "type": "invoice.finalized",
        "livemode": False,
        "created": datetime.fromtimestamp(event["created"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pending_webhooks": rows[0]["pending_webhooks"],
    }
    assert len(rows) <= 3
    assert {r["type"] for r in rows} == {"invoice.finalized"}


def test_resend_resets_an_endpoints_delivery_and_adds_one_for_another(tally, api, db, endpoints):
    # given an event delivered to a subscribed endpoint, which failed after one attempt,
    # and another endpoint that does not take that type
    subscribed = endpoints("invoice.finalized")
    other = endpoints("customer.created")
    event = finalized_event(api, db)
    first = delivery(db, event["id"], subscribed["id"])
    db.execute(
        "INSERT INTO webhook_delivery_attempts (delivery_id, status_code, latency_ms, error)"
        " VALUES (%s, 500, 12, 'HTTP 500')",
        (first["id"],),
    )
    db.execute(
        "UPDATE webhook_deliveries SET status = 'failed', attempts = 1,"
        " next_attempt_at = now() + interval '1 day' WHERE id = %s",
        (first["id"],),
    )

    # when the event is resent to the first endpoint
    resent = as_json(
        tally("events", "resend", event["id"], "--endpoint", subscribed["id"], "--json")
    )

    # then its delivery is pending and due now, its attempt kept, and no second row made
    assert resent == [
        {"delivery_id": first["id"], "endpoint_id": subscribed["id"], "previous_status": "failed"}
    ]
    assert delivery(db, event["id"], subscribed["id"]) == {
        "id": first["id"],
        "status": "pending",
        "attempts": 0,
        "due": True,
        "recorded_attempts": 1,
    }

    # when it is resent to the endpoint not subscribed to its type, named explicitly
    named = as_json(tally("events", "resend", event["id"], "--endpoint", other["id"], "--json"))

    # then that endpoint gets a new delivery
    made = delivery(db, event["id"], other["id"])
    assert named == [
        {"delivery_id": made["id"], "endpoint_id": other["id"], "previous_status": None}
    ]
    assert (made["status"], made["due"]) == ("pending", True)

    # when it is resent with no endpoint named: every enabled endpoint subscribed to it
    everyone = as_json(tally("events", "resend", event["id"], "--json"))
    subscribers = db.execute(
        """
        SELECT id FROM webhook_endpoints
        WHERE NOT livemode AND status = 'enabled' AND NOT deleted
          AND enabled_events && ARRAY['*', 'invoice.finalized']
        """
    ).fetchall()
    assert sorted(r["endpoint_id"] for r in everyone) == sorted(r["id"] for r in subscribers)
    assert subscribed["id"] in [r["endpoint_id"] for r in everyone]
    assert other["id"] not in [r["endpoint_id"] for r in everyone]
    count = db.execute(
        "SELECT count(*) AS n FROM webhook_deliveries WHERE event_id = %s", (event["id"],)
    ).fetchone()["n"]
    assert count == len(everyone) + 1


def test_resend_to_an_endpoint_of_the_other_mode_is_refused(tally, api, db, endpoints):
    live = endpoints("*", live=True)
    event = finalized_event(api, db)
    result = tally("events", "resend", event["id"], "--endpoint", live["id"])
    assert result.returncode == 2
    assert result.stderr == (
        f"tally: {live['id']} is a live-mode endpoint and {event['id']} a test-mode event.\n"
    )
    assert delivery(db, event["id"], live["id"]) is None


# -- deliveries and endpoints -----------------------------------------------------------


def test_an_endpoint_disabled_after_its_schedule_is_listed_enabled_and_retried(
    tally, api, db, endpoints, settings
):
    # given an endpoint that refused every attempt of a delivery until it was disabled
    endpoint = endpoints("invoice.finalized")
    event = finalized_event(api, db)
    pending = delivery(db, event["id"], endpoint["id"])
    for _ in range(2):
        db.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = %s", (pending["id"],)
        )
        deliver_batch(db, [(pending["id"], None)], timeout=2, schedule=(1,), allow_private=True)
    assert delivery(db, event["id"], endpoint["id"])["status"] == "failed"
    assert api.get(f"/v1/webhook_endpoints/{endpoint['id']}").json["status"] == "disabled"

    # when the operator lists its deliveries
    attempts = as_json(tally("deliveries", "list", "--endpoint", endpoint["id"], "--json"))
    table = tally("deliveries", "list", "--endpoint", endpoint["id"], "--failed")

    # then both attempts are there: when, how long, what went wrong
    assert len(attempts) == 2
    for attempt in attempts:
        assert attempt["delivery"] == pending["id"]
        assert (attempt["event_id"], attempt["type"]) == (event["id"], "invoice.finalized")
        assert (attempt["status"], attempt["status_code"]) == ("failed", None)
        assert "ConnectionRefusedError" in attempt["error"]
        assert attempt["latency_ms"] >= 0
        assert datetime.fromisoformat(attempt["attempted_at"])
    assert attempts[0]["attempted_at"] >= attempts[1]["attempted_at"]
    assert table.returncode == 0
    assert table.stdout.count("ConnectionRefusedError") == 2

    # and retrying is refused while the endpoint is disabled
    since = str(event["created"] - 1)
    refused = tally("deliveries", "retry", "--endpoint", endpoint["id"], "--since", since)
    assert refused.returncode == 2
    assert refused.stderr == f"tally: {endpoint['id']} is disabled: enable it first.\n"
    assert delivery(db, event["id"], endpoint["id"])["status"] == "failed"

    # when the endpoint is enabled
    enabled = as_json(tally("endpoints", "enable", endpoint["id"], "--json"))
    assert [(e["id"], e["status"], e["previous_status"]) for e in enabled] == [
        (endpoint["id"], "enabled", "disabled")
    ]
    assert api.get(f"/v1/webhook_endpoints/{endpoint['id']}").json["status"] == "enabled"

    # and its failed deliveries of events since then retried
    retried = as_json(
        tally("deliveries", "retry", "--endpoint", endpoint["id"], "--since", since, "--json")
    )

    # then the delivery is pending and due now with a fresh schedule, its attempts kept
    assert [(r["id"], r["event_id"]) for r in retried] == [(pending["id"], event["id"])]
    assert delivery(db, event["id"], endpoint["id"]) == {
        "id": pending["id"],
        "status": "pending",
        "attempts": 0,
        "due": True,
        "recorded_attempts": 2,
    }

    # and enabling it again changes nothing
    again = as_json(tally("endpoints", "enable", endpoint["id"], "--json"))
    assert again[0]["previous_status"] == "enabled"


def test_retry_takes_only_deliveries_of_events_since_the_time(tally, api, db, endpoints):
    endpoint = endpoints("invoice.finalized")
    event = finalized_event(api, db)
    db.execute(
        "UPDATE webhook_deliveries SET status = 'failed' WHERE event_id = %s AND endpoint_id = %s",
        (event["id"], endpoint["id"]),
    )
    later = str(event["created"] + 1)
    result = tally("deliveries", "retry", "--endpoint", endpoint["id"], "--since", later)
    assert result.returncode == 0
    assert result.stderr == "no deliveries matched: nothing changed\n"
    assert delivery(db, event["id"], endpoint["id"])["status"] == "failed"


# -- audit ------------------------------------------------------------------------------


def test_audit_passes_a_clean_ledger_and_names_a_breach(scratch_dsn):
    # given a database of its own, migrated
    migrate(scratch_dsn)

    # then a clean ledger passes
    clean = run_tally(scratch_dsn, "audit")
    assert (clean.returncode, clean.stdout, clean.stderr) == (
        0,
        "CHECK  ID  DETAIL\n",
        "every ledger invariant holds\n",
    )
    assert as_json(run_tally(scratch_dsn, "audit", "--json")) == []

    # when an invoice claims a payment it has none of
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO customers (id, livemode, created) VALUES ('cus_audit', false, 0);"
            "INSERT INTO invoices (id, livemode, customer, status, currency, total, amount_paid,"
            " starting_balance, ending_balance, finalized_at, created)"
            " VALUES ('in_audit', false, 'cus_audit', 'open', 'usd', 1000, 400, 0, 0, 0, 0)"
        )

    # then the full audit fails, naming it (no event says the invoice changed, so only
    # a full audit looks at it)
    broken = run_tally(scratch_dsn, "audit", "--full")
    assert broken.returncode == 1
    assert broken.stderr == "ledger invariant breaches: 1\n"
    assert broken.stdout.split("\n")[1].split(maxsplit=2) == [
        "amount_paid_matches_payments",
        "in_audit",
        "amount_paid=400, paid payments sum to 0",
    ]
    as_list = run_tally(scratch_dsn, "audit", "--full", "--json")
    assert as_list.returncode == 1
    assert json.loads(as_list.stdout) == [
        {
            "check": "amount_paid_matches_payments",
            "id": "in_audit",
            "detail": "amount_paid=400, paid payments sum to 0",
        }
    ]


# -- bad input --------------------------------------------------------------------------


@pytest.fixture
def known(api: Any, db: Any, server: str, endpoints: Any) -> dict[str, str]:
    """Real ids for the bad-input cases to combine with unknown ones."""
    return {
        "EVT": finalized_event(api, db)["id"],
        "WE": endpoints("*")["id"],
        "FAILED": failed_inbound_event(api, db, server),
    }


BAD_INPUT = [
    ("bogus",),
    ("inbound",),
    ("inbound", "list", "--since", "yesterday"),
    ("inbound", "list", "--since", "2026-02-30T10:00:00Z"),
    ("inbound", "list", "--status", "lost"),
    ("inbound", "list", "--limit", "0"),
    ("inbound", "replay"),
    ("inbound", "replay", "evt_unknown"),
    ("inbound", "replay", "FAILED", "evt_unknown"),
    ("inbound", "replay", "FAILED", "--since", "1h"),
    ("inbound", "replay", "--failed", "--any-status", "--since", "1h"),
    ("inbound", "replay", "--failed", "--since", "soon"),
    ("inbound", "replay", "--failed"),
    ("events", "list", "--limit", "many"),
    ("events", "resend"),
    ("events", "resend", "evt_unknown"),
    ("events", "resend", "EVT", "--endpoint", "we_unknown"),
    ("deliveries", "list"),
    ("deliveries", "list", "--endpoint", "we_unknown"),
    ("deliveries", "retry", "--endpoint", "WE"),
    ("deliveries", "retry", "--endpoint", "WE", "--since", "1 hour ago"),
    ("deliveries", "retry", "--endpoint", "we_unknown", "--since", "1h"),
    ("endpoints", "enable", "we_unknown"),
    ("endpoints", "enable"),
    ("audit", "--all"),
    ("audit", "--full", "--since", "1h"),
    ("audit", "--since", "last week"),
]


def snapshot(db: Any) -> dict[str, Any]:
    """Everything the commands could change."""
    return db.execute(  # type: ignore[no-any-return]
        """
        SELECT
          (SELECT md5(coalesce(string_agg(concat_ws(',', id, status, attempts, next_attempt_at),
                                          ';' ORDER BY seq), '')) FROM inbound_events) AS inbound,
          (SELECT md5(coalesce(string_agg(concat_ws(',', id, status, attempts, next_attempt_at),
                                          ';' ORDER BY id), '')) FROM webhook_deliveries)
            AS deliveries,
          (SELECT md5(coalesce(string_agg(concat_ws(',', id, status), ';' ORDER BY seq), ''))
           FROM webhook_endpoints) AS endpoints
        """
    ).fetchone()


@pytest.mark.parametrize("argv", BAD_INPUT, ids=" ".join)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(tally, db, known, argv):
    before = snapshot(db)
    result = tally(*(known.get(word, word) for word in argv))
    assert result.returncode == 2, result
    assert result.stderr.startswith("tally: ")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""
    assert snapshot(db) == before


def test_without_a_database_the_error_is_one_line():
    result = run_tally("postgresql://nobody@127.0.0.1:1/none", "events", "list")
    assert result.returncode == 1
    assert result.stderr.startswith("tally: PostgreSQL: ")
    assert result.stderr.count("\n") == 1
