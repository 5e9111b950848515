"""`python -m bench [--quick]`: every benchmark in one run: one summary, one plot, one JSON.

Each figure is measured in the same run as its ceiling:

- intake (POST /webhooks/stripe) vs a minimal reference intake (HMAC, INSERT, LPUSH;
  bench/intake.py) under the same gunicorn line, same load (wrk if installed);
- backlog crediting by the real worker vs pgbench running Tally's own crediting
  transaction (bench/crediting.py) on a scratch database, as many clients as the
  worker has processes;
- attach_payment vs a Flask "hello" (bench/attach.py) under the same gunicorn line,
  same client concurrency;
- webhook -> invoice.paid committed and delivered at 0.1, 0.2 and 0.3x the bare
  intake reference's req/s (bench/steady.py): latencies, the longest silence, whether
  it kept up, the knee, and the CPU per webhook of each process beside the reference's
  per request;
- API call (finalize) -> invoice.finalized on the Redis stream;
- peak RSS of the web, worker and deliveries processes (VmHWM from /proc).

The stack is started from the Procfile lines (devtools.processes.Stack) against a private
redis-server and scratch databases that are dropped at the end; everything listens
on 127.0.0.1. Writes bench/results/summary.md (the tables, which docs/benchmarks.md
links) and bench/results/latency.png (the plot it shows), both committed, and
bench/results/latest.json and pgbench-crediting.sql (raw figures, the pgbench script),
which git ignores.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import redis

from bench import steady, steady_figures
from bench.attach import post_all
from bench.common import credit_stored, drained, git_commit, log, run_env
from bench.intake import measure_intake
from bench.meters import RssSampler
from bench.report import figures, table
from bench.rows import EVERYTHING, clone, pending_successes, success_body, templates
from devtools.processes import Stack
from devtools.procfile import ROOT
from devtools.servers import RedisServer, scratch_database
from devtools.stats import summary

RESULTS = ROOT / "bench" / "results"

PROFILES: dict[str, dict[str, Any]] = {
    # ~1-2 min: a smoke test of the whole command.
    "quick": {
        "intake_s": 4,
        "attach": 400,
        "backlog": 2000,
        "steady_s": 8,
        "api_rate": 50,
        "api_s": 4,
    },
    # ~5-8 min on the 2-core machine.
    "full": {
        "intake_s": 15,
        "attach": 3000,
        "backlog": 10000,
        "steady_s": 20,
        "api_rate": 50,
        "api_s": 20,
    },
}
CONNECTIONS = 8  # client concurrency of intake and attach (and their ceilings)
WARMUP_S = 2


# -- phases -----------------------------------------------------------------------------


def intake_phase(stack: Stack, dsn: str, redis_url: str, seconds: int, tmp: Path) -> dict[str, Any]:
    """Tally's intake and the reference, one after the other, under the same gunicorn line
    and the same load; no worker runs (the intake alone is measured). Rows and wake-ups
    are purged afterwards."""
    out: dict[str, Any] = {"seconds": seconds}
    for role, app in (("reference", "'bench.intake:reference_app()'"), ("web", None)):
        base = stack.start_web(role, app) if app else stack.start_web(role)
        try:
            result = measure_intake(base, dsn, tmp / role, 3000 * WARMUP_S, 2500 * seconds,
                                    seconds, CONNECTIONS)  # fmt: skip
        finally:
            stack.stop(role)
        out["load"] = result.pop("load")
        out[role] = result
        log(
            f"intake {role}: {result['rps']:.0f}/s p50 {result['p50']:.1f} ms "
            f"p99 {result['p99']:.1f} ms, {result['errors']:.0f} non-2xx, {result['rows']} rows"
        )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM inbound_events")
    redis.Redis.from_url(redis_url).flushall()
    return out


def backlog_phase(stack: Stack, dsn: str, redis_url: str, count: int, body: str) -> dict[str, Any]:
    """`count` stored successes, then the worker starts and one wake-up is sent, as the
    intake sends it: credits/s from first to last processed_at (worker start-up
    excluded). The worker stays up."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        pending_successes(conn, "B", count, body)
        conn.execute("VACUUM ANALYZE")
    n, span = credit_stored(stack, dsn, redis_url, 600)
    with psycopg.connect(dsn, autocommit=True) as conn:
        paid = conn.execute(
            "SELECT count(*) FROM invoices WHERE status = 'paid' AND id LIKE 'in\\_B%'"
        ).fetchone()[0]  # type: ignore[index]
        # The events one credit writes, for pgbench's copy of the transaction.
        inpay = conn.execute(
            "SELECT seq FROM events WHERE type = 'invoice_payment.paid' ORDER BY seq LIMIT 1"
        ).fetchone()[0]  # type: ignore[index]
        samples = conn.execute(
            "SELECT type, data::text FROM events WHERE seq >= %s ORDER BY seq LIMIT 4", (inpay,)
        ).fetchall()
    result = {
        "credited": n,
        "paid": paid,
        "seconds": span,
        "credits_per_s": n / span,
        "event_types": [t for t, _ in samples],
    }
    log(f"backlog: {n} credited in {span:.2f}s = {n / span:.0f}/s ({paid} invoices paid)")
    return {**result, "samples": samples}


def pgbench_phase(
    pg_dsn: str, redis_url: str, count: int, samples: list[Any], tmp: Path, clients: int
) -> dict[str, Any]:
    from bench import crediting
    from service.operations.process_inbound import BATCH_SIZE

    template = templates(pg_dsn, redis_url, attached={"attach": True})["attached"]
    body = success_body(template)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        clone(conn, template, crediting.TAG, count, EVERYTHING)
        pending_successes(conn, crediting.TAG, count, body)
    result = crediting.run(
        pg_dsn,
        count=count,
        batch=BATCH_SIZE,
        clients=clients,
        samples=[tuple(s) for s in samples],
        workdir=tmp,
    )
    log(
        f"pgbench: {result['credited']} credited, {result['credits_per_s']:.0f}/s "
        f"({result['batches_per_s']:.1f} batches/s of {BATCH_SIZE}, {clients} clients)"
    )
    return result


def attach_phase(stack: Stack, base: str, count: int) -> dict[str, Any]:
    pairs = [(f"in_A{k}", f"pi_A{k}") for k in range(1, count + 1)]
    hello = stack.start_web("hello", "'bench.attach:hello_app()'")
    try:
        post_all(hello, pairs[: count // 10], CONNECTIONS)  # warm-up
        h_lat, h_elapsed, h_fail = post_all(hello, pairs, CONNECTIONS)
    finally:
        stack.stop("hello")
    warm, measured = pairs[: count // 10], pairs[count // 10 :]
    post_all(base, warm, CONNECTIONS)
    a_lat, a_elapsed, a_fail = post_all(base, measured, CONNECTIONS)
    out = {
        "concurrency": CONNECTIONS,
        "hello": {
            "rps": len(h_lat) / h_elapsed,
            **summary([x * 1000 for x in h_lat]),
            "failures": len(h_fail),
        },
        "tally": {
            "rps": len(a_lat) / a_elapsed,
            **summary([x * 1000 for x in a_lat]),
            "failures": len(a_fail),
        },
    }
    log(
        f"attach: {out['tally']['rps']:.0f}/s p99 {out['tally']['p99']:.1f} ms "
        f"({len(a_fail)} non-200); "
        f"hello {out['hello']['rps']:.0f}/s p99 {out['hello']['p99']:.1f} ms"
    )
    return out


def api_phase(base: str, dsn: str, redis_url: str, rate: float, seconds: float) -> dict[str, Any]:
    from bench.pipeline import api_to_stream

    port = int(base.rsplit(":", 1)[1])
    if not drained(dsn, 180):  # not to measure the backlog the previous phase left
        log("warning: the pipeline did not settle before the next phase")
    count = int(rate * seconds)
    warm = int(rate * WARMUP_S)
    drafts = [f"in_D{k}" for k in range(1, warm + count + 1)]
    api_to_stream(port, redis_url, drafts[:warm], rate)
    answers, latencies, _ = api_to_stream(port, redis_url, drafts[warm:], rate)
    out = {
        "rate": rate,
        "calls": count,
        "seen": len(latencies),
        "stream": summary(latencies),
        "response": summary(answers),
    }
    log(
        f"API -> stream: p50 {out['stream']['p50']:.1f} p99 {out['stream']['p99']:.1f} ms "
        f"({len(latencies)}/{count} seen)"
    )
    return out


# -- the summary --------------------------------------------------------------------------


def summary_markdown(document: dict[str, Any]) -> str:
    """The run's tables as Markdown: bench/results/summary.md, linked from docs/benchmarks.md."""
    load = document["load_average"]
    details = document["details"]
    return "\n".join(
        [
            "# Latest benchmark run",
            "",
            f"`{document['command']}` at {document['commit']}, {document['when']}: "
            f"{document['cores']} cores, load average {load['start'][0]:.2f} at start and "
            f"{load['end'][0]:.2f} at end. Written by `python -m bench`; the method is in "
            "[docs/benchmarks.md](../../docs/benchmarks.md).",
            "",
            document["table"],
            "",
            "## Steady rates",
            "",
            steady_figures.steady_table(details["steady"], details["steady_reference"]),
            "",
            "![webhook -> invoice.paid, committed and delivered, one panel per rate](latency.png)",
            "",
        ]
    )


# -- the run --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (~1-2 min)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    # Stopped by SIGTERM (timeout, CI): unwind, so every process and database is cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    profile = PROFILES["quick" if args.quick else "full"]
    load_start = os.getloadavg()
    started = time.monotonic()
    log(
        f"python -m bench{' --quick' if args.quick else ''}: load average {load_start[0]:.2f} "
        f"{load_start[1]:.2f} {load_start[2]:.2f}, {os.cpu_count()} cores"
    )
    worker_processes = int(os.environ.get("WORKER_CONCURRENCY", "2"))
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="tally-bench-") as tmpdir,
        RedisServer() as redis_server,
        scratch_database("tally_bench_run") as dsn,
        scratch_database("tally_bench_pgbench") as pg_dsn,
    ):
        tmp, redis_url = Path(tmpdir), redis_server.url
        stack = Stack(run_env(dsn, redis_url), tmp)
        try:
            # Rows for every phase, cloned from ones made through the API.
            made = templates(dsn, redis_url, attached={"attach": True},
                             unattached={"attach": False},
                             draft={"attach": False, "finalize": False})  # fmt: skip
            attached, everything = made["attached"], EVERYTHING
            api_count = int(profile["api_rate"] * (profile["api_s"] + WARMUP_S))
            with psycopg.connect(dsn, autocommit=True) as conn:
                clone(conn, attached, "B", profile["backlog"], everything)
                clone(conn, made["unattached"], "A", profile["attach"], everything[:4])
                conn.execute(
                    "UPDATE payment_intents SET status = 'succeeded', amount_received = amount"
                    " WHERE id LIKE 'pi\\_A%' AND substr(id, 5)::int % 2 = 0"
                )
                clone(conn, made["draft"], "D", api_count, everything[:3])
                redis.Redis.from_url(redis_url).flushall()
            log("rows cloned")
            with RssSampler(stack, ("web", "worker", "deliveries")) as rss:
                results["intake"] = intake_phase(stack, dsn, redis_url, profile["intake_s"], tmp)
                results["steady_reference"] = steady.reference_phase(
                    stack, dsn, redis_url, steady.FRACTIONS[1], profile["steady_s"], 4
                )
                backlog = backlog_phase(
                    stack, dsn, redis_url, profile["backlog"], success_body(attached)
                )
                samples = backlog.pop("samples")
                results["backlog"] = backlog
                results["pgbench"] = pgbench_phase(
                    pg_dsn, redis_url, profile["backlog"], samples, tmp, worker_processes
                )
                base = stack.start_web("web")
                stack.start("deliveries", "deliveries")
                stack.start("beat", "beat")
                results["attach"] = attach_phase(stack, base, profile["attach"])
                results["steady"] = steady.steady_phase(
                    stack, dsn, redis_url, base, results["steady_reference"]["rps"],
                    steady.FRACTIONS, profile["steady_s"], tmp,
                )  # fmt: skip
                results["api_to_stream"] = api_phase(
                    base, dsn, redis_url, profile["api_rate"], profile["api_s"]
                )
                rss.sample()
            results["rss"] = {
                "process_peak_kb": rss.process_peak_kb,
                "tree_peak_kb": rss.tree_peak_kb,
            }
        finally:
            stack.stop_all()
        args.out.mkdir(parents=True, exist_ok=True)
        script = Path(results["pgbench"].pop("script"))
        (args.out / "pgbench-crediting.sql").write_text(script.read_text())
    load_end = os.getloadavg()
    rows = figures(results, CONNECTIONS)
    header = (
        f"python -m bench{' --quick' if args.quick else ''} at {git_commit()}, "
        f"{os.cpu_count()} cores, load average {load_start[0]:.2f} at start, "
        f"{load_end[0]:.2f} at end, {time.monotonic() - started:.0f} s"
    )
    text = table(rows)
    print(f"\n{header}\n\n{text}\n")
    print(f"{steady_figures.steady_table(results['steady'], results['steady_reference'])}\n")
    steady_figures.plot(results["steady"], args.out / "latency.png", header)
    document = {
        "command": "python -m bench" + (" --quick" if args.quick else ""),
        "commit": git_commit(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cores": os.cpu_count(),
        "load_average": {"start": load_start, "end": load_end},
        "profile": profile,
        "figures": [f.as_json() for f in rows],
        "details": results,
        "table": text,
    }
    (args.out / "latest.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    (args.out / "summary.md").write_text(summary_markdown(document))
    log(f"wrote summary.md, latency.png and latest.json in {args.out}")
    sys.exit(0)


if __name__ == "__main__":
    main()
