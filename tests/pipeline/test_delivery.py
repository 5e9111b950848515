"""Webhook endpoints (/v1/webhook_endpoints) and outgoing delivery: signed POSTs a
stripe SDK receiver accepts, retried on the schedule, every attempt recorded;
and the Redis stream. Deliveries run through a real celery worker process."""

# Fixtures come from tests.pipeline_support by import, which ruff reads as redefinitions.

from __future__ import annotations

import dataclasses
import http.server
import json
import socket
import threading
import time
from itertools import pairwise

import psycopg
import pytest
import redis
import stripe
from psycopg.rows import dict_row

from devtools.localenv import free_port
from service import queue
from service.adapters.http import KeptAlive, Poster
from service.adapters.stream import STREAM_KEY
from service.app import create_app
from service.operations.deliver import POSTS_AT_ONCE, deliver_batch, deliver_leased
from service.operations.publish_events import (
    DELIVERY_BATCH,
    dispatch_due_deliveries,
    publish_committed,
    publish_events,
)
from service.redis_client import connect_redis
from service.store import deliveries, outbox
from service.wakeups import PUBLISH_AGAIN
from tests import factories
from tests.conftest import TEST_KEY, ApiClient
from tests.pipeline_support import Receiver, wait_for

# -- the endpoints API ------------------------------------------------------------------


def test_create_returns_secret_once(api):
    created = api.post(
        "/v1/webhook_endpoints",
        {
            "url": "https://example.com/hook",
            "enabled_events[]": "invoice.paid",
            "description": "books",
            "metadata[team]": "finance",
        },
    )
    assert created.status_code == 200, created.json
    body = created.json
    assert body["object"] == "webhook_endpoint"
    assert body["id"].startswith("we_")
    assert body["secret"].startswith("whsec_")
    assert body["enabled_events"] == ["invoice.paid"]
    assert body["status"] == "enabled"
    assert body["url"] == "https://example.com/hook"
    assert body["metadata"] == {"team": "finance"}
    assert body["livemode"] is False
    fetched = api.get(f"/v1/webhook_endpoints/{body['id']}").json
    assert "secret" not in fetched
    assert fetched == {k: v for k, v in body.items() if k != "secret"}
    listed = api.get("/v1/webhook_endpoints", {"limit": 100}).json
    assert any(e["id"] == body["id"] and "secret" not in e for e in listed["data"])
    api.delete(f"/v1/webhook_endpoints/{body['id']}")


def test_delete_then_gone(api):
    created = api.post(
        "/v1/webhook_endpoints", {"url": "https://example.com/x", "enabled_events[0]": "*"}
    ).json
    deleted = api.delete(f"/v1/webhook_endpoints/{created['id']}")
    assert deleted.status_code == 200
    assert deleted.json == {"id": created["id"], "object": "webhook_endpoint", "deleted": True}
    assert api.get(f"/v1/webhook_endpoints/{created['id']}").status_code == 404
    assert api.delete(f"/v1/webhook_endpoints/{created['id']}").status_code == 404
    listed = api.get("/v1/webhook_endpoints", {"limit": 100}).json["data"]
    assert created["id"] not in [e["id"] for e in listed]


def test_update_events_and_disable(api):
    created = api.post(
        "/v1/webhook_endpoints", {"url": "https://example.com/u", "enabled_events[]": "*"}
    ).json
    updated = api.post(
        f"/v1/webhook_endpoints/{created['id']}",
        {
            "enabled_events[0]": "invoice.paid",
            "enabled_events[1]": "invoice.voided",
            "disabled": "true",
        },
    )
    assert updated.status_code == 200, updated.json
    assert updated.json["enabled_events"] == ["invoice.paid", "invoice.voided"]
    assert updated.json["status"] == "disabled"
    again = api.post(f"/v1/webhook_endpoints/{created['id']}", {"disabled": "false"}).json
    assert again["status"] == "enabled"
    api.delete(f"/v1/webhook_endpoints/{created['id']}")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"enabled_events[]": "*"}, "url"),
        ({"url": "https://example.com/h"}, "enabled_events"),
        ({"url": "ftp://example.com/h", "enabled_events[]": "*"}, "url"),
        ({"url": "not a url", "enabled_events[]": "*"}, "url"),
        ({"url": "https://user:pw@example.com/h", "enabled_events[]": "*"}, "url"),
        ({"url": "https://example.com/h", "enabled_events[]": "Not An Event"}, "enabled_events"),
        ({"url": "https://example.com/h", "enabled_events[]": "*", "colour": "red"}, "colour"),
    ],
)
def test_invalid_create_is_refused(api, db, params, param):
    before = db.execute("SELECT count(*) AS n FROM webhook_endpoints").fetchone()["n"]
    response = api.post("/v1/webhook_endpoints", params)
    assert response.status_code == 400
    assert response.json["error"]["param"] == param
    assert db.execute("SELECT count(*) AS n FROM webhook_endpoints").fetchone()["n"] == before


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_urls_are_refused_unless_allowed(settings, url):
    strict = create_app(dataclasses.replace(settings, allow_private_webhook_urls=False))
    try:
        response = ApiClient(strict).post(
            "/v1/webhook_endpoints", {"url": url, "enabled_events[]": "*"}
        )
        assert response.status_code == 400
        assert response.json["error"]["param"] == "url"
    finally:
        strict.extensions["pool"].close()


def test_modes_are_separate(api, live_api):
    created = live_api.post(
        "/v1/webhook_endpoints", {"url": "https://example.com/l", "enabled_events[]": "*"}
    ).json
    assert created["livemode"] is True
    assert api.get(f"/v1/webhook_endpoints/{created['id']}").status_code == 404
    live_api.delete(f"/v1/webhook_endpoints/{created['id']}")


def test_stripe_sdk_manages_endpoints(server):
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": server}, max_network_retries=0)
    endpoint = client.v1.webhook_endpoints.create(
        params={
            "url": "https://example.com/sdk",
            "enabled_events": ["invoice.paid", "invoice.updated"],
        }
    )
    assert isinstance(endpoint, stripe.WebhookEndpoint)
    assert endpoint.secret.startswith("whsec_")
    assert client.v1.webhook_endpoints.retrieve(endpoint.id).url == "https://example.com/sdk"
    assert endpoint.id in [e.id for e in client.v1.webhook_endpoints.list(params={"limit": 100})]
    deleted = client.v1.webhook_endpoints.delete(endpoint.id)
    assert deleted.deleted is True


# -- delivery, by the operations directly (no worker) ---------------------------------------


@pytest.fixture
def conn(service_urls):
    with psycopg.connect(service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row) as c:
        yield c


def _endpoint_with_event(api, url):
    endpoint = api.post("/v1/webhook_endpoints", {"url": url, "enabled_events[]": "*"}).json
    factories.open_invoice(api, 700)  # writes invoice.finalized (among others)
    return endpoint


def _deliveries_of(db, endpoint_id):
    return db.execute(
        "SELECT id, event_id, status, attempts FROM webhook_deliveries"
        " WHERE endpoint_id = %s ORDER BY id",
        (endpoint_id,),
    ).fetchall()


def _finalized_event_id(db, invoice):
    [event_id] = [
        r["id"]
        for r in db.execute(
            "SELECT id FROM events WHERE type = 'invoice.finalized' AND data->'object'->>'id' = %s",
            (invoice["id"],),
        ).fetchall()
    ]
    return event_id


def test_lease_token_lets_one_send_through(api, db, conn):
    rec = Receiver()
    try:
        endpoint = _endpoint_with_event(api, rec.url)
        rec.secret = endpoint["secret"]
        [first, *_] = _deliveries_of(db, endpoint["id"])
        # given a delivery leased once
        leases = {}
        dispatch_due_deliveries(conn, leases.update)
        lease = leases[first["id"]]
        # when two tasks carry the same lease
        args = {"timeout": 5, "schedule": (1, 1, 2), "allow_private": True}
        outcomes = [deliver_batch(conn, [(first["id"], lease)], **args) for _ in range(2)]
        # then one POST happened, and a stale lease changes nothing
        assert [o[first["id"]] for o in outcomes] == ["succeeded", "skipped"]
        stale = deliver_batch(conn, [(first["id"], lease + 1)], **args)
        assert stale == {first["id"]: "skipped"}
        assert len(rec.event_ids()) == 1
        row = db.execute(
            "SELECT status, attempts, delivered_at FROM webhook_deliveries WHERE id = %s",
            (first["id"],),
        ).fetchone()
        assert row["status"] == "succeeded" and row["attempts"] == 1 and row["delivered_at"]
        [attempt] = db.execute(
            "SELECT status_code, latency_ms, error FROM webhook_delivery_attempts"
            " WHERE delivery_id = %s",
            (first["id"],),
        ).fetchall()
        assert attempt["status_code"] == 200 and attempt["error"] is None
    finally:
        api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
        rec.close()


def _deliver_all(conn, deliveries_, **over):
    args = {"timeout": 5, "schedule": (1,), "allow_private": True, **over}
    return deliver_batch(conn, [(d["id"], None) for d in deliveries_], **args)


def test_a_batch_goes_over_a_few_kept_alive_connections_the_next_batch_reuses(api, db, conn):
    # given a receiver taking 50 ms per answer, and a batch of many deliveries for it
    rec = Receiver()
    rec.delay = 0.05
    endpoint = _endpoint_with_event(api, rec.url)
    kept = KeptAlive()
    try:
        rec.secret = endpoint["secret"]
        for _ in range(2):
            factories.open_invoice(api, 800)
        pending = _deliveries_of(db, endpoint["id"])
        assert len(pending) >= 3 * POSTS_AT_ONCE
        # when the batch is sent
        outcomes = _deliver_all(conn, pending, kept_alive=kept)
        # then every event arrived once, signed, over more than one connection at once
        # and no more than POSTS_AT_ONCE
        assert set(outcomes.values()) == {"succeeded"}
        assert sorted(rec.event_ids()) == sorted(d["event_id"] for d in pending)
        assert rec.rejected == []
        assert 1 < rec.connections <= POSTS_AT_ONCE
        assert {d["status"] for d in _deliveries_of(db, endpoint["id"])} == {"succeeded"}
        # and each object's events arrived in the order they were written
        seq = {
            r["id"]: r["seq"]
            for r in db.execute(
                "SELECT id, seq FROM events WHERE id = ANY(%s)", (rec.event_ids(),)
            ).fetchall()
        }
        arrived: dict[str, list[int]] = {}
        for r in rec.received:
            arrived.setdefault(r["event"]["data"]["object"]["id"], []).append(seq[r["event"]["id"]])
        assert any(len(seqs) > 1 for seqs in arrived.values())
        assert all(seqs == sorted(seqs) for seqs in arrived.values()), arrived
        # and the next batch goes over the connections the first left open
        factories.open_invoice(api, 900)
        more = [d for d in _deliveries_of(db, endpoint["id"]) if d["status"] == "pending"]
        assert len(more) >= POSTS_AT_ONCE
        assert set(_deliver_all(conn, more, kept_alive=kept).values()) == {"succeeded"}
        assert rec.connections <= POSTS_AT_ONCE
    finally:
        kept.close()
        api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
        rec.close()


def test_a_receiver_that_drops_kept_alive_connections_gets_each_event_once(api, db, conn):
    # given a receiver that closes every connection after its reply, unannounced
    rec = Receiver()
    rec.drop_idle = True
    endpoint = _endpoint_with_event(api, rec.url)
    try:
        rec.secret = endpoint["secret"]
        pending = _deliveries_of(db, endpoint["id"])
        # when the batch is sent
        outcomes = _deliver_all(conn, pending)
        # then each POST after the first went over a new connection, and none failed
        assert set(outcomes.values()) == {"succeeded"}
        assert sorted(rec.event_ids(None)) == sorted(d["event_id"] for d in pending)
        assert rec.connections == len(pending)
        attempts = db.execute(
            "SELECT count(*) AS n, count(error) AS errors FROM webhook_delivery_attempts"
            " WHERE delivery_id = ANY(%s)",
            ([d["id"] for d in pending],),
        ).fetchone()
        assert (attempts["n"], attempts["errors"]) == (len(pending), 0)
    finally:
        api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
        rec.close()


def test_a_slow_receiver_hands_the_rest_of_its_batch_back(api, db, conn):
    # given a receiver slower than the batch's budget
    rec = Receiver()
    rec.delay = 0.5
    endpoint = _endpoint_with_event(api, rec.url)
    try:
        rec.secret = endpoint["secret"]
        first, *rest = _deliveries_of(db, endpoint["id"])
        # when the batch is sent
        outcomes = _deliver_all(conn, [first, *rest], budget=0.2)
        # then one POST went out, and the rest are due again, unattempted
        assert outcomes == {first["id"]: "succeeded", **{d["id"]: "returned" for d in rest}}
        returned = db.execute(
            "SELECT status, attempts, next_attempt_at <= now() AS due,"
            " (SELECT count(*) FROM webhook_delivery_attempts a WHERE a.delivery_id = d.id) AS n"
            " FROM webhook_deliveries d WHERE id = ANY(%s)",
            ([d["id"] for d in rest],),
        ).fetchall()
        assert {(r["status"], r["attempts"], r["due"], r["n"]) for r in returned} == {
            ("pending", 0, True, 0)
        }
        # and the next batch takes them
        again = _deliver_all(conn, rest, budget=30)
        assert set(again.values()) == {"succeeded"}
        assert len(rec.event_ids()) == 1 + len(rest)
    finally:
        api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
        rec.close()


def _dripping_receiver(interval: float) -> tuple[str, threading.Event]:
    """A loopback receiver that reads one request, then answers a byte every
    `interval` seconds (a whole, valid 200 after about 70 bytes); the event is set
    once it has sent everything or the client went away."""
    listener = socket.create_server(("127.0.0.1", 0))
    finished = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        listener.close()
        with connection:
            connection.recv(65536)
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: " + b"a" * 30 + b"\r\n\r\n"
            for byte in answer:
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    break
                time.sleep(interval)
        finished.set()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/", finished


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_timeout():
    # given a receiver that answers a byte every 0.1 s: each read gets a byte well
    # within a 1 s socket timeout, and the whole answer takes about 7 s
    url, finished = _dripping_receiver(0.1)
    started = time.monotonic()

    # when a POST with a 1 s timeout is sent
    with Poster(timeout=1, allow_private=True) as poster:
        response = poster.post(url, b"{}", {"Content-Type": "application/json"})

    # then it gave up after about 1 s of wall clock, as an error attempt
    elapsed = time.monotonic() - started
    assert response.status_code is None and "Timeout" in (response.error or "")
    assert 0.9 <= elapsed < 2.5, elapsed
    assert finished.wait(10)  # the receiver saw the connection go


def test_a_receiver_that_closes_after_each_answer_gets_every_post():
    # given an HTTP/1.0 receiver (it closes the connection after each answer) with an
    # answer longer than what a delivery reads of it
    class Closing(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b"x" * 100_000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Closing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        # when three POSTs are sent through one Poster, then each got its 200
        with Poster(timeout=2, allow_private=True) as poster:
            responses = [poster.post(url, b"{}", {}) for _ in range(3)]
        assert [(r.status_code, r.error) for r in responses] == [(200, None)] * 3
    finally:
        server.shutdown()
        server.server_close()


def _keep_alive_receiver(keepalive_seconds: float):
    """An HTTP/1.1 receiver that closes a connection idle `keepalive_seconds`; returns
    its server, its URL and the list of connections it accepted."""
    accepted: list[object] = []

    class KeepAlive(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = keepalive_seconds

        def setup(self) -> None:
            super().setup()
            accepted.append(self.connection)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/", accepted


def test_batches_reuse_a_kept_alive_connection_and_survive_its_closing():
    # given a receiver that closes connections idle for 0.3 s, and one process's
    # connections kept between batches
    server, url, accepted = _keep_alive_receiver(0.3)
    kept = KeptAlive()
    try:
        # when two batches POST one after the other
        for _ in range(2):
            with Poster(timeout=2, allow_private=True, kept_alive=kept) as poster:
                assert poster.post(url, b"{}", {}).status_code == 200
        # then the second went over the first one's connection
        assert len(accepted) == 1

        # and when the receiver has closed it meanwhile, the next batch still gets its
        # 200, on a new connection
        time.sleep(0.6)
        with Poster(timeout=2, allow_private=True, kept_alive=kept) as poster:
            response = poster.post(url, b"{}", {})
        assert (response.status_code, response.error) == (200, None)
        assert len(accepted) == 2
    finally:
        kept.close()
        server.shutdown()
        server.server_close()


def test_a_batch_that_outlived_its_claim_records_nothing(api, db, conn):
    endpoint = _endpoint_with_event(api, "https://example.com/late")
    try:
        [first, *_] = _deliveries_of(db, endpoint["id"])
        # given a claim, and another task that took the delivery over after it ran out
        [claimed] = deliveries.claim(conn, [(first["id"], None)], hold_seconds=60)
        db.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() + interval '1 hour'"
            " WHERE id = %s",
            (first["id"],),
        )
        # when the first task records its outcome late
        stood = deliveries.settle_all(
            conn, [deliveries.Settled(first["id"], claim=claimed["claim"], outcome="failed")]
        )
        # then nothing changes: the holder now records
        assert stood == set()
        row = deliveries.get(db, first["id"])
        assert (row["status"], row["attempts"]) == ("pending", 0)
        [current] = db.execute(
            "SELECT (extract(epoch FROM next_attempt_at) * 1000000)::bigint AS claim"
            " FROM webhook_deliveries WHERE id = %s",
            (first["id"],),
        ).fetchall()
        settled = deliveries.Settled(first["id"], claim=current["claim"], outcome="succeeded")
        assert deliveries.settle_all(conn, [settled]) == {first["id"]}
        assert deliveries.get(db, first["id"])["status"] == "succeeded"
    finally:
        api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")


def test_dispatch_sends_one_batch_per_endpoint_and_none_while_it_is_in_flight(api, db, conn):
    # given two endpoints with three or more due deliveries each
    receivers = [Receiver(), Receiver()]
    endpoints = [_endpoint_with_event(api, rec.url) for rec in receivers]
    try:
        for rec, endpoint in zip(receivers, endpoints, strict=True):
            rec.secret = endpoint["secret"]
        ours = {d["id"]: e["id"] for e in endpoints for d in _deliveries_of(db, e["id"])}
        assert all(list(ours.values()).count(e["id"]) >= 3 for e in endpoints)

        def dispatch():
            batches = []
            dispatch_due_deliveries(conn, batches.append, batch_size=2)
            return {ours[batch[0][0]]: batch for batch in batches if batch[0][0] in ours}

        # when they are dispatched in batches of at most two
        first = dispatch()
        # then each endpoint got one batch, of its own deliveries, oldest first
        assert sorted(first) == sorted(e["id"] for e in endpoints)
        for endpoint_id, batch in first.items():
            mine = sorted(i for i, e in ours.items() if e == endpoint_id)
            assert [i for i, _ in batch] == mine[:2]
        # and while those batches are in flight, neither endpoint gets another
        assert dispatch() == {}
        a, b = (e["id"] for e in endpoints)
        rest_of_a = [i for i, e in ours.items() if e == a and i not in dict(first[a])]
        held = _deliver_all(conn, [{"id": i} for i in rest_of_a])
        assert set(held.values()) == {"skipped"}
        # and once A's batch is done, A gets its next batch, and B (still sending) none
        done = deliver_batch(conn, first[a], timeout=5, schedule=(1,), allow_private=True)
        assert set(done.values()) == {"succeeded"}
        assert [i for i, _ in dispatch()[a]] == rest_of_a[:2]
        assert b not in dispatch()
    finally:
        for endpoint, rec in zip(endpoints, receivers, strict=True):
            api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
            rec.close()


def test_a_send_task_sends_what_came_due_for_its_endpoint_meanwhile_itself(api, db, conn):
    # given an endpoint's batch leased, then more events for it while it is held, and
    # another endpoint with due deliveries
    receivers = [Receiver(), Receiver()]
    mine, other = (_endpoint_with_event(api, rec.url) for rec in receivers)
    try:
        for rec, endpoint in zip(receivers, (mine, other), strict=True):
            rec.secret = endpoint["secret"]
        batches: list[list[tuple[int, int]]] = []
        dispatch_due_deliveries(conn, batches.append)
        first = {d["id"] for d in _deliveries_of(db, mine["id"])}
        [batch] = [b for b in batches if b[0][0] in first]
        [others] = [
            b for b in batches if b[0][0] in {d["id"] for d in _deliveries_of(db, other["id"])}
        ]
        deliver_batch(conn, others, timeout=5, schedule=(1,), allow_private=True)
        factories.open_invoice(api, 900)
        factories.open_invoice(api, 950)
        meanwhile = {d["id"] for d in _deliveries_of(db, mine["id"])} - first
        assert meanwhile
        # when the send task runs that batch
        queued: list[list[tuple[int, int]]] = []
        summary = deliver_leased(
            conn, batch, queued.append, timeout=5, schedule=(1,), allow_private=True
        )
        # then it also sent what came due meanwhile, queueing no task for its endpoint,
        # and the other endpoint's new deliveries went to the queue
        assert {d["status"] for d in _deliveries_of(db, mine["id"])} == {"succeeded"}
        assert summary == f"{len(first) + len(meanwhile)} succeeded"
        assert not [b for b in queued if b[0][0] in first | meanwhile]
        assert {i for b in queued for i, _ in b} >= {
            d["id"] for d in _deliveries_of(db, other["id"]) if d["status"] == "pending"
        }
    finally:
        for endpoint, rec in zip((mine, other), receivers, strict=True):
            api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
            rec.close()


def test_a_transaction_writing_deliveries_holds_up_neither_dispatch_nor_claim(
    api, db, conn, service_urls
):
    # given an endpoint with due deliveries, and a transaction left open holding the
    # endpoint FOR KEY SHARE, as one that writes a delivery for it does (its foreign key)
    rec = Receiver()
    endpoint = _endpoint_with_event(api, rec.url)
    try:
        rec.secret = endpoint["secret"]
        due = {d["id"] for d in _deliveries_of(db, endpoint["id"])}
        with psycopg.connect(service_urls["DATABASE_URL"]) as writer:
            writer.execute(
                "SELECT 1 FROM webhook_endpoints WHERE id = %s FOR KEY SHARE", (endpoint["id"],)
            )
            # when due deliveries are dispatched meanwhile
            batches: list[list[tuple[int, int]]] = []
            dispatch_due_deliveries(conn, batches.append)
            # then the endpoint got its batch (it was skipped as locked)
            [batch] = [b for b in batches if b[0][0] in due]
            assert {i for i, _ in batch} == due
            # and the batch is claimed and sent without waiting for that transaction
            conn.execute("SET lock_timeout = '2s'")
            try:
                outcomes = deliver_batch(conn, batch, timeout=5, schedule=(1,), allow_private=True)
            finally:
                conn.execute("RESET lock_timeout")
            assert set(outcomes.values()) == {"succeeded"}
            assert sorted(rec.event_ids()) == sorted(
                d["event_id"] for d in _deliveries_of(db, endpoint["id"])
            )
            writer.rollback()
    finally:
        api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
        rec.close()


def _circuit(db, endpoint_id):
    return db.execute(
        "SELECT status, consecutive_failures AS failures, failing_since IS NOT NULL AS failing,"
        " extract(epoch FROM circuit_open_until - now()) AS open_for"
        " FROM webhook_endpoints WHERE id = %s",
        (endpoint_id,),
    ).fetchone()


def _attempts(db, endpoint_id):
    return db.execute(
        "SELECT count(*) AS n FROM webhook_delivery_attempts a"
        " JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = %s",
        (endpoint_id,),
    ).fetchone()["n"]


def _cool_down_over(db, endpoint_id):
    db.execute(
        "UPDATE webhook_endpoints SET circuit_open_until = now() - interval '1 second'"
        " WHERE id = %s",
        (endpoint_id,),
    )


def test_a_black_hole_costs_one_post_per_batch_then_its_circuit_opens(api, db, conn):
    # given an endpoint on a loopback socket that never answers, with due deliveries
    black_hole = socket.create_server(("127.0.0.1", 0))
    endpoint = _endpoint_with_event(api, f"http://127.0.0.1:{black_hole.getsockname()[1]}/")
    receiver = Receiver()
    try:
        for _ in range(2):  # more events: several still due after five attempts
            factories.open_invoice(api, 800)
        pending = _deliveries_of(db, endpoint["id"])
        args = {"timeout": 0.3, "schedule": (60, 60), "allow_private": True}

        # when a batch of all of them is sent
        outcomes = deliver_batch(conn, [(d["id"], None) for d in pending], **args)
        # then one POST timed out and the rest wait, unattempted
        first, *rest = (d["id"] for d in pending)
        assert outcomes == {first: "retrying", **dict.fromkeys(rest, "deferred")}
        assert {(d["status"], d["attempts"]) for d in _deliveries_of(db, endpoint["id"])[1:]} == {
            ("pending", 0)
        }
        assert _circuit(db, endpoint["id"])["failures"] == 1

        # when two more batches get no answer (three in a row)
        for _ in range(2):
            leases = {}
            dispatch_due_deliveries(conn, leases.update)
            mine = [(i, lease) for i, lease in leases.items() if i in rest]
            deliver_batch(conn, mine, **args)
        # then the circuit is open: no batch for it, nothing failed, nothing dropped
        circuit = _circuit(db, endpoint["id"])
        assert (circuit["status"], circuit["failures"]) == ("enabled", 3)
        assert 25 < circuit["open_for"] <= 30
        leases = {}
        dispatch_due_deliveries(conn, leases.update)
        assert not set(leases) & set(rest)
        assert _attempts(db, endpoint["id"]) == 3
        assert {d["status"] for d in _deliveries_of(db, endpoint["id"])} == {"pending"}

        # when the cool-down is over (half-open), one delivery goes through
        _cool_down_over(db, endpoint["id"])
        dispatch_due_deliveries(conn, leases.update)
        probe = [(i, lease) for i, lease in leases.items() if i in rest]
        assert len(probe) == 1
        # and when it gets no answer either, the circuit opens for twice as long
        assert set(deliver_batch(conn, probe, **args).values()) == {"retrying"}
        circuit = _circuit(db, endpoint["id"])
        assert circuit["failures"] == 4 and 55 < circuit["open_for"] <= 60

        # when the receiver answers again, the next probe closes the circuit
        db.execute(
            "UPDATE webhook_endpoints SET url = %s WHERE id = %s", (receiver.url, endpoint["id"])
        )
        receiver.secret = endpoint["secret"]
        _cool_down_over(db, endpoint["id"])
        leases = {}
        dispatch_due_deliveries(conn, leases.update)
        probe = [(i, lease) for i, lease in leases.items() if i in rest]
        assert len(probe) == 1
        assert set(deliver_batch(conn, probe, **args).values()) == {"succeeded"}
        circuit = _circuit(db, endpoint["id"])
        assert (circuit["failures"], circuit["failing"], circuit["open_for"]) == (0, False, None)
        # and the next dispatch sends a whole batch again
        leases = {}
        dispatch_due_deliveries(conn, leases.update)
        assert len([i for i in leases if i in rest]) == min(len(rest) - 4, DELIVERY_BATCH) > 1
    finally:
        api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
        black_hole.close()
        receiver.close()


def test_an_endpoint_unanswered_for_the_whole_schedule_is_disabled(api, db, conn):
    # given an endpoint that has not answered for two minutes, on a two-minute schedule
    endpoint = _endpoint_with_event(api, f"http://127.0.0.1:{free_port()}/nobody")
    try:
        [first, second, *_] = _deliveries_of(db, endpoint["id"])
        args = {"timeout": 1, "schedule": (60, 60), "allow_private": True}
        db.execute(
            "UPDATE webhook_endpoints SET consecutive_failures = 3,"
            " failing_since = now() - interval '90 seconds' WHERE id = %s",
            (endpoint["id"],),
        )
        # when its next delivery gets no answer, inside the two minutes
        assert deliver_batch(conn, [(first["id"], None)], **args) == {first["id"]: "retrying"}
        # then it is still enabled
        assert _circuit(db, endpoint["id"])["status"] == "enabled"
        # and when another gets none past the two minutes, it is disabled, though no
        # delivery of it has reached the end of its own schedule
        db.execute(
            "UPDATE webhook_endpoints SET failing_since = now() - interval '121 seconds'"
            " WHERE id = %s",
            (endpoint["id"],),
        )
        assert deliver_batch(conn, [(second["id"], None)], **args) == {second["id"]: "retrying"}
        assert _circuit(db, endpoint["id"])["status"] == "disabled"
        # and enabling it again closes its circuit: it starts afresh
        enabled = api.post(f"/v1/webhook_endpoints/{endpoint['id']}", {"disabled": "false"})
        assert enabled.json["status"] == "enabled"
        circuit = _circuit(db, endpoint["id"])
        assert (circuit["failures"], circuit["failing"], circuit["open_for"]) == (0, False, None)
    finally:
        api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")


def test_unreachable_endpoint_fails_after_schedule_and_is_disabled(api, db, conn):
    # given an endpoint nobody listens on
    endpoint = _endpoint_with_event(api, "http://127.0.0.1:9/nobody")
    [first, *_] = _deliveries_of(db, endpoint["id"])
    args = {"timeout": 2, "schedule": (0, 0), "allow_private": True}
    # when every attempt of the schedule fails
    outcomes = []
    for _ in range(3):
        outcomes.append(deliver_batch(conn, [(first["id"], None)], **args)[first["id"]])
        time.sleep(0.01)
    # then it is retried len(schedule) times, failed, and the endpoint disabled
    assert outcomes == ["retrying", "retrying", "failed"]
    attempts = db.execute(
        "SELECT status_code, error FROM webhook_delivery_attempts WHERE delivery_id = %s",
        (first["id"],),
    ).fetchall()
    assert len(attempts) == 3
    assert all(a["status_code"] is None and a["error"] for a in attempts)
    assert api.get(f"/v1/webhook_endpoints/{endpoint['id']}").json["status"] == "disabled"
    api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")


def test_private_target_is_refused_at_delivery_when_not_allowed(api, db, conn):
    endpoint = _endpoint_with_event(api, "http://127.0.0.1:9/private")
    [first, *_] = _deliveries_of(db, endpoint["id"])
    outcomes = deliver_batch(
        conn, [(first["id"], None)], timeout=2, schedule=(5,), allow_private=False
    )
    assert outcomes == {first["id"]: "retrying"}
    [attempt] = db.execute(
        "SELECT error FROM webhook_delivery_attempts WHERE delivery_id = %s", (first["id"],)
    ).fetchall()
    assert "private" in attempt["error"]
    api.delete(f"/v1/webhook_endpoints/{endpoint['id']}")


def test_publish_writes_each_event_to_the_stream_once(api, db, conn, private_redis):
    import redis

    client = redis.Redis.from_url(private_redis.url)
    client.delete(STREAM_KEY)
    invoice = factories.open_invoice(api, 900)
    publish_events(conn, client)
    entries = client.xrange(STREAM_KEY)
    by_id = {e[1][b"id"].decode(): e[1] for e in entries}
    finalized = _finalized_event_id(db, invoice)
    entry = by_id[finalized]
    assert entry[b"type"] == b"invoice.finalized"
    assert entry[b"livemode"] == b"0"
    payload = json.loads(entry[b"payload"])
    assert payload == {
        **api.get(f"/v1/events/{finalized}").json,
        "pending_webhooks": payload["pending_webhooks"],
    }
    assert db.execute("SELECT count(*) AS n FROM event_outbox").fetchone()["n"] == 0
    publish_events(conn, client)
    assert len(client.xrange(STREAM_KEY)) == len(entries)


def _on_stream(client, event_id: str) -> bool:
    return any(e[1][b"id"].decode() == event_id for e in client.xrange(STREAM_KEY))


def _in_outbox(db, event_id: str) -> bool:
    row = db.execute("SELECT 1 FROM event_outbox WHERE event_id = %s", (event_id,)).fetchone()
    return row is not None


def test_publish_committed_publishes_in_the_callers_process(api, db, conn, private_redis):
    # given a committed change whose event is in the outbox
    client = redis.Redis.from_url(private_redis.url)
    finalized = _finalized_event_id(db, factories.open_invoice(api, 900))
    enqueued = []

    # when the committer publishes (as the drain does after each batch)
    publish_committed(conn, client, enqueued.append)

    # then the event is on the stream and out of the outbox, and no note was left
    assert _on_stream(client, finalized) and not _in_outbox(db, finalized)
    assert not client.exists(PUBLISH_AGAIN)


def test_a_publisher_that_finds_the_lock_taken_leaves_the_holder_a_note(
    api, db, conn, private_redis, service_urls
):
    # given another publisher holding the lock (it may have claimed before this commit)
    client = redis.Redis.from_url(private_redis.url)
    client.delete(PUBLISH_AGAIN)
    finalized = _finalized_event_id(db, factories.open_invoice(api, 900))
    with psycopg.connect(service_urls["DATABASE_URL"]) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (outbox.PUBLISH_LOCK_ID,))

        # when the committer publishes
        started = time.monotonic()
        publish_committed(conn, client, lambda _: None)

        # then it waited for nothing, published nothing, and left the holder a note
        assert time.monotonic() - started < 1
        assert _in_outbox(db, finalized) and not _on_stream(client, finalized)
        assert client.exists(PUBLISH_AGAIN)

    # and the holder, which takes the note after it lets go of the lock (here the next
    # publisher, in its stead), publishes again: the event is not left behind
    assert publish_events(conn, client) >= 1
    assert _on_stream(client, finalized) and not _in_outbox(db, finalized)
    assert not client.exists(PUBLISH_AGAIN)


def test_publish_committed_leaves_events_to_the_sweeper_when_redis_is_down(api, db, conn):
    # given Redis unreachable
    down = connect_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=1, connect_timeout=0.5)
    finalized = _finalized_event_id(db, factories.open_invoice(api, 900))

    # when the committer publishes, it does not raise, and the event stays in the outbox
    publish_committed(conn, down, lambda _: None)
    assert _in_outbox(db, finalized)


# -- delivery through the real worker ---------------------------------------------------------


def test_receiver_failing_twice_gets_it_on_the_third_attempt(papi, db, worker, receiver):
    # given a receiver that answers 500 twice, then 200
    receiver.script = [500, 503]
    # when an event is written (finalizing an invoice)
    invoice = factories.open_invoice(papi, 1100)
    event_id = _finalized_event_id(db, invoice)
    # then it arrives on the shortened schedule (1 s, 1 s), every attempt recorded
    wait_for(lambda: event_id in receiver.event_ids(200), 30, "the third attempt")
    statuses = [r["status"] for r in receiver.received if r["event"]["id"] == event_id]
    assert statuses == [500, 503, 200]

    def delivery():
        return db.execute(
            "SELECT id, status, attempts FROM webhook_deliveries"
            " WHERE event_id = %s AND endpoint_id = %s",
            (event_id, receiver.endpoint_id),
        ).fetchone()

    # (the worker records the 200 just after the receiver has answered it)
    wait_for(lambda: delivery()["status"] == "succeeded", 10, "the success to be recorded")
    assert delivery()["attempts"] == 3
    attempts = db.execute(
        "SELECT status_code, attempted_at FROM webhook_delivery_attempts"
        " WHERE delivery_id = %s ORDER BY id",
        (delivery()["id"],),
    ).fetchall()
    assert [a["status_code"] for a in attempts] == [500, 503, 200]
    gaps = [(b["attempted_at"] - a["attempted_at"]).total_seconds() for a, b in pairwise(attempts)]
    assert all(0.9 <= g < 6 for g in gaps), gaps
    assert receiver.rejected == []


def test_a_send_queued_before_deliveries_were_batched_is_still_delivered(
    papi, db, worker, receiver, pipeline_settings, private_redis
):
    # given an event delivered once, then its delivery pending again under a lease
    invoice = factories.open_invoice(papi, 1200)
    event_id = _finalized_event_id(db, invoice)
    wait_for(lambda: event_id in receiver.event_ids(), 20, "the first delivery")
    wait_for(
        lambda: (
            db.execute(
                "SELECT status FROM webhook_deliveries WHERE event_id = %s AND endpoint_id = %s",
                (event_id, receiver.endpoint_id),
            ).fetchone()["status"]
            == "succeeded"
        ),
        10,
        "the first delivery to be recorded",
    )
    leased = db.execute(
        "UPDATE webhook_deliveries SET status = 'pending',"
        " next_attempt_at = now() + interval '60 seconds'"
        " WHERE event_id = %s AND endpoint_id = %s"
        " RETURNING id, (extract(epoch FROM next_attempt_at) * 1000000)::bigint AS lease",
        (event_id, receiver.endpoint_id),
    ).fetchone()
    # when a message in the old shape, (delivery id, lease), reaches the worker
    tasks = queue.make_task_queue(pipeline_settings, redis.Redis.from_url(private_redis.url))
    tasks.celery.send_task(queue.SEND_DELIVERY, (leased["id"], leased["lease"]))
    # then it is sent and recorded like any other
    wait_for(lambda: receiver.event_ids().count(event_id) == 2, 20, "the second delivery")
    wait_for(
        lambda: (
            db.execute(
                "SELECT status, attempts FROM webhook_deliveries WHERE id = %s", (leased["id"],)
            ).fetchone()
            == {"status": "succeeded", "attempts": 2}
        ),
        10,
        "the second delivery to be recorded",
    )


def test_every_delivery_verifies_with_the_sdk_and_matches_the_event(papi, db, worker, receiver):
    invoice = factories.open_invoice(papi, 1300)
    papi.post(f"/v1/invoices/{invoice['id']}/void")
    expected = {
        r["id"]
        for r in db.execute(
            "SELECT id FROM events WHERE data->'object'->>'id' = %s", (invoice["id"],)
        ).fetchall()
    }
    wait_for(lambda: expected <= set(receiver.event_ids()), 20, "every event delivered")
    assert receiver.rejected == []
    for record in receiver.received:
        if record["event"]["id"] in expected:
            sent = record["event"]
            stored = papi.get(f"/v1/events/{sent['id']}").json
            assert {**sent, "pending_webhooks": 0} == {**stored, "pending_webhooks": 0}
    # the receiver has read each POST before the worker records its answer
    wait_for(
        lambda: (
            db.execute(
                "SELECT count(*) AS n FROM webhook_deliveries"
                " WHERE endpoint_id = %s AND status <> 'succeeded'",
                (receiver.endpoint_id,),
            ).fetchone()["n"]
            == 0
        ),
        20,
        "every delivery recorded as succeeded",
    )


def test_only_subscribed_types_are_delivered(papi, db, worker):
    rec = Receiver()
    endpoint = papi.post(
        "/v1/webhook_endpoints", {"url": rec.url, "enabled_events[]": "invoice.voided"}
    ).json
    rec.secret = endpoint["secret"]
    try:
        invoice = factories.open_invoice(papi, 1400)
        papi.post(f"/v1/invoices/{invoice['id']}/void")
        wait_for(lambda: rec.received, 20, "the voided event")
        time.sleep(1)
        assert {r["event"]["type"] for r in rec.received} == {"invoice.voided"}
    finally:
        papi.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
        rec.close()
