"""`python -m bench.chaos`: boot, load, break, settle, judge; see bench/chaos/__init__.py."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.chaos.faults import Faults
from bench.chaos.plans import InvoicePlan, make_plans
from bench.chaos.stack import Stack, postgres, stack_env
from bench.chaos.traffic import Business, Client, Outbox, Stats, Unanswered, send
from bench.chaos.verdict import SUBSCRIBED, Verdict, judge, wait_settled
from devtools.procfile import ROOT
from devtools.receiver import Receiver
from devtools.servers import RedisServer

# The settle deadline covers a delivery whose send task Redis lost: it is dispatched
# again when its lease (DISPATCH_LEASE_SECONDS, 60 s) runs out.
FULL = {"invoices": 300, "webhooks": 3000, "threads": 8, "seconds": 120.0, "settle": 240.0}
SHORT = {"invoices": 60, "webhooks": 500, "threads": 6, "seconds": 25.0, "settle": 180.0}


class Cleanup:
    """Undo steps, run once in reverse order, from `finally` or atexit; never raises."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], object]]] = []
        self.lock = threading.Lock()

    def add(self, what: str, step: Callable[[], object]) -> None:
        self.steps.append((what, step))

    def __call__(self) -> None:
        with self.lock:
            while self.steps:
                what, step = self.steps.pop()
                started = time.monotonic()
                try:
                    step()
                except Exception as exc:  # keep undoing the rest
                    print(f"cleanup: {what} failed: {exc}", file=sys.stderr)
                if time.monotonic() - started > 5:
                    print(f"cleanup: {what} took {time.monotonic() - started:.0f} s")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="tens of seconds, for CI")
    parser.add_argument("--invoices", type=int)
    parser.add_argument("--webhooks", type=int, help="webhook sends, duplicates included")
    parser.add_argument("--threads", type=int, help="webhook sender threads")
    parser.add_argument("--seconds", type=float, help="the load and fault window")
    parser.add_argument("--settle", type=float, help="deadline to settle after the window")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-logs", action="store_true", help="keep process logs")
    args = parser.parse_args(argv)
    for name, value in (SHORT if args.short else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    cleanup = Cleanup()
    atexit.register(cleanup)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    run_dir = Path(tempfile.mkdtemp(prefix="tally-chaos-"))
    ok = False
    try:
        cleanup.add("remove the run dir", lambda: shutil.rmtree(run_dir, ignore_errors=True))
        ok = run(args, run_dir, cleanup)
    finally:
        if (args.keep_logs or not ok) and (run_dir / "logs").is_dir():
            kept = Path(tempfile.mkdtemp(prefix="tally-chaos-logs-"))
            shutil.copytree(run_dir / "logs", kept, dirs_exist_ok=True)
            print(f"process logs kept in {kept}")
        cleanup()
    return 0 if ok else 1


def run(args: argparse.Namespace, run_dir: Path, cleanup: Cleanup) -> bool:
    wall = time.monotonic()
    rng = random.Random(args.seed)
    redis_server = RedisServer()
    redis_server.start()
    cleanup.add("stop redis-server", redis_server.stop)
    database = postgres(run_dir, redis_server.url)
    database_url, pg_server = database.__enter__()
    cleanup.add("stop PostgreSQL", lambda: database.__exit__(None, None, None))
    stack = Stack.from_procfile(
        ROOT / "Procfile", run_dir, stack_env(database_url, redis_server.url)
    )
    cleanup.add("stop the stack", stack.close)
    stack.release()
    stack.start()
    names = Counter(p.name for p in stack.processes)
    print("stack: " + ", ".join(f"{n} x{c}" for n, c in names.items())
          + f" from {ROOT / 'Procfile'}; web at {stack.base_url}", flush=True)  # fmt: skip
    # HTTP/1.0: a receiver taken down refuses every delivery, none rides an open
    # connection; verified with the endpoint's secret (none verifies before it is set).
    receiver = Receiver("", keep_alive=False)
    cleanup.add("stop the receiver", receiver.stop)
    stats = Stats()
    client = Client(stack.base_url, stats)
    run_id = f"chaos-{uuid.uuid4().hex[:8]}"
    endpoint = client.post("/v1/webhook_endpoints",
                           {"url": receiver.url, "enabled_events[]": list(SUBSCRIBED)},
                           f"{run_id}-endpoint").json()  # fmt: skip
    receiver.secret = endpoint["secret"]

    plans = make_plans(args.invoices, args.webhooks, rng)
    outbox = Outbox(random.Random(args.seed + 1))
    business = Business(client, outbox, run_id)
    down_for = 2.0 if args.short else 5.0
    faults = Faults(
        stack,
        database_url,
        pg_server,
        redis_server,
        receiver,
        down_for,
        random.Random(args.seed + 2),
    )
    kinds = faults.plan(cycles=max(1, round(args.seconds / 60)))
    window = args.seconds
    t0 = time.monotonic()
    hard_stop = t0 + window * 1.5 + 30
    print(f"load: {len(plans)} invoices, {sum(len(p.spec) for pl in plans for p in pl.payments)}"
          f" webhook sends over {window:.0f} s; {len(kinds)} faults", flush=True)  # fmt: skip
    fault_thread = threading.Thread(
        target=faults.run, args=(kinds, t0, t0 + 0.1 * window, 0.8 * window)
    )
    fault_thread.start()
    errors = run_load(args, plans, business, client, outbox, t0, window, hard_stop)
    fault_thread.join(max(1.0, hard_stop - time.monotonic()))
    faults.stop.set()
    fault_thread.join(120)
    last_fault = max((f.ended for f in faults.done), default=time.monotonic())

    retry_later(args, client, outbox)
    settle_deadline = time.monotonic() + args.settle
    settled_at, left = wait_settled(database_url, plans, receiver, settle_deadline)
    verdict = judge(database_url, client, plans, receiver)
    verdict.check(f"settled within {args.settle:.0f} s after the load",
                  [] if settled_at else [f"left at the deadline: {left}"])  # fmt: skip
    verdict.check("the chaos run itself raised nothing", errors)
    # A process that exits when no fault killed it is a failure, not a statistic: the
    # supervisor restarts it, but in production that exit is an outage (the kombu
    # reconnect crash, workers/broker.py, showed up here only as a row of the table).
    verdict.check("no process exited unless a fault killed it", list(stack.unexpected_exits))
    print_table(args, plans, stats, faults, stack, receiver, verdict,
                recovery=(settled_at - last_fault) if settled_at else None,
                wall=time.monotonic() - wall)  # fmt: skip
    return verdict.ok


def run_load(args: argparse.Namespace, plans: list[InvoicePlan], business: Business,
             client: Client, outbox: Outbox, t0: float, window: float,
             hard_stop: float) -> list[str]:  # fmt: skip
    """Create and attach from a few threads, send webhooks from args.threads, paced over
    the window; returns the chaos code's own errors (bugs of this program)."""
    errors: list[str] = []
    next_plan = iter(plans)
    lock = threading.Lock()
    sent = [0]
    rate = max(1.0, sum(len(p.spec) for pl in plans for p in pl.payments) / (0.8 * window))

    def creator() -> None:
        while time.monotonic() < hard_stop:
            with lock:
                plan = next(next_plan, None)
            if plan is None:
                return
            delay = t0 + 0.6 * window * plan.index / len(plans) - time.monotonic()
            time.sleep(max(0.0, delay))
            try:
                business.run(plan, random.Random(args.seed * 7919 + plan.index))
            except Unanswered:
                pass  # resent after the faults (client.unanswered); the plan stops here
            except Exception:
                errors.append(traceback.format_exc(limit=4))
            finally:
                plan.done = True

    def sender() -> None:
        while time.monotonic() < hard_stop:
            delivery = outbox.take()
            if delivery is None:
                if all(p.done for p in plans) and not outbox.waiting:
                    return
                time.sleep(0.05)
                continue
            with lock:
                due = t0 + sent[0] / rate
                sent[0] += 1
            time.sleep(max(0.0, due - time.monotonic()))
            client.stats.add("webhook sends")
            try:
                send(client, outbox, delivery, attempts=6)
            except Exception:
                errors.append(traceback.format_exc(limit=4))

    threads = [
        threading.Thread(target=creator, daemon=True) for _ in range(max(2, args.threads // 2))
    ]
    threads += [threading.Thread(target=sender, daemon=True) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, hard_stop - time.monotonic()) + 60)
    return errors


def retry_later(args: argparse.Namespace, client: Client, outbox: Outbox) -> None:
    """After the faults: what never got an answer is sent again, Stripe's later retries
    for webhooks and the same Idempotency-Key for API calls."""
    calls, client.unanswered = client.unanswered, []
    for call in calls:
        # Still unanswered: kept in client.unanswered, and the verdict reports it.
        with contextlib.suppress(Unanswered):
            client.post(call.path, call.data, call.key, attempts=20, on_answer=call.on_answer)
    left = outbox.drain()
    if left:
        print(f"  resending {len(left)} webhooks not acknowledged during the faults", flush=True)
    for delivery in left:
        send(client, outbox, delivery, attempts=12)


def print_table(args: argparse.Namespace, plans: list[InvoicePlan], stats: Stats,
                faults: Faults, stack: Stack, receiver: Receiver, verdict: Verdict,
                recovery: float | None, wall: float) -> None:  # fmt: skip
    c = stats.counts
    kinds = Counter(f.kind for f in faults.done)
    kinds_of_plans = Counter(p.kind for p in plans)
    distinct = len({e["id"] for pl in plans for p in pl.payments for e in p.events.values()})
    received = receiver.event_ids()
    delivered, duplicates = len(set(received)), len(received)
    rows = [
        ("invoices", f"{sum(p.invoice_id is not None for p in plans)} "
                     f"({', '.join(f'{k} {n}' for k, n in kinds_of_plans.items())})"),
        ("webhooks sent", f"{c['webhook sends']} sends of {distinct} distinct events"),
        ("API requests", f"{c['api requests']} ({c['replayed']} replayed by Idempotency-Key)"),
        ("attempts (HTTP retries)", f"{c['api retries']} API + {c['webhook retries']} webhook"),
        ("faults", ", ".join(f"{k} x{n}" for k, n in kinds.items()) or "none"),
        ("process restarts", ", ".join(f"{k} x{n}" for k, n in stack.restarts.items()) or "none"),
        ("credited", f"{verdict.credited} of {verdict.expected} succeeded PaymentIntents"),
        ("records credited", f"{verdict.records_credited} of {verdict.records_expected} "
                             "guaranteed payment records"),
        ("lost", str(verdict.lost)),
        ("doubled", str(verdict.doubled)),
        ("deliveries received", f"{delivered} events, {duplicates} deliveries"),
        ("recovery", f"{recovery:.1f} s from the last fault to settled" if recovery is not None
         else "not settled"),
        ("wall time", f"{wall:.0f} s"),
    ]  # fmt: skip
    if faults.skipped:
        rows.append(("skipped", "; ".join(faults.skipped)))
    if stack.unexpected_exits:
        rows.append(("unplanned exits", "; ".join(stack.unexpected_exits[:5])))
    mode = "--short" if args.short else ""
    print(f"\nchaos run {mode} --invoices {args.invoices} --webhooks {args.webhooks} "
          f"--threads {args.threads} --seconds {args.seconds:.0f} --seed {args.seed}")  # fmt: skip
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"| {k:<{width}} | {v} |" for k, v in rows))
    print()
    for claim, problems in verdict.checks:
        print(f"{'PASS' if not problems else 'FAIL'}  {claim}")
        for problem in problems[:10]:
            print(f"        {problem}")
        if len(problems) > 10:
            print(f"        … and {len(problems) - 10} more")
    print("\nverdict: " + ("PASS" if verdict.ok else "FAIL"))


if __name__ == "__main__":
    sys.exit(main())
