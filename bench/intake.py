"""Benchmark POST /webhooks/stripe under gunicorn against a bare reference intake.

    .venv/bin/python bench/intake.py [--seconds 15] [--connections 16]
        [--workers 2] [--threads 8]

Both servers run under the Procfile's web line (WEB_CONCURRENCY workers of
WEB_THREADS threads), against a scratch database
(`tally_bench`, recreated) and a private redis-server, and get the same load: wrk
(if installed; `apt-get install -y wrk`) replaying pre-signed unique events over
keep-alive connections, else a Python thread pool. The reference is what an intake
cannot do without: HMAC check, one INSERT … ON CONFLICT DO NOTHING, one LPUSH, in a
bare Flask app. Prints req/s, p50 and p99 for each, and checks every request stored
exactly one row.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/intake.py` as well as `-m bench.intake`

from bench.common import BENCH_SECRET, in_threads, run_env  # noqa: E402
from devtools.processes import Stack  # noqa: E402
from devtools.servers import RedisServer, scratch_database  # noqa: E402
from devtools.stats import percentile  # noqa: E402
from devtools.stripe_events import signed_webhook, stripe_event  # noqa: E402

# -- the reference intake ----------------------------------------------------------------


def reference_app() -> Any:
    """The floor: verify, insert, LPUSH, answer. `gunicorn 'bench.intake:reference_app()'`."""
    import redis
    from flask import Flask, request
    from psycopg_pool import ConnectionPool

    app = Flask("reference")
    pool = ConnectionPool(
        os.environ["DATABASE_URL"], min_size=1, max_size=10, kwargs={"autocommit": True}
    )
    wake = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=0.5)
    secret = os.environ["STRIPE_WEBHOOK_SECRETS_TEST"].encode()

    @app.post("/webhooks/stripe")
    def intake() -> Any:
        body = request.get_data()
        parts = dict(p.split("=", 1) for p in request.headers["Stripe-Signature"].split(","))
        expected = hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts["v1"]):
            return {"error": "bad signature"}, 400
        event = json.loads(body)
        with pool.connection() as conn:
            new = conn.execute(
                "INSERT INTO inbound_events (id, type, livemode, payload)"
                " VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (id) DO NOTHING RETURNING seq",
                (event["id"], event["type"], event.get("livemode", False), body.decode()),
            ).fetchone()
        if new:
            wake.lpush("tally:inbound", event["id"])
        return {"received": True}

    return app


# -- load ----------------------------------------------------------------------------------


def signed_requests(count: int) -> list[tuple[str, str]]:
    """`count` unique payment_intent.succeeded events, each with its Stripe-Signature."""
    out = []
    for _ in range(count):
        pi = {"id": "pi_" + uuid.uuid4().hex[:24], "amount": 1299, "currency": "usd",
              "customer": "cus_" + uuid.uuid4().hex[:14]}  # fmt: skip
        event = stripe_event(pi, "payment_intent.succeeded")
        body = json.dumps(event, separators=(",", ":"))  # one line of wrk's input each
        out.append((signed_webhook(body.encode(), BENCH_SECRET)[1]["Stripe-Signature"], body))
    return out


WRK_SCRIPT = """
-- Each wrk thread replays its share of pre-signed requests (wrk's Lua has no HMAC).
local reqs = {}
local n = 0
local i = 0
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  local k = 0
  local nthreads = tonumber(args[2])
  for line in io.lines(args[1]) do
    if k % nthreads == tid then
      local sig, body = line:match("^([^\\t]*)\\t(.*)$")
      n = n + 1
      reqs[n] = wrk.format("POST", "/webhooks/stripe",
        {["Content-Type"] = "application/json", ["Stripe-Signature"] = sig}, body)
    end
    k = k + 1
  end
end
function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
"""


def run_wrk(url: str, requests_file: Path, seconds: int, connections: int) -> dict[str, float]:
    threads = 2
    script = requests_file.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(script), url, "--", str(requests_file), str(threads)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": rps,
        "p50": pct("50"),
        "p99": pct("99"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def run_python_load(
    url: str, reqs: list[tuple[str, str]], seconds: int, connections: int
) -> dict[str, float]:
    import requests

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    cursor = iter(range(len(reqs)))

    def loop() -> None:
        nonlocal errors
        session = requests.Session()
        mine: list[float] = []
        bad = 0
        while time.monotonic() < deadline:
            with lock:
                k = next(cursor, None)
            if k is None:
                break
            sig, body = reqs[k]
            started = time.perf_counter()
            status = session.post(
                url + "/webhooks/stripe", data=body, headers={"Stripe-Signature": sig}
            ).status_code
            mine.append((time.perf_counter() - started) * 1000)
            bad += status != 200
        with lock:
            latencies.extend(mine)
            errors += bad

    started = time.monotonic()
    in_threads(loop, connections)
    elapsed = time.monotonic() - started
    return {
        "rps": len(latencies) / elapsed,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "errors": float(errors),
    }


def measure_intake(base: str, dsn: str, prefix: Path, warm_count: int, count: int,
                   seconds: int, connections: int) -> dict[str, Any]:  # fmt: skip
    """Warm the intake at `base` up (2 s), then load it for `seconds` over `connections`
    with `count` unique signed events (wrk if installed, else Python threads): req/s,
    p50, p99, non-2xx, and the rows it stored (each request must store one)."""
    use_wrk = shutil.which("wrk") is not None
    warm, reqs = signed_requests(warm_count), signed_requests(count)
    warm_path, path = prefix.with_name(f"{prefix.name}-warm.tsv"), prefix.with_suffix(".tsv")
    warm_path.write_text("".join(f"{sig}\t{body}\n" for sig, body in warm))
    path.write_text("".join(f"{sig}\t{body}\n" for sig, body in reqs))

    def load(file: Path, requests: list[tuple[str, str]], seconds: int) -> dict[str, float]:
        if use_wrk:
            return run_wrk(base, file, seconds, connections)
        return run_python_load(base, requests, seconds, connections)

    def rows() -> int:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return int(conn.execute("SELECT count(*) FROM inbound_events").fetchone()[0])  # type: ignore[index]

    load(warm_path, warm, 2)
    before = rows()
    result: dict[str, Any] = load(path, reqs, seconds)
    result["rows"] = rows() - before
    result["load"] = "wrk" if use_wrk else "python threads"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--only", choices=["tally", "reference"])
    args = parser.parse_args()
    servers = {"reference": "'bench.intake:reference_app()'", "tally": None}
    if args.only:
        servers = {args.only: servers[args.only]}
    results: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="tally-bench-") as tmpdir,
        RedisServer() as redis_server,
        scratch_database("tally_bench") as dsn,
    ):
        tmp = Path(tmpdir)
        env = run_env(dsn, redis_server.url, WEB_CONCURRENCY=str(args.workers),
                      WEB_THREADS=str(args.threads))  # fmt: skip
        stack = Stack(env, tmp)
        for name, app in servers.items():
            base = stack.start_web(name, app) if app else stack.start_web(name)
            try:
                # Unique events for the run: a duplicate would skip the INSERT and LPUSH.
                results[name] = measure_intake(base, dsn, tmp / name, 8000, 3000 * args.seconds,
                                               args.seconds, args.connections)  # fmt: skip
            finally:
                stack.stop(name)
    load = next(iter(results.values()))["load"]
    print(
        f"\nPOST /webhooks/stripe, {args.connections} connections, {args.seconds}s, "
        f"gunicorn gthread {args.workers}x{args.threads}, load: {load}, cores: {os.cpu_count()}"
    )
    print(f"{'server':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'rows':>8}")
    for name, r in results.items():
        print(
            f"{name:<10} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
            f"{r['errors']:>8.0f} {r['rows']:>8.0f}"
        )


if __name__ == "__main__":
    main()
