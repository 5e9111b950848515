"""Bounded history: what is past its retention goes, a bounded batch at a time, with
nothing of the ledger and nothing still in flight; `tally prune` shows and does it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from service.config import Retention
from service.operations.prune import expire_idempotency_keys, prunable, prune_events
from service.operations.publish_events import publish_events
from service.store import inbound_events
from tests import factories
from tests.conftest import ApiClient
from tests.pipeline_support import RedisServer
from tests.tally_command import run_tally

DAY = 86_400


# Pruning works on a whole database: each test has one of its own (own_database), so
# what it prunes is exactly what it made.
@pytest.fixture
def conn(own_db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    return own_db


@pytest.fixture
def api(own_api: ApiClient) -> ApiClient:
    return own_api


@pytest.fixture(scope="module")
def stream() -> Iterator[Any]:
    server = RedisServer()
    server.start()
    import redis

    client = redis.Redis.from_url(server.url)
    yield client
    client.close()
    server.stop()


def _events_of(conn: psycopg.Connection[Any], invoice_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM events WHERE data->'object'->>'id' = %s", (invoice_id,)
    ).fetchall()
    return [r["id"] for r in rows]


def _age(conn: psycopg.Connection[Any], event_ids: list[str], days: float) -> None:
    conn.execute(
        "UPDATE events SET created = %s WHERE id = ANY(%s)",
        (int(time.time() - days * DAY), event_ids),
    )


def _delivered(conn: psycopg.Connection[Any], event_ids: list[str]) -> None:
    """Give each event a delivery that succeeded, with one attempt."""
    endpoint = conn.execute(
        # Deleted: no later event of the suite gets a delivery to it.
        "INSERT INTO webhook_endpoints (id, livemode, url, enabled_events, secret, created,"
        " deleted) VALUES (%s, false, 'https://example.com/h', '{*}', 'whsec_x', 0, true)"
        " RETURNING id",
        (f"we_prune{uuid.uuid4().hex[:12]}",),
    ).fetchone()["id"]
    for event_id in event_ids:
        conn.execute(
            "WITH d AS (INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts)"
            " VALUES (%s, %s, 'succeeded', 1) RETURNING id)"
            " INSERT INTO webhook_delivery_attempts (delivery_id, status_code, latency_ms)"
            " SELECT id, 200, 5 FROM d",
            (event_id, endpoint),
        )


def _exists(conn: psycopg.Connection[Any], table: str, column: str, ids: list[str]) -> int:
    row = conn.execute(
        f"SELECT count(*) AS n FROM {table} WHERE {column} = ANY(%s)",  # noqa: S608
        (ids,),
    ).fetchone()
    return int(row["n"])


def test_events_past_retention_go_with_their_deliveries_and_the_ledger_stays(api, conn, stream):
    # given an invoice's events published, delivered and 31 days old, and a newer invoice
    old = factories.open_invoice(api, 1100)
    new = factories.open_invoice(api, 1200)
    publish_events(conn, stream)
    old_events, new_events = _events_of(conn, old["id"]), _events_of(conn, new["id"])
    assert old_events and new_events
    _age(conn, old_events, 31)
    _delivered(conn, old_events + new_events)

    # when history is pruned with the default (30-day) retention
    report = prune_events(conn, Retention(), now=time.time())

    # then the old events, their deliveries, attempts and positions are gone
    assert report.events == len(old_events)
    assert _exists(conn, "events", "id", old_events) == 0
    assert _exists(conn, "webhook_deliveries", "event_id", old_events) == 0
    assert _exists(conn, "event_positions", "event_id", old_events) == 0
    # and the newer ones, and every ledger object, are kept
    assert _exists(conn, "events", "id", new_events) == len(new_events)
    assert _exists(conn, "webhook_deliveries", "event_id", new_events) == len(new_events)
    assert api.get(f"/v1/invoices/{old['id']}").status_code == 200
    assert api.get(f"/v1/events/{old_events[0]}").status_code == 404


def test_events_still_in_flight_are_kept_whatever_their_age(api, conn):
    # given old events not yet published (still in the outbox)
    unpublished = _events_of(conn, factories.open_invoice(api, 1300)["id"])
    _age(conn, unpublished, 40)

    prune_events(conn, Retention(), now=time.time())

    assert _exists(conn, "events", "id", unpublished) == len(unpublished)
    conn.execute("DELETE FROM event_outbox WHERE event_id = ANY(%s)", (unpublished,))

    # and old published events whose delivery is still pending
    conn.execute(
        "INSERT INTO webhook_endpoints (id, livemode, url, enabled_events, secret, created,"
        " deleted) VALUES ('we_pruneinflight', false, 'https://example.com/h', '{*}',"
        " 'whsec_x', 0, true) ON CONFLICT DO NOTHING"
    )
    conn.execute(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id) VALUES (%s, 'we_pruneinflight')",
        (unpublished[0],),
    )
    prune_events(conn, Retention(), now=time.time())
    assert _exists(conn, "events", "id", unpublished[:1]) == 1
    assert _exists(conn, "events", "id", unpublished[1:]) == 0


def _inbound(conn: psycopg.Connection[Any], status: str, settled_days_ago: float | None) -> str:
    event_id = f"evt_prune{uuid.uuid4().hex}"
    inbound_events.insert_if_new(
        conn, event_id=event_id, event_type="payment_intent.created", livemode=False,
        payload=json.dumps({"id": event_id, "object": "event"}),
    )  # fmt: skip
    conn.execute(
        "UPDATE inbound_events SET status = %s,"
        " processed_at = now() - make_interval(secs => %s) WHERE id = %s",
        (status, (settled_days_ago or 0) * DAY, event_id),
    )
    if settled_days_ago is None:
        conn.execute("UPDATE inbound_events SET processed_at = NULL WHERE id = %s", (event_id,))
    return event_id


def test_settled_inbound_events_past_retention_go_and_failed_or_pending_ones_stay(conn):
    old_processed = _inbound(conn, "processed", 31)
    old_ignored = _inbound(conn, "ignored", 31)
    old_failed = _inbound(conn, "failed", 31)
    pending = _inbound(conn, "pending", None)
    recent = _inbound(conn, "processed", 29)

    prune_events(conn, Retention(), now=time.time())

    assert _exists(conn, "inbound_events", "id", [old_processed, old_ignored]) == 0
    assert _exists(conn, "inbound_events", "id", [old_failed, pending, recent]) == 3


def test_a_run_deletes_at_most_its_batches_and_the_next_run_takes_the_rest(api, conn, stream):
    events = []
    for amount in (1400, 1500, 1600):
        events += _events_of(conn, factories.open_invoice(api, amount)["id"])
    publish_events(conn, stream)
    _age(conn, events, 60)
    before = prunable(conn, Retention(), now=time.time()).events
    assert before == len(events)

    report = prune_events(conn, Retention(), now=time.time(), batch=2, max_batches=1)

    assert report.events == 2
    assert report.unfinished == ["events"]
    assert prunable(conn, Retention(), now=time.time()).events == before - 2
    prune_events(conn, Retention(), now=time.time())
    assert _exists(conn, "events", "id", events) == 0


def test_tally_prune_dry_run_counts_and_changes_nothing_then_prunes(
    api, conn, stream, own_database
):
    events = _events_of(conn, factories.open_invoice(api, 1700)["id"])
    publish_events(conn, stream)
    _age(conn, events, 45)
    old_inbound = _inbound(conn, "processed", 45)

    dry = run_tally(own_database, "prune", "--dry-run", "--json")

    assert dry.returncode == 0, dry.stderr
    counts = {row["kind"]: row["rows"] for row in json.loads(dry.stdout)}
    assert counts["events"] == len(events)
    assert counts["inbound events (settled)"] == 1
    assert "dry run: nothing deleted" in dry.stderr
    assert _exists(conn, "events", "id", events) == len(events)
    assert _exists(conn, "inbound_events", "id", [old_inbound]) == 1

    done = run_tally(own_database, "prune", "--json")

    assert done.returncode == 0, done.stderr
    assert {row["kind"]: row["rows"] for row in json.loads(done.stdout)}["events"] == len(events)
    assert _exists(conn, "events", "id", events) == 0
    assert _exists(conn, "inbound_events", "id", [old_inbound]) == 0


def test_idempotency_keys_older_than_a_day_are_forgotten(conn):
    conn.execute(
        "INSERT INTO idempotency_keys (api_key_hash, key, request_hash, created_at) VALUES"
        " ('prune-test', 'old', 'h', now() - interval '25 hours'),"
        " ('prune-test', 'new', 'h', now())"
    )

    expired = expire_idempotency_keys(conn, Retention())

    keys = conn.execute(
        "SELECT key FROM idempotency_keys WHERE api_key_hash = 'prune-test'"
    ).fetchall()
    assert [k["key"] for k in keys] == ["new"]
    assert expired == 1


@pytest.mark.parametrize("args", [["--dry-run", "yes"], ["--older-than", "3d"]])
def test_tally_prune_refuses_what_it_does_not_know_and_changes_nothing(args, own_database, conn):
    before = conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"]
    result = run_tally(own_database, "prune", *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == before
