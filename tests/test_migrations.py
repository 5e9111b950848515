"""The release command: creates the database, applies every migration once."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from service.migrate import MIGRATIONS_DIR, migrate


def test_migrate_creates_the_database_and_a_second_run_is_a_no_op(service_urls):
    dsn = make_conninfo(service_urls["DATABASE_URL"], dbname="tally_migrations_check")
    admin = make_conninfo(service_urls["DATABASE_URL"], dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS tally_migrations_check")
    try:
        first = migrate(dsn)
        second = migrate(dsn)
        assert first == sorted(p.stem for p in Path(MIGRATIONS_DIR).glob("*.sql"))
        assert second == []
        with psycopg.connect(dsn) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert sorted(versions) == first
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS tally_migrations_check WITH (FORCE)")
