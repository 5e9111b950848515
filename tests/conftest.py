"""Shared fixtures: a real PostgreSQL database migrated once per run, the app, and
a real HTTP server on loopback for the stripe SDK; the pipeline's fixtures (a private
Redis, a real worker process, a webhook receiver) from tests/pipeline_support.py.

The tests are in tiers, by what they run against (each tier's conftest.py says more):
unit/ nothing; store/ and api/ real PostgreSQL and Redis in process; pipeline/ the
pipeline in process and through a real worker; faults/ servers and processes made to
fail; tools/ the `tally` command and the developer's tooling. A test that starts a
real worker or web process is marked `processes` (any test using the `worker`
fixture is, by the hook below); `bin/test --fast` runs all the others.

Support modules, never test modules, hold what several tests share: factories.py
(objects made through the API), database.py, tally_command.py, sdk_declarations.py,
upstream_stripe.py, pipeline_support.py; a signed Stripe webhook comes from
devtools/stripe_events.py."""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from werkzeug.serving import make_server

from service.app import create_app
from service.config import Settings
from service.domain.signatures import WebhookSecrets
from service.migrate import migrate

# The pipeline's fixtures, for every tier that needs a worker or a private Redis.
pytest_plugins = ["tests.pipeline_support"]

# A test using any of these starts a real worker process: marked `processes`.
WORKER_FIXTURES = {"worker", "worker_process"}

TEST_KEY = "sk_test_tally_suite_key"
LIVE_KEY = "sk_live_tally_suite_key"
# The signing secrets of the test-mode and live-mode Stripe endpoints.
WEBHOOK_SECRET = "whsec_tally_suite_secret"
LIVE_WEBHOOK_SECRET = "whsec_tally_suite_live_secret"
ROOT = Path(__file__).resolve().parent.parent
# Not db 0, where a running `bin/dev` worker would take the tests' wake-ups. Two suites
# run side by side (two checkouts) need different dbs, or their workers take each
# other's tasks: TALLY_TEST_REDIS_DB picks another.
TEST_REDIS_DB = int(os.environ.get("TALLY_TEST_REDIS_DB", "13"))


def _redis_db(url: str, db: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


@functools.cache
def _service_urls() -> dict[str, str]:
    """Configured URLs, else local servers, else embedded ones (see README)."""
    from devtools.localenv import ensure_local_services

    return ensure_local_services(ROOT / ".tally-data", database_name="tally_test")


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def pytest_report_header() -> str:
    """Which servers this run uses, first: found or started as the README says."""
    urls = _service_urls()
    return (
        f"tally: PostgreSQL {_without_password(urls['DATABASE_URL'])}"
        f" (this run's database: tally_test_{os.getpid()}),"
        f" Redis {_without_password(_redis_db(urls['REDIS_URL'], TEST_REDIS_DB))}"
    )


@pytest.fixture(scope="session")
def service_urls() -> dict[str, str]:
    urls = _service_urls()
    base = urls["DATABASE_URL"]
    dsn = make_conninfo(base, dbname=f"tally_test_{os.getpid()}")
    admin = make_conninfo(base, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "tally_test_{os.getpid()}"')
    migrate(dsn)
    yield {**urls, "DATABASE_URL": dsn, "REDIS_URL": _redis_db(urls["REDIS_URL"], TEST_REDIS_DB)}
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "tally_test_{os.getpid()}" WITH (FORCE)')


@pytest.fixture(scope="session")
def settings(service_urls: dict[str, str]) -> Settings:
    return Settings(
        database_url=service_urls["DATABASE_URL"],
        redis_url=service_urls["REDIS_URL"],
        api_keys=(TEST_KEY, LIVE_KEY),
        webhook_secrets=WebhookSecrets(test=(WEBHOOK_SECRET,), live=(LIVE_WEBHOOK_SECRET,)),
        delivery_retry_schedule=(1, 1, 2),
        allow_private_webhook_urls=True,
        pool_max_size=20,
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> Any:
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["pool"].close()


@pytest.fixture
def private_app(settings: Settings) -> Any:
    """An app of its own, so a test may add hooks and routes before its first request."""
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["pool"].close()


class ApiClient:
    """Flask's test client with a key and Stripe's form encoding."""

    def __init__(self, app: Any, key: str = TEST_KEY):
        self.client = app.test_client()
        self.key = key

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **(headers or {})}

    def post(
        self, path: str, data: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        return self.client.post(path, data=data or {}, headers=self._headers(headers))

    def get(
        self, path: str, query: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        return self.client.get(path, query_string=query or {}, headers=self._headers(headers))

    def delete(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.delete(path, headers=self._headers(headers))


@pytest.fixture
def api(app: Any) -> ApiClient:
    return ApiClient(app)


@pytest.fixture
def live_api(app: Any) -> ApiClient:
    return ApiClient(app, LIVE_KEY)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve `app` over real HTTP on a loopback port; yields its base URL."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()


@pytest.fixture(scope="session")
def server(app: Any) -> Iterator[str]:
    """The app served over real HTTP on loopback; yields its base URL."""
    with serving(app) as url:
        yield url


@pytest.fixture(scope="session")
def database_template(service_urls: dict[str, str]) -> Iterator[str]:
    """A migrated database nobody connects to, copied for each `own_database`."""
    dsn = make_conninfo(service_urls["DATABASE_URL"], dbname=f"tally_test_{os.getpid()}_template")
    migrate(dsn)
    yield dsn
    _drop_database(dsn)


@pytest.fixture
def own_database(service_urls: dict[str, str], database_template: str) -> Iterator[str]:
    """A migrated database of this test's own (a copy of the template, about 0.3 s), for
    what works on a whole database, such as pruning: nothing another test left is in it."""
    name = f"tally_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    template = conninfo_to_dict(database_template)["dbname"]
    with psycopg.connect(_admin(service_urls), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    dsn = make_conninfo(service_urls["DATABASE_URL"], dbname=name)
    yield dsn
    _drop_database(dsn)


@pytest.fixture
def own_app(settings: Settings, own_database: str) -> Iterator[Any]:
    """An app on `own_database`."""
    app = create_app(dataclasses.replace(settings, database_url=own_database))
    app.config["TESTING"] = True
    yield app
    app.extensions["pool"].close()


@pytest.fixture
def own_api(own_app: Any) -> ApiClient:
    return ApiClient(own_app)


@pytest.fixture
def own_server(own_app: Any) -> Iterator[str]:
    """`own_app` served over real HTTP on loopback; yields its base URL."""
    with serving(own_app) as url:
        yield url


@pytest.fixture
def own_db(own_database: str) -> Iterator[psycopg.Connection[Any]]:
    """A direct connection to `own_database`."""
    with psycopg.connect(own_database, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def _admin(service_urls: dict[str, str]) -> str:
    return make_conninfo(service_urls["DATABASE_URL"], dbname="postgres")


def _drop_database(dsn: str) -> None:
    name = conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(make_conninfo(dsn, dbname="postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(service_urls: dict[str, str]) -> Iterator[psycopg.Connection[Any]]:
    """A direct connection for asserting on what the database holds."""
    with psycopg.connect(
        service_urls["DATABASE_URL"], autocommit=True, row_factory=dict_row
    ) as conn:
        yield conn


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `processes` every test that starts a real worker through a fixture (the
    others that start processes say so themselves)."""
    for item in items:
        if WORKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.processes)
