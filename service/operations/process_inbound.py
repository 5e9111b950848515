"""Processing stored inbound Stripe events: claim a batch, handle each, settle.

One transaction per batch (its commit is shared, which is what makes a backlog
fast). The batch first runs as a whole, and writes the events of all its credits in
one statement at its end; if any event fails, the transaction is rolled back and
the same events are claimed again and redone with one savepoint per event, so one
event's failure undoes only its own changes. A permanent error (a TallyError, a
malformed payload, data PostgreSQL refuses, a bug) is retried a few times with
a delay of minutes to an hour, then marks the event `failed`, where it waits for
a fix and a replay (operations/replay_inbound.py); a transient one (lost
connection, deadlock, timeout) leaves it `pending` with a growing delay. SKIP
LOCKED lets several consumers share the backlog; a consumer killed mid-batch
leaves its rows pending (its transaction rolls back) for the next one, and
crediting itself only moves an `open` invoice payment, so processing an event
again changes nothing.

An event whose processing kills the process (a crash in a C extension, the OOM
killer, a hard time limit) never fails in Python, so nothing above would count it:
the batch commits a claim before it runs instead (inbound_events.take_due). Such an
event is claimed again alone, so its batch-mates settle on their own next time, and
once claimed `max_claims` times without settling it is quarantined as `failed`, with
the reason, so it stops taking workers down and the rest keep crediting.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from service import observability
from service.db import TRANSIENT_ERRORS, Conn
from service.domain.events import Event
from service.errors import TallyError
from service.operations.batch_locks import lock_in_order
from service.operations.crediting import apply_payment_intent_updates
from service.store import events, inbound_events
from service.store.inbound_events import Settlement

log = logging.getLogger(__name__)

BATCH_SIZE = 50
MAX_RETRY_DELAY = 300.0
# Seconds before attempts 2 to 5 of an event that failed with a non-transient error;
# after the last it is `failed`. A race misread as permanent passes on a later try,
# and so does an event hit by a bug fixed within the hour; later ones need a replay.
FAILURE_RETRY_DELAYS = (10.0, 60.0, 600.0, 3600.0)
# Claims of an event that never settled before it is quarantined (TALLY_INBOUND_MAX_CLAIMS).
MAX_CLAIMS = 5
# Seconds a taken event stays out of other workers' claims: the moment between the
# claim's commit and the batch's row locks (milliseconds), with a wide margin. An event
# whose worker died is due again after it.
CLAIM_LEASE_SECONDS = 2.0

# Applies stored Stripe events, in order, as one batch; returns the events of their
# changes, for the batch to write.
Handler = Callable[[Conn, list[dict[str, Any]], int], list[Event]]


def _payment_intents_changed(conn: Conn, events: list[dict[str, Any]], now: int) -> list[Event]:
    updates = []
    for event in events:
        pi = event["data"]["object"]
        if not isinstance(pi, dict) or pi.get("object", "payment_intent") != "payment_intent":
            raise ValueError("data.object is not a payment_intent")
        updates.append((pi, event["id"]))
    return apply_payment_intent_updates(conn, updates, now=now)


# Types that change something; every other type is stored and marked `ignored`.
HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _payment_intents_changed,
    "payment_intent.processing": _payment_intents_changed,
    "payment_intent.requires_action": _payment_intents_changed,
    "payment_intent.created": _payment_intents_changed,
    "payment_intent.canceled": _payment_intents_changed,
    "payment_intent.payment_failed": _payment_intents_changed,
}


@dataclass(frozen=True, slots=True)
class BatchResult:
    claimed: int = 0
    processed: int = 0
    ignored: int = 0
    failed: int = 0
    retrying: int = 0


def retry_delay(attempts: int) -> float:
    """Seconds before a transient failure is retried: 0.5, 1, 2, … up to 5 minutes."""
    return min(0.5 * 2 ** min(attempts, 20), MAX_RETRY_DELAY)


def process_inbound_batch(
    conn: Conn, *, now: int, limit: int = BATCH_SIZE, max_claims: int = MAX_CLAIMS
) -> BatchResult:
    """Claim up to `limit` due pending events and process them in one transaction.

    The claim is counted and committed first (see the module's docstring); `conn` must
    be in autocommit mode, outside a transaction. Idempotent under redelivery and
    concurrency (rows are locked; settled rows are never claimed again). Raises only
    when the batch as a whole cannot proceed (e.g. the connection is lost); then
    nothing of it but the claim is committed.
    """
    taken = inbound_events.take_due(
        conn, limit=limit, max_claims=max_claims, lease_seconds=CLAIM_LEASE_SECONDS
    )
    quarantined = [row for row in taken if row["status"] == "failed"]
    for row in quarantined:
        log.error(
            "inbound event %s quarantined: claimed %d times without settling",
            row["id"],
            row["claims"] - 1,
        )
    observability.observe_inbound_settled((row["type"], "failed", None) for row in quarantined)
    ids = [row["id"] for row in taken if row["status"] == "pending"]
    if not ids:
        return BatchResult(claimed=len(taken), failed=len(quarantined))
    failed = False
    with conn.transaction() as batch:
        rows = lock_in_order(conn, inbound_events.claim_pending(conn, ids), set_wise=True)
        if not rows:
            return BatchResult(claimed=len(taken), failed=len(quarantined))
        try:
            settlements = _process_all(conn, rows, now)
        except Exception:
            if conn.broken:
                raise
            failed = True
            raise psycopg.Rollback(batch) from None
        inbound_events.settle(conn, settlements)
    if failed:
        # Something in the batch failed and its rollback undid all of it: redo those
        # events one by one, each in its own savepoint, to isolate the failure (a
        # savepoint around the whole batch would cost every batch two round trips).
        with conn.transaction():
            ids = [row["id"] for row in rows]
            rows = lock_in_order(conn, inbound_events.claim_pending(conn, ids))
            settlements = [_process_one(conn, row, now) for row in rows]
            inbound_events.settle(conn, settlements)
    _observe(rows, settlements)
    counts = {"processed": 0, "ignored": 0, "failed": 0, "pending": 0}
    for settlement in settlements:
        counts[settlement.status] += 1
    return BatchResult(
        claimed=len(rows) + len(quarantined),
        processed=counts["processed"],
        ignored=counts["ignored"],
        failed=counts["failed"] + len(quarantined),
        retrying=counts["pending"],
    )


def _observe(rows: list[dict[str, Any]], settlements: list[Settlement]) -> None:
    """After the commit: count each event's outcome, and time the processed ones
    from their intake (received_at) to now."""
    committed = time.time()
    by_id = {row["id"]: row for row in rows}
    observability.observe_inbound_settled(
        (
            by_id[s.id]["type"],
            "retrying" if s.status == "pending" else s.status,
            committed - by_id[s.id]["received_at"].timestamp() if s.status == "processed" else None,
        )
        for s in settlements
    )


def _process_all(conn: Conn, rows: list[dict[str, Any]], now: int) -> list[Settlement]:
    """The fast path: the whole batch at once; raises on the first failure.

    Failures are rare, so no savepoints (two round trips each). Each run of events of
    one handler (all of a batch, normally: they are sorted by PaymentIntent) is applied
    set-wise, in a few statements whatever its size, and the events of every change
    are written together: round trips, not rows, are what a batch pays for (under a busy
    CPU each is a wait to be scheduled).
    """
    settlements = []
    written: list[Event] = []
    for handler, group in itertools.groupby(rows, key=lambda row: HANDLERS.get(row["type"])):
        run = list(group)
        if handler is not None:
            written += handler(conn, [row["payload"] for row in run], now)
        status = "ignored" if handler is None else "processed"
        settlements += [Settlement(row["id"], status) for row in run]
    events.add_all(conn, written)
    return settlements


def _process_one(conn: Conn, row: dict[str, Any], now: int) -> Settlement:
    handler = HANDLERS.get(row["type"])
    if handler is None:
        return Settlement(row["id"], "ignored")
    try:
        with conn.transaction():  # a savepoint: a failure undoes this event only
            events.add_all(conn, handler(conn, [row["payload"]], now))
    except TRANSIENT_ERRORS as exc:
        if conn.broken:
            raise
        log.warning("inbound event %s will be retried: %s", row["id"], exc)
        return Settlement(row["id"], "pending", _describe(exc), retry_delay(row["attempts"]))
    except (
        TallyError,
        KeyError,
        ValueError,
        TypeError,
        psycopg.DataError,
        psycopg.IntegrityError,
    ) as exc:
        return _failed(row, exc)
    except Exception as exc:
        # Not retried forever either: a bug shows as `failed` rows and this traceback.
        if conn.broken:
            raise
        log.exception("inbound event %s failed unexpectedly", row["id"])
        return _failed(row, exc)
    return Settlement(row["id"], "processed")


def _failed(row: dict[str, Any], exc: BaseException) -> Settlement:
    """Pending again after a delay while attempts remain, else `failed`."""
    attempt = row["attempts"] + 1
    if attempt <= len(FAILURE_RETRY_DELAYS):
        delay = FAILURE_RETRY_DELAYS[attempt - 1]
        log.warning(
            "inbound event %s failed (attempt %d), retried in %.0f s: %s",
            row["id"],
            attempt,
            delay,
            _describe(exc),
        )
        return Settlement(row["id"], "pending", _describe(exc), delay)
    log.warning(
        "inbound event %s failed for good after %d attempts: %s", row["id"], attempt, _describe(exc)
    )
    return Settlement(row["id"], "failed", _describe(exc))


def _describe(exc: BaseException) -> str:
    message = exc.message if isinstance(exc, TallyError) else str(exc)
    return f"{type(exc).__name__}: {message}"[:1000]
