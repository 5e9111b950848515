"""`python -m service.migrate`: apply migrations/*.sql in order, once each, under a lock.

Safe under load: every statement waits at most `lock_timeout` for a table lock. A
migration queued behind a long read would otherwise block every later query on that
table (intake's INSERTs included) for as long as the read lasts; with the timeout it
gives up, rolls back, sleeps (exponential backoff with jitter) and tries again, and
what queued behind it runs in the gaps.

A file whose first line is `-- tally:no-transaction` runs outside a transaction, one
statement at a time (each ends with `;` at the end of a line): what PostgreSQL refuses
inside one, such as `CREATE INDEX CONCURRENTLY`. Such a file may be re-run from its
first statement after a failure, so every statement in it must be safe to repeat
(`DROP INDEX CONCURRENTLY IF EXISTS` before a `CREATE INDEX CONCURRENTLY`, which
leaves an invalid index behind when it fails).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import tuple_row

from service.config import DEFAULT_MIGRATION_LOCK_TIMEOUT, database_url, migration_lock_timeout
from service.db import Conn

# Installed (the image), the package holds them as service/migrations (setup.py); in a
# checkout they sit at the top of the repository, beside the source.
_INSTALLED_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATIONS_DIR = (
    _INSTALLED_MIGRATIONS
    if _INSTALLED_MIGRATIONS.is_dir()
    else Path(__file__).resolve().parent.parent / "migrations"
)
# Any constant shared by every release process; it serialises concurrent runs.
ADVISORY_LOCK_ID = 7_263_411
NO_TRANSACTION_MARKER = "-- tally:no-transaction"
DEFAULT_ATTEMPTS = 30
MAX_BACKOFF = 30.0
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)

log = logging.getLogger(__name__)


def ensure_database(dsn: str) -> None:
    """Create the database named in `dsn` if it does not exist yet."""
    params = conninfo_to_dict(dsn)
    dbname = str(params.get("dbname") or os.environ.get("PGDATABASE") or "postgres")
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
        return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    admin = make_conninfo(dsn, dbname="postgres")
    # DuplicateDatabase: another release process won the race.
    with (
        psycopg.connect(admin, autocommit=True) as conn,
        contextlib.suppress(psycopg.errors.DuplicateDatabase),
    ):
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def versions(directory: Path = MIGRATIONS_DIR) -> list[str]:
    """The migration versions shipped with this code, in the order they apply."""
    return [path.stem for path in sorted(directory.glob("*.sql"))]


def pending(conn: Conn, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Versions shipped with this code that the database has not applied yet.

    Versions applied but not shipped (a newer release migrated first) are not
    pending: forward-only, expand-then-contract migrations keep older code working.
    """
    cur = conn.cursor(row_factory=tuple_row)
    # Before the first migrate there is no table at all: everything is pending.
    row = cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    applied: set[str] = set()
    if row and row[0]:
        applied = {r[0] for r in cur.execute("SELECT version FROM schema_migrations")}
    return [v for v in versions(directory) if v not in applied]


def migrate(
    dsn: str,
    directory: Path = MIGRATIONS_DIR,
    *,
    lock_timeout: float = DEFAULT_MIGRATION_LOCK_TIMEOUT,
    attempts: int = DEFAULT_ATTEMPTS,
    first_backoff: float = 0.5,
) -> list[str]:
    """Apply every migration not yet recorded; return the versions applied.

    A migration that cannot get a lock within `lock_timeout` seconds is retried up to
    `attempts` times, the wait doubling from `first_backoff` (at most 30 s).
    """
    ensure_database(dsn)
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_ID,))
        try:
            # After the advisory lock: a concurrent release may hold that one for as
            # long as its migrations take.
            conn.execute(
                sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{lock_timeout * 1000:.0f}ms"))
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for path in sorted(directory.glob("*.sql")):
                if path.stem in done:
                    continue
                _apply_with_retries(conn, path, attempts=attempts, first_backoff=first_backoff)
                applied.append(path.stem)
                log.info("applied migration %s", path.stem)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_ID,))
    return applied


def _apply_with_retries(conn: Conn, path: Path, *, attempts: int, first_backoff: float) -> None:
    for attempt in range(1, attempts + 1):
        try:
            _apply(conn, path)
            return
        except psycopg.errors.LockNotAvailable:
            if attempt == attempts:
                raise
            delay = min(MAX_BACKOFF, first_backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1)  # noqa: S311
            log.warning(
                "migration %s: a table it changes stayed locked (attempt %d of %d); "
                "retrying in %.1f s",
                path.stem, attempt, attempts, delay,
            )  # fmt: skip
            time.sleep(delay)


def _apply(conn: Conn, path: Path) -> None:
    text = path.read_text()
    record = ("INSERT INTO schema_migrations (version) VALUES (%s)", (path.stem,))
    if not text.startswith(NO_TRANSACTION_MARKER):
        with conn.transaction():
            conn.execute(text)
            conn.execute(*record)
        return
    for statement in _STATEMENT_END.split(text):
        if _has_sql(statement):
            conn.execute(statement)
    conn.execute(*record)


def _has_sql(chunk: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in chunk.splitlines())


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    applied = migrate(database_url(), lock_timeout=migration_lock_timeout())
    sys.stdout.write(f"migrations applied: {', '.join(applied) or 'none (up to date)'}\n")


if __name__ == "__main__":
    main()
