"""The web process as the Procfile runs it stays responsive while slow clients trickle
their headers (issue 18: gunicorn's sync workers were each held by one of them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from bench.common import BENCH_KEY, BENCH_SECRET
from bench.slow_clients import GIVE_UP_SECONDS, SLOW_CLIENTS, measure
from devtools.processes import Stack
from devtools.servers import RedisServer
from service.migrate import migrate

# Per run: two checkouts' suites may share one PostgreSQL.
SCRATCH_DB = f"tally_slow_clients_{os.getpid()}"
# The Procfile's web process, for real.
pytestmark = pytest.mark.processes


@pytest.fixture
def scratch_dsn(service_urls: dict[str, str]) -> Iterator[str]:
    """A database of its own: the webhooks stored here are never processed."""
    admin = make_conninfo(service_urls["DATABASE_URL"], dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")
    dsn = make_conninfo(service_urls["DATABASE_URL"], dbname=SCRATCH_DB)
    migrate(dsn)
    yield dsn
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")


@pytest.mark.timeout(120)
def test_four_slow_clients_leave_healthz_and_webhooks_answering(
    scratch_dsn: str, tmp_path: Any
) -> None:
    # given: the Procfile's web line (bound to loopback), as deployed by default
    redis_server = RedisServer()
    redis_server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "STRIPE_", "WEB_"))}
    env.update(
        DATABASE_URL=scratch_dsn,
        REDIS_URL=redis_server.url,
        TALLY_API_KEYS=BENCH_KEY,
        # Both spellings: the per-mode setting, and the one that verifies either mode.
        STRIPE_WEBHOOK_SECRETS=BENCH_SECRET,
        STRIPE_WEBHOOK_SECRETS_TEST=BENCH_SECRET,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    stack = Stack(env, tmp_path)
    try:
        base_url = stack.start_web("web")
        # when: SLOW_CLIENTS connections trickle their headers a byte a second
        timings = measure(base_url, rounds=2)
    finally:
        stack.stop_all()
        redis_server.stop()
    # then: /healthz and a signed webhook are answered every time, while the slow
    # clients still hold their connections (how fast is the benchmark's figure: a timed
    # assertion would fail on a loaded machine, not on a held worker)
    assert SLOW_CLIENTS == 4
    assert timings.worst < GIVE_UP_SECONDS, timings.summary()
