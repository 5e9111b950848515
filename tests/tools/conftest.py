"""Tier tools: `tally`, the operator command, as the installed console script; `bin/dev`
as a newcomer runs it; the embedded servers of devtools/localenv.py."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo


@pytest.fixture
def scratch_dsn(service_urls: dict[str, str]) -> Iterator[str]:
    """A database of this test's own, dropped afterwards (it may not exist yet): what
    `tally migrate` creates, and what bin/dev's beat sweeps and prunes."""
    name = f"tally_tools_{os.getpid()}_{time.monotonic_ns()}"
    admin = make_conninfo(service_urls["DATABASE_URL"], dbname="postgres")
    yield make_conninfo(service_urls["DATABASE_URL"], dbname=name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
