"""Benchmark POST /webhooks/stripe under gunicorn against a bare reference intake.

    .venv/bin/python bench/intake.py [--seconds 15] [--connections 16]
        [--workers 2] [--threads 8]

Both servers run under the same gunicorn settings, against a scratch database
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
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.localenv import free_port  # noqa: E402

SECRET = "whsec_bench_secret"
API_KEY = "sk_test_bench_key"

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
    from service.domain.events import payment_intent_event
    from service.domain.signatures import sign

    now = int(time.time())
    out = []
    for _ in range(count):
        pi = {
            "id": "pi_" + uuid.uuid4().hex[:24],
            "amount": 1299,
            "currency": "usd",
            "customer": "cus_" + uuid.uuid4().hex[:14],
        }
        event = payment_intent_event("payment_intent.succeeded", pi, now=now)
        body = json.dumps(event, separators=(",", ":"))
        out.append((sign(body.encode(), SECRET, now), body))
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
    workers = [threading.Thread(target=loop) for _ in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[int(len(latencies) * 0.99)],
        "errors": float(errors),
    }


# -- servers -----------------------------------------------------------------------------


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port}")


def gunicorn(target: str, port: int, env: dict[str, str], args: argparse.Namespace) -> Any:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", target, "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--worker-class", "gthread",
         "--threads", str(args.threads), "--keep-alive", "30", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    wait_port(port)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--only", choices=["tally", "reference"])
    args = parser.parse_args()

    import psycopg
    from psycopg.conninfo import make_conninfo

    from devtools.localenv import ensure_local_services
    from service.migrate import migrate

    urls = ensure_local_services(ROOT / ".tally-data", database_name="tally_bench")
    dsn = make_conninfo(urls["DATABASE_URL"], dbname="tally_bench")
    with psycopg.connect(make_conninfo(dsn, dbname="postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS tally_bench WITH (FORCE)")
    migrate(dsn)

    redis_port = free_port()
    redis_bin = shutil.which("redis-server") or "redis-server"
    redis_proc = subprocess.Popen(
        [redis_bin, "--port", str(redis_port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "TALLY_API_KEYS": API_KEY,
        "STRIPE_WEBHOOK_SECRETS_TEST": SECRET,
        "TALLY_RATE_LIMIT": "0",
    }
    servers = {
        "reference": "bench.intake:reference_app()",
        "tally": "service.app:create_app()",
    }
    if args.only:
        servers = {args.only: servers[args.only]}
    tmp = Path(tempfile.mkdtemp(prefix="tally-bench-"))
    use_wrk = shutil.which("wrk") is not None
    results: dict[str, dict[str, float]] = {}
    try:
        wait_port(redis_port)
        for name, target in servers.items():
            port = free_port()
            proc = gunicorn(target, port, env, args)
            try:
                url = f"http://127.0.0.1:{port}"
                # Unique events for the run: a duplicate would skip the INSERT and LPUSH.
                warm = signed_requests(8000)
                reqs = signed_requests(3000 * args.seconds)
                warm_path, path = tmp / f"{name}-warm.tsv", tmp / f"{name}.tsv"
                warm_path.write_text("".join(f"{sig}\t{body}\n" for sig, body in warm))
                path.write_text("".join(f"{sig}\t{body}\n" for sig, body in reqs))
                if use_wrk:
                    run_wrk(url, warm_path, 2, args.connections)
                else:
                    run_python_load(url, warm, 2, args.connections)
                with psycopg.connect(dsn, autocommit=True) as conn:
                    before = conn.execute("SELECT count(*) FROM inbound_events").fetchone()[0]
                if use_wrk:
                    result = run_wrk(url, path, args.seconds, args.connections)
                else:
                    result = run_python_load(url, reqs, args.seconds, args.connections)
                with psycopg.connect(dsn, autocommit=True) as conn:
                    after = conn.execute("SELECT count(*) FROM inbound_events").fetchone()[0]
                result["rows"] = float(after - before)
                results[name] = result
            finally:
                proc.terminate()
                proc.wait(10)
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    load = "wrk" if use_wrk else "python threads"
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
