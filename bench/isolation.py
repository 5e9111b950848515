"""One dead webhook receiver must not delay the others (issue 20, item 3).

    .venv/bin/python bench/isolation.py [--events 300] [--rate 20] [--wait 150]
        [--linger 60] [--json PATH]

Against a scratch database and a private redis-server, the Procfile's web, worker,
deliveries (threads pool, concurrency 8) and beat processes run with the production
settings (retry schedule, delivery timeout, sweep interval). Two endpoints are
subscribed to invoice.finalized: a healthy loopback receiver, and a black hole (a
loopback socket that accepts connections and never answers). --events draft invoices
are finalized over HTTP at --rate per second; the figures are, for the healthy
receiver, the time from each finalize request sent to its invoice.finalized arriving,
and for the black hole, how many connections to it were open at once (a deliveries
thread each), how many attempts were recorded and whether it was disabled.

The run stops --linger seconds after the healthy receiver has every event (the black
hole meanwhile gets what it gets), or --wait seconds after the last request.
tests/test_isolation.py runs it in a short form.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/isolation.py` as well as `-m bench.isolation`

from bench.common import BENCH_SECRET, finalize_paced, log, run_env, subscribe  # noqa: E402
from bench.rows import clone, templates  # noqa: E402
from devtools.processes import Stack  # noqa: E402
from devtools.receiver import Receiver  # noqa: E402
from devtools.servers import RedisServer, scratch_database  # noqa: E402
from devtools.stats import percentile  # noqa: E402
from devtools.waiting import wait_until  # noqa: E402

WARMUP = 10  # events finalized, and delivered to the healthy receiver, before measuring


class BlackHole:
    """A loopback listener that accepts connections, reads whatever comes, and never
    answers; it counts the connections open at once (each holds a deliveries thread)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.open = 0
        self.most_open = 0
        self.accepted = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.open += 1
                self.most_open = max(self.most_open, self.open)
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        with connection:
            try:
                while connection.recv(65536):
                    pass
            except OSError:
                pass
        with self.lock:
            self.open -= 1

    def close(self) -> None:
        self.listener.close()


def run(events: int, rate: float, wait: float, linger: float) -> dict[str, Any]:
    name = f"tally_bench_isolation_{os.getpid()}"
    with (
        tempfile.TemporaryDirectory(prefix="tally-isolation-") as tmpdir,
        RedisServer() as redis_server,
        scratch_database(name) as dsn,
    ):
        redis_url = redis_server.url
        # Both receivers are on loopback. The code of this tree, whatever checkout the
        # venv was installed from.
        env = run_env(dsn, redis_url, STRIPE_WEBHOOK_SECRETS=BENCH_SECRET, PYTHONPATH=str(ROOT))
        draft = templates(dsn, redis_url, draft={"attach": False, "finalize": False})["draft"]
        with psycopg.connect(dsn, autocommit=True) as conn:
            clone(conn, draft, "D", WARMUP + events, ("customers", "invoices", "invoice_items"))
        invoices = [f"in_D{k}" for k in range(1, WARMUP + events + 1)]

        healthy = Receiver()
        dead = BlackHole()
        stack = Stack(env, Path(tmpdir))
        try:
            base = stack.start_web("web")
            for process in ("worker", "deliveries", "beat"):
                stack.start(process, process)
            subscribe(base, healthy.url, "invoice.finalized")
            # Warm up (workers starting, pools, prepared statements) with the healthy
            # receiver alone; then the black hole subscribes too.
            finalize_paced(base, invoices[:WARMUP], rate)
            if not wait_until(lambda: len(healthy.event_ids()) >= WARMUP, 60, 0.1):
                for path in sorted(Path(tmpdir).glob("*.log")):
                    print(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
                raise RuntimeError(f"warm-up: {len(healthy.event_ids())}/{WARMUP} delivered")
            dead_id = subscribe(base, dead.url, "invoice.finalized")
            measured = invoices[WARMUP:]
            log(f"finalizing {events} invoices at {rate:g}/s")
            sent = {i: at for i, (at, _) in finalize_paced(base, measured, rate).items()}
            last_sent = max(sent.values())

            def arrived() -> dict[str, float]:
                return healthy.arrivals("invoice.finalized")

            if wait_until(lambda: all(i in arrived() for i in measured), wait, 0.1):
                time.sleep(linger)
            elapsed = time.time() - min(sent.values())
            with psycopg.connect(dsn, autocommit=True) as conn:
                status = conn.execute(
                    "SELECT status FROM webhook_endpoints WHERE id = %s", (dead_id,)
                ).fetchone()[0]
                attempts = conn.execute(
                    "SELECT count(*) FROM webhook_delivery_attempts a"
                    " JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = %s",
                    (dead_id,),
                ).fetchone()[0]
                by_status = dict(
                    conn.execute(
                        "SELECT status, count(*) FROM webhook_deliveries WHERE endpoint_id = %s"
                        " GROUP BY status",
                        (dead_id,),
                    ).fetchall()
                )
        finally:
            stack.stop_all()
            healthy.stop()
            dead.close()
    at = arrived()
    latencies = sorted(at[i] - sent[i] for i in measured if i in at)
    return {
        "events": events,
        "rate_sent": (events - 1) / (last_sent - min(sent.values())) if events > 1 else rate,
        "run_seconds": round(elapsed, 1),
        "healthy": {
            "received": len(latencies),
            "p50_s": percentile(latencies, 50) if latencies else None,
            "p90_s": percentile(latencies, 90) if latencies else None,
            "p99_s": percentile(latencies, 99) if latencies else None,
            "max_s": latencies[-1] if latencies else None,
        },
        "dead": {
            "status": status,
            "attempts": attempts,
            "deliveries": by_status,
            "connections": dead.accepted,
            "most_open_at_once": dead.most_open,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--wait", type=float, default=150, help="seconds after the last event")
    parser.add_argument(
        "--linger", type=float, default=60, help="seconds to go on once all were delivered"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    # Stopped by SIGTERM (a test's timeout): unwind, so every process and database goes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = run(args.events, args.rate, args.wait, args.linger)
    h, d = result["healthy"], result["dead"]

    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    log(
        f"healthy receiver: {h['received']}/{result['events']} events at "
        f"{result['rate_sent']:.1f}/s, p50 {s(h['p50_s'])}, p90 {s(h['p90_s'])}, "
        f"p99 {s(h['p99_s'])}, max {s(h['max_s'])}"
    )
    log(
        f"black hole: {d['status']}, {d['attempts']} attempts, deliveries {d['deliveries']}, "
        f"{d['connections']} connections, at most {d['most_open_at_once']} open at once "
        f"(run {result['run_seconds']} s)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
