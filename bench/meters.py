"""What the benchmarks read of the processes they run, from /proc, PostgreSQL, Redis and
the logs: CPU seconds and run-queue waits per role (`CpuMeter`), peak RSS
(`RssSampler`), what the worker's backends are doing (`WaitSampler`), tasks run,
transactions committed, and when each webhook passed each stage (`stage_stamps`).
Backends are told apart by application_name, which devtools.processes.Stack sets per
role (PGAPPNAME)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis

from devtools.processes import APP_PREFIX, Stack
from service.adapters.stream import STREAM_KEY

BENCH_APP = "bench"  # application_name of the benchmark's own PostgreSQL connections


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler:
    """sample() every `interval` s on a thread of its own, from start() to halt() (or
    over a `with` block)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._halt.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def halt(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt()


class RssSampler(Sampler):
    """Every `interval` s, for each watched role: the highest VmHWM (peak RSS) of any one
    process in its tree, and the highest sum of VmRSS over the tree."""

    def __init__(self, stack: Stack, roles: tuple[str, ...], interval: float = 0.5) -> None:
        super().__init__(interval)
        self.stack, self.roles = stack, roles
        self.process_peak_kb: dict[str, int] = dict.fromkeys(roles, 0)
        self.tree_peak_kb: dict[str, int] = dict.fromkeys(roles, 0)

    def sample(self) -> None:
        for role in self.roles:
            proc = self.stack.procs.get(role)
            if proc is None or proc.poll() is not None:
                continue
            pids = process_tree(proc.pid)
            hwm = max((status_kb(p, "VmHWM") for p in pids), default=0)
            total = sum(status_kb(p, "VmRSS") for p in pids)
            self.process_peak_kb[role] = max(self.process_peak_kb[role], hwm)
            self.tree_peak_kb[role] = max(self.tree_peak_kb[role], total)


def cpu_of(pid: int) -> tuple[float, float] | None:
    """CPU seconds (user + system) of one process, and seconds its threads waited on a
    run queue for a CPU (schedstat), from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    waited = 0
    for task in tasks:
        try:
            waited += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[1])
        except (OSError, IndexError):
            continue
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), waited / 1e9


class CpuMeter(Sampler):
    """CPU seconds each role's processes spent between start() and stop(), and (in
    `waited`) seconds they were ready to run but waited for a CPU. Sampled every
    `interval` s, so a process that exits in between (a PostgreSQL backend of a pool
    that shrank) keeps what it spent until its last sample; one that appears counts
    from zero."""

    def __init__(self, roles: dict[str, Callable[[], list[int]]], interval: float = 0.25):
        super().__init__(interval)
        self.roles = roles
        self._first: dict[str, dict[int, tuple[float, float]]] = {}
        self._last: dict[str, dict[int, tuple[float, float]]] = {}
        self.waited: dict[str, float] = {}

    def sample(self) -> None:
        self._sample(baseline=False)

    def _sample(self, baseline: bool) -> None:
        for role, pids in self.roles.items():
            first = self._first.setdefault(role, {})
            last = self._last.setdefault(role, {})
            for pid in pids():
                used = cpu_of(pid)
                if used is None:
                    continue
                first.setdefault(pid, used if baseline else (0.0, 0.0))
                last[pid] = used

    def start(self) -> None:
        self._sample(baseline=True)
        super().start()

    def stop(self) -> dict[str, float]:
        self.halt()
        self._sample(baseline=False)
        out = {
            role: sum(self._last[role][pid][0] - first[pid][0] for pid in first)
            for role, first in self._first.items()
        }
        self.waited = {
            role: sum(self._last[role][pid][1] - first[pid][1] for pid in first)
            for role, first in self._first.items()
        }
        self._first, self._last = {}, {}
        return out


class WaitSampler(Sampler):
    """What the worker's PostgreSQL backends are doing, every `interval` s while running:
    counts of `state` or, when active and waiting, `wait_event_type:wait_event` (Lock:...
    is a lock wait between drains)."""

    def __init__(self, dsn: str, role: str = "worker", interval: float = 0.05):
        super().__init__(interval)
        self.conn = psycopg.connect(dsn, autocommit=True, application_name=BENCH_APP)
        self.name = APP_PREFIX + role
        self.counts: dict[str, int] = {}

    def __exit__(self, *exc: object) -> None:
        super().__exit__()
        self.conn.close()

    def sample(self) -> None:
        for state, wait in self.conn.execute(
            "SELECT state, wait_event_type || ':' || wait_event FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            (self.name,),
        ):
            key = wait if state == "active" and wait else state
            self.counts[key] = self.counts.get(key, 0) + 1


def pg_backends(dsn: str, role: str) -> Callable[[], list[int]]:
    """The pids of the PostgreSQL backends serving `role`'s processes (devtools.processes.Stack
    names them by PGAPPNAME)."""
    conn = psycopg.connect(dsn, autocommit=True, application_name=BENCH_APP)
    lock = threading.Lock()

    def pids() -> list[int]:
        with lock:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = %s",
                    (APP_PREFIX + role,),
                )
            ]

    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds so far of `pid` and its descendants."""
    return sum(used[0] for used in map(cpu_of, process_tree(pid)) if used is not None)


# -- what the stack recorded -----------------------------------------------------------


def task_counts(logs: Path) -> dict[str, int]:
    """Tasks run so far, by name: the line each writes to its process's log when it ends
    (workers/observability.py; -l info)."""
    counts = {}
    for role, task in (("worker", "inbound.drain"), ("worker", "events.publish"),
                       ("deliveries", "deliveries.send")):  # fmt: skip
        text = (logs / f"{role}.log").read_text(errors="replace")
        mark = f'"task": "{task}"'
        counts[task] = sum(
            mark in line and '"message": "task"' in line for line in text.splitlines()
        )
    return counts


def transactions(dsn: str) -> int:
    """Transactions committed so far in the database (autocommit statements included)."""
    with psycopg.connect(dsn, autocommit=True, application_name=BENCH_APP) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def delivery_hold() -> float:
    """Seconds past its claim that a delivery's claim sets next_attempt_at to."""
    from service.config import Settings
    from service.operations.deliver import longest_batch_seconds

    return longest_batch_seconds(Settings.__dataclass_fields__["delivery_timeout"].default) + 30


def stage_stamps(dsn: str, redis_url: str, sent_at: dict[str, float], committed: dict[str, float],
            arrived: dict[str, float], keys: list[str],
            hold: float) -> dict[str, dict[str, float | None]]:  # fmt: skip
    """When each of `keys` (invoices) passed each stage, from what the system recorded."""
    sent = {key: sent_at[key] for key in keys if key in sent_at}
    pis = [key.replace("in_", "pi_", 1) for key in keys]
    with psycopg.connect(dsn, autocommit=True, application_name=BENCH_APP) as conn:
        inbound = {
            "in_" + r[0][3:]: (r[1], r[2])
            for r in conn.execute(
                "SELECT payload->'data'->'object'->>'id', extract(epoch FROM received_at)::float8,"
                " extract(epoch FROM processed_at)::float8 FROM inbound_events"
                " WHERE type = 'payment_intent.succeeded'"
                " AND payload->'data'->'object'->>'id' = ANY(%s)",
                (pis,),
            )
        }
        taken = {
            r[0]: r[1] - hold
            for r in conn.execute(
                "SELECT e.data->'object'->>'id', extract(epoch FROM d.next_attempt_at)::float8"
                " FROM webhook_deliveries d JOIN events e ON e.id = d.event_id"
                " WHERE e.type = 'invoice.paid' AND d.status = 'succeeded' AND d.attempts = 1"
                " AND e.data->'object'->>'id' = ANY(%s)",
                (keys,),
            )
        }
    published: dict[str, float] = {}
    client = redis.Redis.from_url(redis_url)
    start = f"{int((min(sent.values()) - 1) * 1000)}-0"
    while True:
        entries = client.xrange(STREAM_KEY, min=start, count=2000)
        for entry_id, fields in entries:
            if fields[b"type"] == b"invoice.paid":
                invoice = json.loads(fields[b"payload"])["data"]["object"]["id"]
                published.setdefault(invoice, int(entry_id.split(b"-")[0]) / 1000)
        if len(entries) < 2000:
            break
        ms, n = entries[-1][0].split(b"-")
        start = f"{int(ms)}-{int(n) + 1}"
    return {
        key: {
            "sent": sent.get(key),
            "stored": inbound.get(key, (None, None))[0],
            "claimed": inbound.get(key, (None, None))[1],
            "committed": committed.get(key),
            "published": published.get(key),
            "taken": taken.get(key),
            "posted": arrived.get(key),
        }
        for key in keys
    }
