"""`python -m service.migrate`: apply migrations/*.sql in order, once each, under a lock."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import tuple_row

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant shared by every release process; it serialises concurrent runs.
ADVISORY_LOCK_ID = 7_263_411

log = logging.getLogger(__name__)


def ensure_database(dsn: str) -> None:
    """Create the database named in `dsn` if it does not exist yet."""
    params = conninfo_to_dict(dsn)
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or "postgres"
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


def pending(conn: psycopg.Connection[Any], directory: Path = MIGRATIONS_DIR) -> list[str]:
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


def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet recorded; return the versions applied."""
    ensure_database(dsn)
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for path in sorted(directory.glob("*.sql")):
                version = path.stem
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())  # type: ignore[arg-type]
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
                log.info("applied migration %s", version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_ID,))
    return applied


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    dsn = os.environ.get("DATABASE_URL", "postgresql:///tally")
    applied = migrate(dsn)
    sys.stdout.write(f"migrations applied: {', '.join(applied) or 'none (up to date)'}\n")


if __name__ == "__main__":
    main()
