"""The per-key rate limit: a 429 rate_limit_error with Retry-After past it, other keys
unaffected, nothing changed by a refused request, and open when Redis is away."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from service.app import create_app
from tests.conftest import LIVE_KEY, ApiClient, serving

LIMIT = 5


@pytest.fixture
def limited_app(settings: Any) -> Iterator[Any]:
    app = create_app(dataclasses.replace(settings, rate_limit_per_second=LIMIT))
    yield app
    app.extensions["pool"].close()


def until_limited(api: ApiClient, path: str, data: dict[str, Any]) -> tuple[int, Any]:
    """POST until the first 429; returns how many succeeded before it, and the 429."""
    for ok in range(10 * LIMIT):  # bounded: several windows' worth
        response = api.post(path, data)
        if response.status_code == 429:
            return ok, response
        assert response.status_code == 200, response.json
    raise AssertionError("never limited")


def test_over_the_limit_is_a_429_with_retry_after_and_changes_nothing(limited_app, db):
    api = ApiClient(limited_app)
    ok, refused = until_limited(api, "/v1/customers", {"email": "many@example.com"})
    assert ok >= LIMIT
    assert refused.json["error"]["type"] == "rate_limit_error"
    assert refused.headers["Retry-After"] == "1"
    created = db.execute(
        "SELECT count(*) AS n FROM customers WHERE email = 'many@example.com'"
    ).fetchone()["n"]
    assert created == ok  # the refused POST wrote nothing
    # Another key has its own budget.
    assert ApiClient(limited_app, LIVE_KEY).get("/v1/customers").status_code == 200


def test_the_stripe_sdk_raises_its_rate_limit_error(limited_app):
    with serving(limited_app) as url:
        client = stripe.StripeClient(
            "sk_test_tally_suite_key", base_addresses={"api": url}, max_network_retries=0
        )
        with pytest.raises(stripe.RateLimitError) as raised:
            for _ in range(10 * LIMIT):
                client.v1.customers.list()
    assert raised.value.http_status == 429


def test_the_limit_fails_open_when_redis_is_down(settings):
    from tests.pipeline_support import free_port

    down = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(dataclasses.replace(settings, redis_url=down, rate_limit_per_second=1))
    try:
        api = ApiClient(app)
        statuses = {api.get("/v1/customers").status_code for _ in range(5 * LIMIT)}
    finally:
        app.extensions["pool"].close()
    assert statuses == {200}
