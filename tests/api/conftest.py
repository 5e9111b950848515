"""Tier api: the HTTP API in process, on real PostgreSQL and Redis: Flask's test
client, or the app served on a loopback thread for the stripe SDK and for upstream
Stripe (played by a second Tally). No worker process; the worker's functions are
called directly where a test needs an event processed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from service.app import create_app
from service.config import Settings
from service.migrate import migrate
from tests.conftest import ApiClient, _redis_db, serving
from tests.upstream_stripe import A_LIVE_KEY, A_TEST_KEY, BOUND, Faults, StripeA

# -- upstream Stripe: instance A, and B, the Tally under test with A as its upstream ----


@pytest.fixture(scope="module")
def stripe_a(settings: Settings, service_urls: dict[str, str]) -> Iterator[StripeA]:
    """Instance A, playing Stripe: its own database, migrated here, and its own keys."""
    name = f"{conninfo_to_dict(settings.database_url)['dbname']}_stripe_a"
    admin = make_conninfo(settings.database_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    dsn = make_conninfo(settings.database_url, dbname=name)
    migrate(dsn)
    app = create_app(
        replace(
            settings,
            database_url=dsn,
            # Its own Redis database, so its wake-ups never reach B's workers.
            redis_url=_redis_db(service_urls["REDIS_URL"], 12),
            api_keys=(A_TEST_KEY, A_LIVE_KEY),
            stripe_api_key=None,
        )
    )
    faults = Faults(app.wsgi_app)
    app.wsgi_app = faults  # type: ignore[method-assign]
    try:
        with serving(app) as url:
            yield StripeA(url, dsn, faults, ApiClient(app, A_TEST_KEY), ApiClient(app, A_LIVE_KEY))
    finally:
        app.extensions["pool"].close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def a(stripe_a: StripeA) -> Iterator[StripeA]:
    """A, answering normally again after each test, its hung requests let go."""
    yield stripe_a
    stripe_a.faults.fail("ok")
    stripe_a.faults.release.set()
    stripe_a.faults.release = threading.Event()
    stripe_a.faults.hanging.clear()


@pytest.fixture
def make_app(settings: Settings) -> Iterator[Any]:
    """create_app with some settings changed; every app made is closed afterwards."""
    made: list[Any] = []

    def make(**changes: Any) -> Any:
        app = create_app(replace(settings, **changes))
        app.config["TESTING"] = True
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["pool"].close()


@pytest.fixture
def make_b(make_app: Any, a: StripeA) -> Any:
    """Instance B, the Tally under test, with A as its upstream Stripe."""

    def make(*, key: str = A_TEST_KEY, base: str | None = None) -> Any:
        return make_app(stripe_api_key=key, stripe_api_base=base or a.url, stripe_api_timeout=BOUND)

    return make


@pytest.fixture
def b_app(make_b: Any) -> Any:
    return make_b()


@pytest.fixture
def b(b_app: Any) -> ApiClient:
    return ApiClient(b_app)
