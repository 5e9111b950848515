"""The subcommands of `tally`: each calls the store or an operation and prints the result.

Each takes the parsed arguments (and, when it reads or changes the database, an
autocommit connection; the operations open their own transactions) and returns the
exit status. Bad input raises InvalidRequest or NotFound: one line, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime

import redis

from service.adapters.stream import STREAM_KEY
from service.cli.output import iso, note, show
from service.config import (
    Settings,
    database_url,
    migration_lock_timeout,
    redis_url,
    retention,
    stream_retention,
)
from service.db import Conn
from service.errors import InvalidRequest, NotFound
from service.migrate import migrate as apply_migrations
from service.operations.prune import expire_idempotency_keys, prunable, prune_events
from service.operations.publish_events import republish_events
from service.operations.replay_inbound import FAILED_ONLY, replay_inbound
from service.operations.resend_event import resend_event
from service.operations.retry_deliveries import retry_deliveries
from service.operations.webhook_endpoints import enable_webhook_endpoint
from service.queue import TaskQueue, make_task_queue
from service.redis_client import connect_redis
from service.store import (
    deliveries,
    events,
    inbound_events,
    reconciliation,
    sweeper_passes,
    webhook_endpoints,
)

Conn = Conn


def migrate(args: argparse.Namespace) -> int:
    applied = apply_migrations(database_url(), lock_timeout=migration_lock_timeout())
    sys.stdout.write(f"migrations applied: {', '.join(applied) or 'none (up to date)'}\n")
    return 0


def trigger(args: argparse.Namespace) -> int:
    # Imported here: it brings the dev environment's helpers (Redis, embedded servers),
    # doubling every other subcommand's start-up time.
    from service import trigger as trigger_command

    return trigger_command.main(args.argv)


def inbound_list(conn: Conn, args: argparse.Namespace) -> int:
    rows = inbound_events.recent(
        conn, status=args.status, received_since=args.since, limit=args.limit
    )
    columns = [
        "id",
        "type",
        "livemode",
        "status",
        "outcome",
        "attempts",
        "received_at",
        "last_error",
    ]
    show(rows, columns, as_json=args.json)
    return 0


def inbound_replay(conn: Conn, args: argparse.Namespace) -> int:
    statuses = None if args.any_status else FAILED_ONLY
    if args.ids and (args.since or args.until or args.failed):
        raise InvalidRequest("give event ids, or --failed --since T, not both")
    if args.ids:
        _check_replayable(conn, args.ids, statuses)
        replayed = replay_inbound(conn, ids=args.ids, statuses=statuses)
    elif args.since is not None:
        replayed = replay_inbound(
            conn, received_since=args.since, received_until=args.until, statuses=statuses
        )
    else:
        raise InvalidRequest("name the events to replay: event ids, or --failed --since T")
    columns = ["id", "type", "previous_status", "attempts", "last_error"]
    show([asdict(r) for r in replayed], columns, as_json=args.json)
    _requeued(len(replayed), "inbound events", lambda tasks: tasks.wake_drain(force=True))
    return 0


def _check_replayable(conn: Conn, ids: list[str], statuses: tuple[str, ...] | None) -> None:
    """Refuse unknown ids, and (unless any status will do) events that have not failed."""
    known = inbound_events.statuses(conn, ids)
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise NotFound(f"no such inbound event: {', '.join(unknown)}")
    other = [f"{i} is {known[i]}" for i in ids if statuses and known[i] not in statuses]
    if other:
        raise InvalidRequest(f"{'; '.join(other)}, not failed (--any-status replays it anyway)")


def events_list(conn: Conn, args: argparse.Namespace) -> int:
    rows = events.recent(conn, event_type=args.type, limit=args.limit)
    columns = ["id", "type", "livemode", "created", "pending_webhooks"]
    show([{**r, "created": iso(r["created"])} for r in rows], columns, as_json=args.json)
    return 0


def events_resend(conn: Conn, args: argparse.Namespace) -> int:
    resent = resend_event(conn, args.event, endpoint_id=args.endpoint)
    columns = ["delivery_id", "endpoint_id", "previous_status"]
    show([asdict(r) for r in resent], columns, as_json=args.json)
    _requeued(len(resent), "deliveries", lambda tasks: tasks.wake_publisher(force=True))
    return 0


def events_republish(conn: Conn, args: argparse.Namespace) -> int:
    since = int(args.since.timestamp()) if args.since else 0
    try:
        client = connect_redis(redis_url(), timeout=5)
        count, first, last = republish_events(
            conn,
            client,
            from_position=args.from_position or 1,
            created_since=since,
            retention=stream_retention(),
        )
    except redis.RedisError as exc:
        sys.stderr.write(f"tally: Redis: {exc}\n")
        return 1
    if count:
        note(f"republished {count} events to {STREAM_KEY}, positions {first} to {last}")
    else:
        note("no published event matched: nothing republished")
    return 0


def deliveries_list(conn: Conn, args: argparse.Namespace) -> int:
    if webhook_endpoints.find(conn, args.endpoint) is None:
        raise NotFound(f"No such webhook endpoint: '{args.endpoint}'")
    rows = deliveries.attempts_to(conn, args.endpoint, failed_only=args.failed, limit=args.limit)
    columns = [
        "delivery",
        "event_id",
        "type",
        "status",
        "attempted_at",
        "status_code",
        "latency_ms",
        "error",
    ]
    show(rows, columns, as_json=args.json)
    return 0


def deliveries_retry(conn: Conn, args: argparse.Namespace) -> int:
    rows = retry_deliveries(conn, args.endpoint, events_since=int(args.since.timestamp()))
    columns = ["id", "event_id", "type", "created"]
    show([{**r, "created": iso(r["created"])} for r in rows], columns, as_json=args.json)
    _requeued(len(rows), "deliveries", lambda tasks: tasks.wake_publisher(force=True))
    return 0


def endpoints_enable(conn: Conn, args: argparse.Namespace) -> int:
    row = enable_webhook_endpoint(conn, args.endpoint)
    show([row], ["id", "livemode", "url", "status", "previous_status"], as_json=args.json)
    return 0


def prune(conn: Conn, args: argparse.Namespace) -> int:
    kept = retention()
    now = time.time()
    if args.dry_run:
        report = prunable(conn, kept, now=now)
    else:
        report = prune_events(conn, kept, now=now, max_batches=sys.maxsize)
        report.idempotency_keys = expire_idempotency_keys(conn, kept)
    rows = [
        {"kind": "events", "kept_for": f"{kept.events_days:g} days", "rows": report.events},
        {"kind": "webhook deliveries", "kept_for": "with their event", "rows": report.deliveries},
        {"kind": "delivery attempts", "kept_for": "with their event",
         "rows": report.delivery_attempts},
        {"kind": "inbound events (settled)", "kept_for": f"{kept.inbound_days:g} days",
         "rows": report.inbound_events},
        {"kind": "idempotency keys", "kept_for": f"{kept.idempotency_hours} hours",
         "rows": report.idempotency_keys},
    ]  # fmt: skip
    show(rows, ["kind", "kept_for", "rows"], as_json=args.json)
    note("dry run: nothing deleted" if args.dry_run else "pruned")
    return 0


def audit(conn: Conn, args: argparse.Namespace) -> int:
    if args.full:
        since = None
    elif args.since:
        since = int(args.since.timestamp())
    else:
        since = int(time.time()) - 86_400
    found = reconciliation.breaches(conn, since=since)
    show(found, ["check", "id", "detail"], as_json=args.json)
    note(f"ledger invariant breaches: {len(found)}" if found else "every ledger invariant holds")
    return 1 if found else 0


def sweeper(conn: Conn, args: argparse.Namespace) -> int:
    completed = sweeper_passes.last_completed(conn)
    if completed is None:
        sys.stdout.write("the sweeper has not completed a pass\n")
        return 1
    age = (datetime.now(UTC) - completed).total_seconds()
    sys.stdout.write(f"the sweeper last completed a pass at {iso(completed)}, {age:.0f} s ago\n")
    return 0 if age <= args.within else 1


def _requeued(count: int, what: str, wake: Callable[[TaskQueue], bool]) -> None:
    """Say what is now due, and wake the workers for it. The change is in PostgreSQL
    already; if Redis is unreachable the sweeper (beat, every few seconds) hands it to
    the workers instead."""
    if not count:
        note(f"no {what} matched: nothing changed")
        return
    client = connect_redis(redis_url(), timeout=1)
    tasks = make_task_queue(Settings(database_url=database_url(), redis_url=redis_url()), client)
    if wake(tasks):
        note(f"{what}: {count} due now; the workers were woken for them")
    else:
        note(f"{what}: {count} due now; the sweeper hands them to the workers on its next pass")
