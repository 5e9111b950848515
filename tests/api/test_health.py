"""/healthz and /readyz as Kubernetes probes see them: status codes and small bodies."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from service.app import create_app
from service.config import Settings
from service.migrate import MIGRATIONS_DIR, migrate, versions
from tests.conftest import TEST_KEY

SCRATCH_DB = "tally_readyz_check"
# Nothing listens on port 1: connections are refused at once.
NOWHERE_DB = "postgresql://127.0.0.1:1/tally"
NOWHERE_REDIS = "redis://127.0.0.1:1/0"


@contextmanager
def app_for(database_url: str, redis_url: str) -> Iterator[Any]:
    app = create_app(Settings(database_url=database_url, redis_url=redis_url, api_keys=(TEST_KEY,)))
    try:
        yield app.test_client()
    finally:
        app.extensions["pool"].close()


@pytest.fixture
def scratch_dsn(service_urls: dict[str, str]) -> Iterator[str]:
    admin = make_conninfo(service_urls["DATABASE_URL"], dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")
    yield make_conninfo(service_urls["DATABASE_URL"], dbname=SCRATCH_DB)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")


def test_healthz_answers_200_with_no_database_or_redis() -> None:
    with app_for(NOWHERE_DB, NOWHERE_REDIS) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_503_naming_postgres_when_it_does_not_answer() -> None:
    with app_for(NOWHERE_DB, NOWHERE_REDIS) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    # Which checks failed, not why: no address, no error text, no exception class.
    assert response.get_json() == {
        "status": "unavailable",
        "checks": {"postgres": "unavailable", "migrations": "unknown", "redis": "unavailable"},
    }


def test_readyz_is_503_while_a_migration_is_pending_then_200(
    scratch_dsn: str, service_urls: dict[str, str], tmp_path: Path
) -> None:
    # given: a fresh database migrated with every shipped migration but the last
    shipped = versions()
    for version in shipped[:-1]:
        shutil.copy(MIGRATIONS_DIR / f"{version}.sql", tmp_path)
    migrate(scratch_dsn, tmp_path)
    with app_for(scratch_dsn, service_urls["REDIS_URL"]) as client:
        # when
        behind = client.get("/readyz")
        # then
        assert behind.status_code == 503
        assert behind.get_json() == {
            "status": "unavailable",
            "checks": {"postgres": "ok", "migrations": "pending", "redis": "ok"},
            "pending_migrations": [shipped[-1]],
        }
        # when: the release process catches up
        migrate(scratch_dsn)
        current = client.get("/readyz")
    assert current.status_code == 200
    assert current.get_json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "migrations": "ok", "redis": "ok"},
    }


def test_readyz_is_503_on_an_empty_database(scratch_dsn: str, service_urls: dict[str, str]) -> None:
    with psycopg.connect(make_conninfo(scratch_dsn, dbname="postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {SCRATCH_DB}")
    with app_for(scratch_dsn, service_urls["REDIS_URL"]) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["pending_migrations"] == versions()


def test_readyz_stays_200_when_only_redis_is_down(service_urls: dict[str, str]) -> None:
    # Redis is reported, not required: webhooks are still stored and the sweeper
    # re-drives everything from PostgreSQL once Redis is back.
    with app_for(service_urls["DATABASE_URL"], NOWHERE_REDIS) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "migrations": "ok", "redis": "unavailable"},
    }


def test_probes_need_no_api_key_and_are_not_cached(app: Any) -> None:
    client = app.test_client()
    for path in ("/healthz", "/readyz"):
        response = client.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["Cache-Control"] == "no-store"
        assert client.head(path).status_code == 200
