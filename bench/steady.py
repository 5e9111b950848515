"""Steady-rate end to end: signed webhooks at fractions of the same run's bare-intake
reference, through the Procfile's processes, to one loopback endpoint.

    .venv/bin/python -m bench.steady [--quick] [--fractions 0.1,0.2,0.3] [--seconds 20]

1. The reference (bench/intake.py's bare intake: HMAC, INSERT, LPUSH) runs under the
   Procfile's web line and is flooded over 8 kept-alive connections: its req/s is the
   run's yardstick. It is then paced at the middle fraction to measure its CPU per
   request, the floor a webhook's CPU budget is compared with.
2. The web, worker, deliveries and beat lines start; a receiver subscribed to
   invoice.paid listens on loopback. For each fraction f, webhooks for attached
   invoices are sent at f x the reference's req/s for `seconds`. Each webhook's stages,
   wall clock, from what the system already records:

       sent       the sender, just before the request
       stored     inbound_events.received_at (the intake's transaction)
       claimed    inbound_events.processed_at: now() of the batch's transaction, which
                  starts when its claim has committed
       committed  a trigger's NOTIFY on invoice.paid, delivered by PostgreSQL at commit
       published  the invoice.paid entry's id on the Redis stream (ms at XADD); the
                  drain dispatches deliveries right after it publishes
       taken      the deliveries task claimed it: webhook_deliveries.next_attempt_at
                  less the hold its claim set (operations/deliver.py)
       posted     the receiver read the POST

   and for each fraction: committed and delivered p50/p99/max, the longest silence (the
   longest gap between two consecutive commits) with every silence over 1 s, whether it
   kept up (every webhook delivered, the asked rate reached, and the last second's
   webhooks delivered within a second: a growing backlog shows there), and the CPU time
   per webhook of each process: web, worker, deliveries, beat, the private redis-server,
   the PostgreSQL backends serving each of them (told apart by application_name, which
   bench/stack.py sets per process), and, apart, the sender and the receiver.

The knee is the highest fraction that kept up with delivered p99 <= 250 ms. Every load
loop is bounded; everything listens on 127.0.0.1. `python -m bench` runs the same
phase with its intake reference. Writes bench/results/steady.json and steady.png.
"""

from __future__ import annotations

import argparse
import http.server
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import percentile  # noqa: E402

FRACTIONS = (0.1, 0.2, 0.3)
SILENCE_S = 1.0  # a gap between commits longer than this is reported
KNEE_P99_MS = 250.0
CONNECTIONS = 8
BENCH_APP = "bench"  # application_name of the benchmark's own PostgreSQL connections
STAGES = ("sent", "stored", "claimed", "committed", "published", "taken", "posted")


# -- pure figures (tests/test_bench_steady.py) --------------------------------------------


def silences(times: Iterable[float], longer_than: float = 0.0) -> list[tuple[float, float]]:
    """(start, length) of each gap between consecutive `times` longer than `longer_than`,
    longest first."""
    ordered = sorted(times)
    gaps = [(a, b - a) for a, b in itertools.pairwise(ordered) if b - a > longer_than]
    return sorted(gaps, key=lambda gap: -gap[1])


def kept_up(
    sent: dict[str, float], delivered: dict[str, float], asked_rate: float, *, tail_s: float = 1.0
) -> bool:
    """Every webhook delivered, the sender reached 95% of `asked_rate`, and those sent in
    the last `tail_s` seconds were each delivered within `tail_s` of being sent."""
    if not sent or any(key not in delivered for key in sent):
        return False
    first, last = min(sent.values()), max(sent.values())
    if len(sent) > 1 and (len(sent) - 1) / max(last - first, 1e-9) < 0.95 * asked_rate:
        return False
    tail = [key for key, at in sent.items() if at >= last - tail_s]
    return all(delivered[key] - sent[key] <= tail_s for key in tail)


def knee(rows: list[dict[str, Any]], p99_ms: float = KNEE_P99_MS) -> float | None:
    """The highest fraction that kept up with delivered p99 at most `p99_ms`."""
    good = [r["fraction"] for r in rows if r["kept_up"] and r["delivered"]["p99"] <= p99_ms]
    return max(good, default=None)


def stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


# -- CPU accounting -----------------------------------------------------------------------


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


class CpuMeter:
    """CPU seconds each role's processes spent between start() and stop(), and (in
    `waited`) seconds they were ready to run but waited for a CPU. Sampled every
    `interval` s, so a process that exits in between (a PostgreSQL backend of a pool
    that shrank) keeps what it spent until its last sample; one that appears counts
    from zero."""

    def __init__(self, roles: dict[str, Callable[[], list[int]]], interval: float = 0.25):
        self.roles, self.interval = roles, interval
        self._first: dict[str, dict[int, tuple[float, float]]] = {}
        self._last: dict[str, dict[int, tuple[float, float]]] = {}
        self.waited: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(baseline=False)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread:
            self._thread.join()
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


class WaitSampler:
    """What the worker's PostgreSQL backends are doing, every `interval` s while running:
    counts of `state` or, when active and waiting, `wait_event_type:wait_event` (Lock:...
    is a lock wait between drains)."""

    def __init__(self, dsn: str, role: str = "worker", interval: float = 0.05):
        import psycopg

        from bench.stack import APP_PREFIX

        self.conn = psycopg.connect(dsn, autocommit=True, application_name=BENCH_APP)
        self.name, self.interval = APP_PREFIX + role, interval
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.conn.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for state, wait in self.conn.execute(
                "SELECT state, wait_event_type || ':' || wait_event FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                (self.name,),
            ):
                key = wait if state == "active" and wait else state
                self.counts[key] = self.counts.get(key, 0) + 1


def pg_backends(dsn: str, role: str) -> Callable[[], list[int]]:
    """The pids of the PostgreSQL backends serving `role`'s processes (bench/stack.py
    names them by PGAPPNAME)."""
    import psycopg

    from bench.stack import APP_PREFIX

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


# -- the sender and the receiver: processes of their own, so their CPU is apart -------------


def send(url: str, bodies: list[tuple[str, bytes, str]], rate: float, seconds: float) -> dict:
    """POST `bodies` ((key, body, signature)) to `url` over CONNECTIONS kept-alive
    connections: paced at `rate`/s, or, with rate 0, as fast as answers come for
    `seconds`. Returns when each was sent (wall clock), the statuses, the req/s reached
    and this process's CPU seconds while sending."""
    parts = urlsplit(url)
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))
    sent: dict[str, float] = {}
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    start = time.perf_counter() + 0.1
    deadline = start + seconds if not rate else float("inf")

    def loop() -> None:
        http = HTTPConnection(parts.hostname, parts.port, timeout=10)
        while True:
            with lock:
                k = next(cursor, None)
            if k is None:
                return
            key, body, signature = bodies[k]
            if rate:
                delay = start + k / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            elif time.perf_counter() > deadline:
                return
            at, began = time.time(), time.perf_counter()
            http.request(
                "POST", parts.path, body=body,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            )  # fmt: skip
            response = http.getresponse()
            response.read()
            ended = time.perf_counter()
            with lock:
                sent[key] = at
                statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append((ended - began) * 1000)

    cpu_before = time.process_time()
    threads = [threading.Thread(target=loop) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = time.process_time() - cpu_before
    span = max(sent.values()) - min(sent.values()) if len(sent) > 1 else 0.0
    return {
        "sent": sent,
        "statuses": statuses,
        "rps": (len(sent) - 1) / span if span else 0.0,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "cpu": cpu,
    }


def signed_bodies(tag: str, first: int, count: int, secret: str) -> list[tuple[str, bytes, str]]:
    """payment_intent.succeeded for pi_<tag><k>, k = first..first+count-1, keyed by the
    invoice in_<tag><k> (bench/stack.py's clones); a random id for tag ''."""
    import uuid

    from service.domain.events import payment_intent_event
    from service.domain.signatures import sign

    now = int(time.time())
    out = []
    for k in range(first, first + count):
        suffix = f"{tag}{k}" if tag else uuid.uuid4().hex[:20]
        pi = {"id": f"pi_{suffix}", "amount": 1299, "currency": "usd", "customer": f"cus_{suffix}"}
        body = json.dumps(payment_intent_event("payment_intent.succeeded", pi, now=now)).encode()
        out.append((f"in_{suffix}", body, sign(body, secret, now)))
    return out


def run_sender(url: str, tag: str, first: int, count: int, rate: float, seconds: float) -> dict:
    """The sender in a process of its own; its JSON answer (see send)."""
    command = [sys.executable, "-m", "bench.steady", "send", url, "--tag", tag,
               "--first", str(first), "--count", str(count), "--rate", str(rate),
               "--seconds", str(seconds)]  # fmt: skip
    out = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=True,
        timeout=count / (rate or count / max(seconds, 1)) + 120,
    )  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


class Receiver:
    """The loopback endpoint, in a process of its own (`python -m bench.steady receive`):
    it keeps connections open and records when each invoice.paid arrived (wall clock);
    GET /arrivals returns them."""

    def __init__(self, logs: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.steady", "receive"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=(logs / "receiver.log").open("ab"),
            text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def arrivals(self) -> dict[str, float]:
        http = HTTPConnection("127.0.0.1", self.port, timeout=10)
        http.request("GET", "/arrivals")
        return json.loads(http.getresponse().read())  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def serve_receiver() -> None:
    from devtools.localenv import free_port

    arrived: dict[str, float] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.time()
            event = json.loads(body)
            if event.get("type") == "invoice.paid":
                arrived.setdefault(event["data"]["object"]["id"], now)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            body = json.dumps(arrived).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(server.server_address[1], flush=True)
    server.serve_forever()


# -- the phases ---------------------------------------------------------------------------


def reference_phase(stack: Any, dsn: str, redis_url: str, fraction: float, seconds: float,
                    flood_s: float) -> dict[str, Any]:  # fmt: skip
    """The bare intake under the web line: its req/s flooded (the yardstick), then its
    CPU per request paced at `fraction` of that. Its rows and wake-ups are purged."""
    import psycopg
    import redis

    base = stack.start_web("reference", "'bench.intake:reference_app()'")
    url = f"{base}/webhooks/stripe"
    meter = CpuMeter(
        {
            "web": lambda: _tree(stack.procs["reference"].pid),
            "redis": lambda: [redis_pid(redis_url)],
            "pg web": pg_backends(dsn, "reference"),
        }
    )
    try:
        run_sender(url, "", 0, 4000, 0, 2)  # warm-up
        flood = run_sender(url, "", 0, int(3000 * flood_s), 0, flood_s)
        rate = fraction * flood["rps"]
        count = int(rate * seconds)
        meter.start()
        paced = run_sender(url, "", 0, count, rate, seconds)
        cpu = meter.stop()
    finally:
        stack.stop("reference")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM inbound_events")
    redis.Redis.from_url(redis_url).flushall()
    per_request = {role: used * 1000 / count for role, used in cpu.items()}
    per_request["sender"] = paced["cpu"] * 1000 / count
    return {
        "rps": flood["rps"],
        "p50": flood["p50"],
        "p99": flood["p99"],
        "paced_rate": paced["rps"],
        "cpu_ms": per_request,
        "non_2xx": sum(n for s, n in paced["statuses"].items() if not str(s).startswith("2")),
    }


def redis_pid(redis_url: str) -> int:
    import redis

    return int(redis.Redis.from_url(redis_url).info("server")["process_id"])


def _tree(pid: int) -> list[int]:
    from bench.stack import _tree as tree

    return tree(pid)


def steady_phase(stack: Any, dsn: str, redis_url: str, base: str, reference_rps: float,
                 fractions: tuple[float, ...], seconds: float, logs: Path,
                 warm_s: float = 2.0) -> dict[str, Any]:  # fmt: skip
    """Each fraction of `reference_rps` in turn for `seconds`, against the running web,
    worker, deliveries and beat; returns each fraction's figures and series."""
    import psycopg
    import requests

    from bench.common import BENCH_KEY, notify_when_paid
    from bench.stack import clone, make_template
    from service.app import create_app
    from service.config import Settings
    from service.domain.signatures import WebhookSecrets

    rates = [f * reference_rps for f in fractions]
    counts = [int(r * seconds) for r in rates]
    warm = int(rates[0] * warm_s)
    app = create_app(
        Settings(
            database_url=dsn, redis_url=redis_url, api_keys=(BENCH_KEY,),
            webhook_secrets=WebhookSecrets(test=()),
        )
    )  # fmt: skip
    try:
        template = make_template(app, BENCH_KEY, attach=True)
    finally:
        app.extensions["pool"].close()
    tables = ("customers", "invoices", "invoice_items", "payment_intents", "invoice_payments")
    with psycopg.connect(dsn, autocommit=True, application_name=BENCH_APP) as conn:
        clone(conn, template, "S", warm + sum(counts), tables)
        conn.execute("VACUUM ANALYZE")
    notify_when_paid(dsn)
    receiver = Receiver(logs)
    endpoint = requests.post(
        f"{base}/v1/webhook_endpoints",
        data={"url": receiver.url, "enabled_events[]": "invoice.paid"},
        headers={"Authorization": f"Bearer {BENCH_KEY}"},
        timeout=10,
    )
    assert endpoint.status_code == 200, endpoint.text
    committed: dict[str, float] = {}
    stop_listening = threading.Event()
    listening = threading.Event()

    def listen() -> None:
        with psycopg.connect(dsn, autocommit=True, application_name=BENCH_APP) as conn:
            conn.execute("LISTEN bench_paid")
            listening.set()
            while not stop_listening.is_set():
                for note in conn.notifies(timeout=0.5):
                    committed.setdefault(note.payload, time.time())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    listening.wait(10)
    roles = {
        name: (lambda name=name: _tree(stack.procs[name].pid))
        for name in ("web", "worker", "deliveries", "beat")
    }
    roles["redis"] = lambda: [redis_pid(redis_url)]
    for name in PG_ROLES:
        roles[f"pg {name}"] = pg_backends(dsn, name)
    roles["receiver"] = lambda: [receiver.proc.pid]
    meter = CpuMeter(roles)
    url = f"{base}/webhooks/stripe"
    hold = _delivery_hold()
    rows: list[dict[str, Any]] = []
    try:
        run_sender(url, "S", 1, warm, rates[0], warm_s)
        _settle(dsn, receiver, [f"in_S{k}" for k in range(1, warm + 1)])
        first = warm + 1
        for fraction, rate, count in zip(fractions, rates, counts, strict=True):
            keys = [f"in_S{k}" for k in range(first, first + count)]
            tasks_before, xacts_before = _tasks(logs), _transactions(dsn)
            meter.start()
            with WaitSampler(dsn) as waits:
                sender = run_sender(url, "S", first, count, rate, seconds)
                arrived = _settle(dsn, receiver, keys)
            cpu = meter.stop()
            tasks = {name: n - tasks_before[name] for name, n in _tasks(logs).items()}
            xacts = _transactions(dsn) - xacts_before
            first += count
            row = _figures(dsn, redis_url, fraction, rate, sender, committed, arrived, keys, hold)
            row["cpu_ms"] = {role: used * 1000 / count for role, used in cpu.items()}
            row["cpu_ms"]["sender"] = sender["cpu"] * 1000 / count
            row["pg_worker_states"] = waits.counts
            row["run_queue_ms"] = {role: w * 1000 / count for role, w in meter.waited.items()}
            row["per_webhook"] = {
                **{f"{name} tasks": n / count for name, n in tasks.items()},
                "crediting batches": row.pop("batches") / count,
                "PostgreSQL transactions": xacts / count,
            }
            rows.append(row)
            log_row(row)
    finally:
        stop_listening.set()
        listener.join(5)
        receiver.stop()
    return {"reference_rps": reference_rps, "seconds": seconds, "rows": rows, "knee": knee(rows)}


def _tasks(logs: Path) -> dict[str, int]:
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


def _transactions(dsn: str) -> int:
    """Transactions committed so far in the database (autocommit statements included)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True, application_name=BENCH_APP) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def _delivery_hold() -> float:
    """Seconds past its claim that a delivery's claim sets next_attempt_at to."""
    from service.config import Settings
    from service.operations.deliver import longest_batch_seconds

    return longest_batch_seconds(Settings.__dataclass_fields__["delivery_timeout"].default) + 30


def _settle(dsn: str, receiver: Receiver, keys: list[str], timeout: float = 60) -> dict[str, float]:
    """Wait (bounded) until every one of `keys` was delivered and nothing is pending or
    unpublished; the arrivals."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True, application_name=BENCH_APP) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM inbound_events WHERE status = 'pending')"
                " + (SELECT count(*) FROM event_outbox)"
                " + (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')"
            ).fetchone()
            if row and row[0] == 0:
                break
            time.sleep(0.2)
    arrived = receiver.arrivals()
    missing = sum(key not in arrived for key in keys)
    if missing:
        log(f"warning: {missing} of {len(keys)} not delivered within {timeout:.0f}s")
    return arrived


def _figures(dsn: str, redis_url: str, fraction: float, rate: float, sender: dict[str, Any],
             committed: dict[str, float], arrived: dict[str, float], keys: list[str],
             hold: float) -> dict[str, Any]:  # fmt: skip
    import psycopg
    import redis

    from service.adapters.stream import STREAM_KEY

    sent = {key: sender["sent"][key] for key in keys if key in sender["sent"]}
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
    stamps = {
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
    steps = {}
    for a, b in itertools.pairwise(STAGES):
        steps[f"{a}->{b}"] = stats(
            [(s[b] - s[a]) * 1000 for s in stamps.values() if s[a] is not None and s[b] is not None]
        )
    commit_times = [committed[k] for k in keys if k in committed]
    gaps = silences(commit_times, SILENCE_S)
    t0 = min(sent.values())
    longest = silences(commit_times)[:1]
    return {
        "fraction": fraction,
        "asked_rate": rate,
        "rate": sender["rps"],
        "sent": len(sent),
        "non_2xx": sum(n for s, n in sender["statuses"].items() if not str(s).startswith("2")),
        "committed": stats([(committed[k] - sent[k]) * 1000 for k in sent if k in committed]),
        "delivered": stats([(arrived[k] - sent[k]) * 1000 for k in sent if k in arrived]),
        "longest_silence_s": longest[0][1] if longest else float("nan"),
        "longest_silence": (
            {"at_s": longest[0][0] - t0, "stalled": _stalled(stamps, *longest[0])}
            if longest
            else None
        ),
        "silences": [
            {"at_s": at - t0, "length_s": length, "stalled": _stalled(stamps, at, length)}
            for at, length in gaps
        ],
        # Longest gap with nothing happening at each stage, over the whole fraction.
        "stage_silences_s": {
            stage: (silences([s[stage] for s in stamps.values() if s[stage]])[:1] or [(0, 0)])[0][1]
            for stage in STAGES
        },
        "kept_up": kept_up(sent, arrived, rate),
        # One batch, one transaction: its events share processed_at (its now()).
        "batches": len({s["claimed"] for s in stamps.values() if s["claimed"]}),
        "steps": steps,
        "series": [
            [round(s["sent"] - t0, 4)]
            + [round((s[x] - s["sent"]) * 1000, 2) if s[x] else None for x in STAGES[1:]]
            for s in sorted(stamps.values(), key=lambda s: s["sent"] or 0)
            if s["sent"]
        ],
    }


def _stalled(stamps: dict[str, dict[str, float | None]], at: float, length: float) -> dict:
    """For the webhooks committed just after a silence: how long each waited at each
    stage up to its commit (p50 ms), which says where the silence was spent."""
    after = [
        s for s in stamps.values()
        if s["committed"] and at + length - 0.001 <= s["committed"] <= at + length + 0.2
    ]  # fmt: skip
    out = {}
    for a, b in itertools.pairwise(STAGES[:4]):
        values = [(s[b] - s[a]) * 1000 for s in after if s[a] and s[b]]  # type: ignore[operator]
        out[f"{a}->{b}"] = round(percentile(values, 50), 1) if values else None
    out["webhooks"] = len(after)
    return out


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def log_row(row: dict[str, Any]) -> None:
    c, d = row["committed"], row["delivered"]
    log(
        f"{row['fraction']:.2f}x = {row['rate']:.0f}/s ({row['sent']} sent): committed p50 "
        f"{c['p50']:.1f} p99 {c['p99']:.1f} max {c['max']:.1f} ms; delivered p50 {d['p50']:.1f}"
        f" p99 {d['p99']:.1f} max {d['max']:.1f} ms ({d['n']}); longest silence "
        f"{row['longest_silence_s']:.2f} s; {'kept up' if row['kept_up'] else 'FELL BEHIND'}"
    )


# -- tables and the plot ------------------------------------------------------------------


PG_ROLES = ("web", "worker", "deliveries", "beat")
CPU_ROLES = ("web", "worker", "deliveries", "beat", "redis", *(f"pg {r}" for r in PG_ROLES))


def _fraction(value: float | None) -> str:
    return "none" if value is None else f"{value:g}x"


def steady_table(result: dict[str, Any], reference: dict[str, Any]) -> str:
    """Latency per fraction, then CPU ms per webhook per process beside the reference's."""
    lines = [
        f"bare intake reference: {result['reference_rps']:.0f} req/s (8 connections); "
        f"knee: {_fraction(result['knee'])} "
        f"(highest fraction kept up with delivered p99 <= {KNEE_P99_MS:.0f} ms)",
        "",
        "| fraction | rate | committed p50 / p99 / max ms | delivered p50 / p99 / max ms "
        "| longest silence | silences > 1 s | kept up |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        c, d = r["committed"], r["delivered"]
        lines.append(
            f"| {r['fraction']:.2f}x | {r['rate']:.0f}/s | {c['p50']:.1f} / {c['p99']:.1f} / "
            f"{c['max']:.0f} | {d['p50']:.1f} / {d['p99']:.1f} / {d['max']:.0f} | "
            f"{r['longest_silence_s']:.2f} s | {len(r['silences'])} | "
            f"{'yes' if r['kept_up'] else 'no'} |"
        )
    lines += ["", "CPU ms per webhook (per request for the reference, paced at "
              f"{reference['paced_rate']:.0f}/s)", ""]  # fmt: skip
    head = ["process", *(f"{r['fraction']:.2f}x" for r in result["rows"]), "reference"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ref = reference["cpu_ms"]
    for role in (*CPU_ROLES, "tally + postgresql", "sender", "receiver"):

        def value(cpu: dict[str, float], role: str = role) -> float | None:
            if role == "tally + postgresql":
                return sum(cpu.get(x, 0.0) for x in CPU_ROLES)
            return cpu.get(role)

        cells = [value(r["cpu_ms"]) for r in result["rows"]] + [value(ref)]
        lines.append(
            f"| {role} | " + " | ".join("-" if v is None else f"{v:.2f}" for v in cells) + " |"
        )
    ratios = [
        sum(r["cpu_ms"].get(x, 0) for x in CPU_ROLES) / sum(ref.get(x, 0) for x in CPU_ROLES)
        for r in result["rows"]
    ]
    lines.append("| x reference | " + " | ".join(f"{x:.1f}x" for x in ratios) + " | 1.0x |")
    lines += [
        "",
        "Waited for a CPU (run queue), ms per webhook",
        "",
        "| process | " + " | ".join(head[1:-1]) + " |",
        "|" + "---|" * (len(head) - 1),
    ]
    for role in ("web", "worker", "deliveries", "pg worker", "pg deliveries"):
        lines.append(
            f"| {role} | "
            + " | ".join(f"{r['run_queue_ms'].get(role, 0):.2f}" for r in result["rows"])
            + " |"
        )
    lines += ["", "Per webhook", "", "| count | " + " | ".join(head[1:-1]) + " |",
              "|" + "---|" * (len(head) - 1)]  # fmt: skip
    for name in result["rows"][0]["per_webhook"]:
        lines.append(
            f"| {name} | " + " | ".join(f"{r['per_webhook'][name]:.2f}" for r in result["rows"])
            + " |"
        )  # fmt: skip
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 4.2), dpi=100, sharey=True)
    for ax, row in zip(axes if len(rows) > 1 else [axes], rows, strict=True):
        for index, name, color in ((3, "committed", "tab:blue"), (6, "delivered", "tab:orange")):
            points = [(s[0], s[index]) for s in row["series"] if s[index] is not None]
            ax.scatter([p[0] for p in points], [max(p[1], 0.1) for p in points], s=2, alpha=0.5,
                       color=color, label=f"{name} p99 {row[name]['p99']:.0f} ms")  # fmt: skip
        for n, silence in enumerate(row["silences"]):
            ax.axvspan(silence["at_s"], silence["at_s"] + silence["length_s"], color="red",
                       alpha=0.1, label=None if n else "silence > 1 s (commit time)")  # fmt: skip
        ax.axhline(KNEE_P99_MS, color="grey", linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel("seconds (webhook sent)")
        ax.set_title(f"{row['fraction']:.2f}x reference = {row['rate']:.0f}/s", fontsize=9)
        ax.legend(loc="upper left", fontsize=7, markerscale=3)
        ax.grid(True, which="both", alpha=0.2)
    (axes[0] if len(rows) > 1 else axes).set_ylabel("webhook sent -> (ms)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- standalone ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    sender = sub.add_parser("send")
    sender.add_argument("url")
    sender.add_argument("--tag", default="")
    sender.add_argument("--first", type=int, default=1)
    sender.add_argument("--count", type=int, required=True)
    sender.add_argument("--rate", type=float, default=0)
    sender.add_argument("--seconds", type=float, default=10)
    sub.add_parser("receive")
    parser.add_argument("--quick", action="store_true", help="8 s per fraction (else 20 s)")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--fractions", default=",".join(map(str, FRACTIONS)))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.command == "send":
        from bench.common import BENCH_SECRET

        bodies = signed_bodies(args.tag, args.first, args.count, BENCH_SECRET)
        print(json.dumps(send(args.url, bodies, args.rate, args.seconds)))
        return
    if args.command == "receive":
        serve_receiver()
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    from bench.__main__ import git_commit
    from bench.common import BENCH_KEY, BENCH_SECRET
    from bench.stack import Stack, private_redis, scratch_database

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    fractions = tuple(float(f) for f in args.fractions.split(","))
    seconds = args.seconds or (8 if args.quick else 20)
    load = os.getloadavg()[0]
    log(f"python -m bench.steady: {os.cpu_count()} cores, load average {load:.2f}")
    with (
        tempfile.TemporaryDirectory(prefix="tally-steady-") as tmpdir,
        private_redis() as redis_url,
        scratch_database("tally_bench_steady") as dsn,
    ):
        tmp = Path(tmpdir)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "STRIPE_"))}
        env.update({
            "DATABASE_URL": dsn, "REDIS_URL": redis_url, "TALLY_API_KEYS": BENCH_KEY,
            "STRIPE_WEBHOOK_SECRETS_TEST": BENCH_SECRET, "TALLY_RATE_LIMIT": "0",
            "TALLY_ALLOW_PRIVATE_WEBHOOK_URLS": "1", "PYTHONDONTWRITEBYTECODE": "1",
        })  # fmt: skip
        stack = Stack(env, tmp)
        try:
            middle = fractions[len(fractions) // 2]
            reference = reference_phase(stack, dsn, redis_url, middle, seconds, 4 if args.quick
                                        else 8)  # fmt: skip
            log(f"reference: {reference['rps']:.0f} req/s, p99 {reference['p99']:.1f} ms")
            base = stack.start_web("web")
            for name in ("worker", "deliveries", "beat"):
                stack.start(name, name)
            result = steady_phase(
                stack, dsn, redis_url, base, reference["rps"], fractions, seconds, tmp
            )
        finally:
            stack.stop_all()
    result["reference"] = reference
    header = (
        f"python -m bench.steady at {git_commit()}, {os.cpu_count()} cores, load average "
        f"{load:.2f} at start, {os.getloadavg()[0]:.2f} at end"
    )
    print(f"\n{header}\n\n{steady_table(result, reference)}\n")
    for row in result["rows"]:
        for silence in row["silences"]:
            print(f"  {row['fraction']:.2f}x silence at {silence['at_s']:.1f} s: "
                  f"{silence['length_s']:.2f} s, {silence['stalled']}")  # fmt: skip
        print(f"  {row['fraction']:.2f}x worker's backends, samples by state: "
              f"{row['pg_worker_states']}")  # fmt: skip
        if row["longest_silence"]:
            longest = row["longest_silence"]
            print(f"  {row['fraction']:.2f}x longest silence at {longest['at_s']:.1f} s: "
                  f"{row['longest_silence_s']:.2f} s, {longest['stalled']}")  # fmt: skip
        print(f"  {row['fraction']:.2f}x stages (p50 / p99 ms): " + ", ".join(
            f"{k} {v['p50']:.1f} / {v['p99']:.1f}" for k, v in row["steps"].items()))  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    plot(result, args.out / "steady.png", header)
    (args.out / "steady.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    log(f"wrote {args.out / 'steady.json'} and {args.out / 'steady.png'}")


if __name__ == "__main__":
    main()
