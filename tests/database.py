"""Databases of a test's own beside the run's, and a digest of what one holds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from service.migrate import MIGRATIONS_DIR, migrate


@contextmanager
def migrated_before(service_urls, tmp_path, version: str) -> Iterator[str]:
    """A scratch database with the migrations before `version` applied; yields its DSN,
    and drops it afterwards."""
    name = f"tally_migrations_{version}_{os.getpid()}"
    dsn = make_conninfo(service_urls["DATABASE_URL"], dbname=name)
    admin = make_conninfo(service_urls["DATABASE_URL"], dbname="postgres")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(drop)
    for path in sorted(Path(MIGRATIONS_DIR).glob("*.sql")):
        if path.stem < version:
            (tmp_path / path.name).write_text(path.read_text())
    try:
        migrate(dsn, tmp_path)
        yield dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(drop)


@contextmanager
def connected_before(
    service_urls, tmp_path, version: str
) -> Iterator[tuple[str, psycopg.Connection[Any]]]:
    """migrated_before's database, with a connection to it (autocommit, dict rows):
    yields (dsn, connection)."""
    with (
        migrated_before(service_urls, tmp_path, version) as dsn,
        psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn,
    ):
        yield dsn, conn


def fingerprint(db: Any) -> dict[str, str]:
    """A digest of every table's rows: equal before and after means nothing changed."""
    tables = [
        r["table_name"]
        for r in db.execute(
            """
            SELECT table_name FROM information_schema.tables
            WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
            """
        ).fetchall()
    ]
    return {
        table: db.execute(
            sql.SQL(
                "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS d FROM {} t"
            ).format(sql.Identifier(table))
        ).fetchone()["d"]
        for table in tables
    }
