"""Connection pools and the errors that mean "try again later". No Flask here."""

from __future__ import annotations

from typing import Any

import psycopg
import psycopg.errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

# A connection as the store and the use cases take it (rows as dicts unless a store
# function asks its cursor for a typed row).
Conn = psycopg.Connection[Any]

# Errors after which the same work may succeed if simply retried.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    PoolTimeout,
)


def pool_max_for(at_once: int) -> int:
    """The connections a process that runs `at_once` requests or tasks at a time can
    use: one each (a request or a task holds one), and a spare so that one being
    replaced after a broken connection never makes the others wait."""
    return at_once + 1


def make_pool(dsn: str, *, max_size: int = 10, name: str = "tally") -> ConnectionPool:
    """An autocommit, dict-row pool; transactions are opened by operations only."""
    return ConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        name=name,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            # Bound every statement so a stuck query cannot hold row locks forever.
            "options": "-c statement_timeout=15000 -c idle_in_transaction_session_timeout=30000",
        },
        # No check on borrow: it costs a round trip on every request (a tenth of an
        # intake). A connection broken by a PostgreSQL restart fails one request with
        # a 503 instead, and the pool discards it when it comes back broken.
        timeout=5.0,
        # Give up a reconnection attempt after 10 s so the next request starts a new
        # one: the default (300 s of growing backoff) kept answering 503 for about as
        # long as PostgreSQL had been down.
        reconnect_timeout=10.0,
        open=False,
    )
