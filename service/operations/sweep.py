"""The periodic jobs of the pipeline, each run by a beat entry of its own (workers/app.py)
with its own schedule and expiry; operations/prune.py has the retention jobs.

- redrive: whatever is stuck in PostgreSQL is put back in motion. Nothing lives only
  in Redis, so after a Redis outage or flush this is what restarts the pipeline:
  inbound events still pending after the grace period get a drain task (sent even if
  a wake-up flag says one is on its way: that task may be the one Redis lost),
  unpublished events are published, due deliveries dispatched. Each pass records its
  completion in PostgreSQL (store/sweeper_passes.py): beat's health, whichever
  worker ran the pass.
- check_invariants: the ledger invariants over what changed since the last check; a
  breach is logged at ERROR and counted.
- refetch_open_payments: with an upstream Stripe key, PaymentIntents whose invoice
  payments stayed open too long are fetched again, so a webhook that never came
  still ends in a credit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from service.adapters.upstream import Upstream
from service.config import DEFAULT_STREAM_RETENTION
from service.db import TRANSIENT_ERRORS, Conn
from service.errors import TallyError
from service.operations.payments import apply_payment_intent_update
from service.operations.publish_events import dispatch_due_deliveries, publish_events
from service.store import events, inbound_events, reconciliation, sweeper_passes

log = logging.getLogger(__name__)

BREACHES_TOTAL_KEY = "tally:metrics:ledger_invariant_breaches_total"
BREACHES_LAST_KEY = "tally:metrics:ledger_invariant_breaches"
# How far back before its last start the ledger check looks again.
CHECK_OVERLAP = 120
REFETCH_BATCH = 20
# What skips one step of a pass (the next pass tries it again): Redis or PostgreSQL away.
_SKIPPED_STEP_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, *TRANSIENT_ERRORS)


class Tasks(Protocol):
    """The tasks a re-drive starts (service.queue.TaskQueue)."""

    def wake_drain(self, *, force: bool = False) -> bool: ...
    def send_deliveries(self, leased: list[tuple[int, int]]) -> None: ...


@dataclass(frozen=True, slots=True)
class SweepReport:
    stale_inbound: int = 0
    published: int = 0
    dispatched: int = 0


def redrive(
    conn: Conn,
    stream: redis.Redis,
    tasks: Tasks,
    *,
    grace_seconds: float,
    stream_retention: float = DEFAULT_STREAM_RETENTION,
) -> SweepReport:
    """One pass. Each step is independent and idempotent; a failing step is logged
    and the others still run (a Redis outage must not stop the pass being recorded)."""
    stale = _step("inbound", lambda: inbound_events.count_stale(conn, grace_seconds=grace_seconds))
    if stale:
        _step("drain", lambda: tasks.wake_drain(force=True))
    published = _step("publish", lambda: publish_events(conn, stream, retention=stream_retention))
    dispatched = _step("dispatch", lambda: dispatch_due_deliveries(conn, tasks.send_deliveries))
    # beat's health (/metrics, `tally sweeper`): a pass completed, whatever it skipped.
    _step("completed", lambda: sweeper_passes.record_completed(conn))
    report = SweepReport(stale or 0, published or 0, dispatched or 0)
    if stale or published or dispatched:
        log.info("sweep: %s", report)
    return report


def _step(name: str, run: Callable[[], Any]) -> Any:
    try:
        return run()
    except _SKIPPED_STEP_ERRORS as exc:
        log.warning("sweep step %s skipped: %s: %s", name, type(exc).__name__, exc)
        return None


def check_invariants(conn: Conn, client: redis.Redis | None = None) -> int:
    """Check the ledger invariants over what changed since the last check (everything,
    the first time); log every breach at ERROR and count them."""
    started = int(time.time())
    last = reconciliation.check_watermark(conn)
    # An event's `created` is taken before its transaction commits, which may be up to
    # 45 s later (statement and idle-in-transaction timeouts, service/db.py).
    found = reconciliation.breaches(conn, since=None if last is None else last - CHECK_OVERLAP)
    reconciliation.set_check_watermark(conn, started)
    for breach in found:
        log.error(
            "LEDGER INVARIANT BREACH %s on %s: %s", breach["check"], breach["id"], breach["detail"]
        )
    if client is not None:
        try:
            pipe = client.pipeline(transaction=False)
            pipe.incrby(BREACHES_TOTAL_KEY, len(found))
            pipe.set(BREACHES_LAST_KEY, len(found))
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not record the invariant check in redis: %s", exc)
    return len(found)


def refetch_open_payments(
    conn: Conn,
    upstream: Upstream | None,
    *,
    refetch_after: int,
    now: int,
    wake_publisher: Callable[[], object] = lambda: None,
) -> int:
    """Fetch each long-open PaymentIntent upstream and apply it as a webhook would, each
    in a transaction of its own; then, if that wrote events, `wake_publisher()`. Does
    nothing without an upstream."""
    if upstream is None:
        return 0
    done = 0
    stale = reconciliation.take_stale_open_payment_intents(
        conn, older_than=refetch_after, now=now, limit=REFETCH_BATCH
    )
    for row in stale:
        try:
            pi = upstream.payment_intent(row["id"], livemode=row["livemode"])
            if pi is None:
                log.warning("upstream has no payment_intent %s; it stays open", row["id"])
                continue
            with conn.transaction():
                events.add_all(conn, apply_payment_intent_update(conn, pi, now=now))
            done += 1
        except TallyError as exc:
            log.warning("could not re-fetch payment_intent %s: %s", row["id"], exc)
    if done:
        wake_publisher()
    return done
