"""The faults of a run, spread over its window: processes SIGKILLed (the supervisor
restarts them), Redis stopped and flushed, PostgreSQL restarted, the receiver down."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import redis

from bench.chaos.stack import Stack
from devtools.receiver import Receiver
from devtools.servers import PrivatePostgres, RedisServer
from devtools.waiting import wait_until

# One cycle of faults, in order; a full run repeats it.
CYCLE = (
    "worker pool child SIGKILL",
    "redis stopped",
    "worker SIGKILL",
    "receiver down",
    "redis FLUSHALL",
    "postgres restarted",
    "web SIGKILL",
    "deliveries SIGKILL",
    "worker pool child SIGKILL",
)


@dataclass
class Fault:
    kind: str
    started: float
    ended: float
    note: str = ""


@dataclass
class Faults:
    stack: Stack
    database_url: str
    postgres: PrivatePostgres | None  # None: a scratch database, not restartable
    redis_server: RedisServer
    receiver: Receiver
    down_for: float  # seconds Redis, PostgreSQL and the receiver stay down
    rng: random.Random
    done: list[Fault] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def plan(self, cycles: int) -> list[str]:
        kinds = list(CYCLE) * cycles
        if self.postgres is None:
            self.skipped.append("postgres restarted (no restartable PostgreSQL)")
            kinds = [k for k in kinds if k != "postgres restarted"]
        return kinds

    def run(self, kinds: list[str], t0: float, start: float, window: float) -> None:
        """Inject `kinds` evenly over [start, start + window]; returns when done."""
        for n, kind in enumerate(kinds):
            at = start + window * (n + 0.5) / len(kinds)
            if self.stop.wait(max(0.0, at - time.monotonic())):
                return
            started = time.monotonic()
            note = self._inject(kind)
            self.done.append(Fault(kind, started, time.monotonic(), note))
            print(f"  fault at {started - t0:5.1f}s: {kind} {note}".rstrip(), flush=True)

    def _inject(self, kind: str) -> str:
        action: dict[str, Callable[[], str]] = {
            "worker pool child SIGKILL": self._kill_pool_child,
            "worker SIGKILL": lambda: self._kill_process("worker"),
            "deliveries SIGKILL": lambda: self._kill_process("deliveries"),
            "web SIGKILL": self._kill_web,
            "redis stopped": self._redis_down,
            "redis FLUSHALL": self._flushall,
            "postgres restarted": self._postgres_restart,
            "receiver down": self._receiver_down,
        }
        return action[kind]()

    def _backlog(self) -> bool:
        try:
            with psycopg.connect(self.database_url, connect_timeout=2) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM inbound_events WHERE status = 'pending'"
                ).fetchone()
                return bool(row and row[0])
        except psycopg.Error:
            return False

    def _kill_pool_child(self) -> str:
        wait_until(self._backlog, 3, 0.05)  # mid-batch if there is one
        proc = self.rng.choice(self.stack.named("worker"))
        killed = self.stack.kill_child(proc)
        return "" if killed else f"({proc.label} had no pool child)"

    def _kill_process(self, name: str) -> str:
        procs = self.stack.named(name)
        if not procs:
            return f"(no {name} process)"
        wait_until(self._backlog, 3, 0.05)
        proc = self.rng.choice(procs)
        starts = proc.starts
        self.stack.kill(proc, whole_group=True)
        wait_until(lambda: proc.starts > starts, 30)  # the supervisor restarted it
        return f"({proc.label})"

    def _kill_web(self) -> str:
        """SIGKILL gunicorn's master only: its workers are orphaned mid-request."""
        proc = self.stack.named("web")[0]
        self.stack.kill(proc, whole_group=False)
        time.sleep(0.5)
        back = wait_until(self.stack.web_ready, 60, 0.2)
        return "" if back else "(web not ready after 60 s)"

    def _redis_down(self) -> str:
        self.redis_server.stop()
        time.sleep(self.down_for)
        self.redis_server.start()
        return f"({self.down_for:.0f} s)"

    def _flushall(self) -> str:
        redis.Redis.from_url(self.redis_server.url, socket_timeout=5).flushall()
        return ""

    def _postgres_restart(self) -> str:
        assert self.postgres is not None
        with self.postgres.down():
            time.sleep(self.down_for)
        return f"(down {self.down_for:.0f} s)"

    def _receiver_down(self) -> str:
        self.receiver.stop()
        time.sleep(self.down_for * 3)
        self.receiver.start()
        return f"({self.down_for * 3:.0f} s)"
