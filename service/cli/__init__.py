"""`tally`: the operator's command. It parses, calls the store and the operations over
one PostgreSQL connection, and prints; it changes only PostgreSQL, the source of truth
(`events republish` also writes to the Redis stream, from PostgreSQL).

Exit status: 0 done, 1 a failure (or `audit` found breaches, or `sweeper` a stale pass),
2 bad input (unknown ids, malformed times, conflicting flags), with one line on stderr
and nothing changed.

Settings come from the environment; what it does not set comes from the running
`bin/dev`'s .tally-data/dev.env (its PostgreSQL, Redis, URL, key and secret), so in a
checkout every subcommand works against `bin/dev` as it is.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import psycopg
from psycopg.rows import dict_row

from service.cli import commands
from service.config import adopt_dev_env, database_url
from service.errors import InvalidRequest, NotFound

TIMES = (
    "ISO 8601 (2026-12-01T10:00:00Z; UTC when it has no offset), Unix seconds (1796119200)"
    " or an age (90s, 30m, 1h, 7d: that long ago)"
)
_AGE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str) -> datetime:
    """A moment given as ISO 8601, Unix seconds, or an age (`30m` is 30 minutes ago)."""
    try:
        if age := _AGE.fullmatch(text):
            amount, unit = age.groups()
            return datetime.now(UTC) - timedelta(**{_UNITS[unit]: int(amount)})
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        raise argparse.ArgumentTypeError(f"not a time: {text!r}; give {TIMES}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _position(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a stream position (1 or more): {text!r}")
    return int(text)


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"not a number from 1 to 10000: {text!r}")
    return int(text)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (`tally: …`) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"tally: {message} (see {self.prog} --help)\n")


def _command(
    verbs: Any, name: str, run: Callable[..., int], summary: str, *, db: bool = True
) -> _Parser:
    """A subcommand running `run(conn, args)`, or `run(args)` when it needs no connection."""
    parser: _Parser = verbs.add_parser(name, help=summary, description=summary)
    parser.set_defaults(run=run, db=db)
    return parser


def _noun(nouns: Any, name: str, summary: str) -> Any:
    """A command of subcommands (`tally inbound list`): where to add its verbs."""
    parser = nouns.add_parser(name, help=summary)
    return parser.add_subparsers(dest="verb", required=True, metavar="VERB")


def _table(parser: _Parser, limit: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON array of objects")
    if limit:
        parser.add_argument(
            "--limit", type=_limit, default=100, help="at most this many rows (default 100)"
        )


def build_parser() -> _Parser:
    parser = _Parser(
        prog="tally", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    nouns = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _command(
        nouns,
        "migrate",
        commands.migrate,
        "apply migrations/*.sql not yet applied (creates the database if missing)",
        db=False,
    )
    # Everything after `trigger`, --help included, goes to service.trigger's own parser:
    # with no prefix character, nothing here reads as an option.
    trigger = nouns.add_parser(
        "trigger",
        add_help=False,
        prefix_chars="\0",
        help="send Tally a signed Stripe event for a PaymentIntent, like `stripe trigger`:"
        " tally trigger TYPE PI (see tally trigger --help)",
    )
    trigger.set_defaults(run=commands.trigger, db=False)
    trigger.add_argument("argv", nargs=argparse.REMAINDER)

    _inbound(nouns)
    _events(nouns)
    _deliveries(nouns)
    _endpoints(nouns)
    prune = _command(
        nouns,
        "prune",
        commands.prune,
        "delete history past its retention, as beat does every minute: events with their"
        " deliveries, settled inbound events, idempotency keys (never ledger objects)",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted; delete nothing"
    )
    _table(prune, limit=False)
    audit = _command(
        nouns,
        "audit",
        commands.audit,
        "check every ledger invariant over what changed in the last day (--since T), or"
        " over everything (--full); print the breaches; exit 1 on any",
    )
    scope = audit.add_mutually_exclusive_group()
    scope.add_argument(
        "--since",
        type=parse_time,
        metavar="T",
        help=f"only what changed since T (default: 1d, the last day): {TIMES}",
    )
    scope.add_argument(
        "--full",
        action="store_true",
        help="every object, whatever its age (cost grows with history)",
    )
    _table(audit, limit=False)
    sweeper = _command(
        nouns,
        "sweeper",
        commands.sweeper,
        "when the sweeper last completed a pass; exit 1 if not within --within seconds"
        " (beat's health check)",
    )
    sweeper.add_argument(
        "--within", type=_limit, default=60, help="seconds (default 60)", metavar="SECONDS"
    )
    return parser


def _inbound(nouns: Any) -> None:
    verbs = _noun(nouns, "inbound", "inbound Stripe events: list, replay")
    listing = _command(verbs, "list", commands.inbound_list, "inbound events, newest first")
    listing.add_argument("--status", choices=["pending", "processed", "ignored", "failed"])
    listing.add_argument("--since", type=parse_time, metavar="T", help=f"received since T: {TIMES}")
    _table(listing)
    replay = _command(
        verbs,
        "replay",
        commands.inbound_replay,
        "put inbound events back to pending, due now, with a fresh retry"
        " budget: by id (tally inbound replay EVT…) or by the time they were"
        " received (tally inbound replay --failed --since T)",
    )
    replay.add_argument("ids", nargs="*", metavar="EVT", help="inbound event ids (evt_…)")
    replay.add_argument("--since", type=parse_time, metavar="T", help=f"received since T: {TIMES}")
    replay.add_argument("--until", type=parse_time, metavar="T", help="received before T")
    statuses = replay.add_mutually_exclusive_group()
    statuses.add_argument("--failed", action="store_true", help="failed events only (default)")
    statuses.add_argument(
        "--any-status",
        action="store_true",
        help="processed and ignored ones too (handling is idempotent)",
    )
    _table(replay, limit=False)


def _events(nouns: Any) -> None:
    verbs = _noun(nouns, "events", "events Tally emitted: list, resend")
    listing = _command(verbs, "list", commands.events_list, "events, newest first, both modes")
    listing.add_argument("--type", help="only this type, e.g. invoice.paid")
    _table(listing)
    resend = _command(
        verbs,
        "resend",
        commands.events_resend,
        "deliver an event again, due now, like Stripe's resend: to one endpoint"
        " (subscribed or not), or to every enabled endpoint subscribed to its"
        " type; an endpoint's earlier delivery is reset, keeping its attempts",
    )
    republish = _command(
        verbs,
        "republish",
        commands.events_republish,
        "put published events back on the Redis stream from PostgreSQL, in order, each"
        " with its position (for a stream consumer that found a gap, or after Redis"
        " lost the stream): from a position (--from N) or created since T (--since T)",
    )
    start = republish.add_mutually_exclusive_group(required=True)
    start.add_argument(
        "--from", dest="from_position", type=_position, metavar="N", help="from position N on"
    )
    start.add_argument("--since", type=parse_time, metavar="T", help=f"created since T: {TIMES}")
    resend.add_argument("event", metavar="EVT", help="event id (evt_…)")
    resend.add_argument("--endpoint", metavar="WE", help="webhook endpoint id (we_…)")
    _table(resend, limit=False)


def _deliveries(nouns: Any) -> None:
    verbs = _noun(nouns, "deliveries", "deliveries to webhook endpoints: list, retry")
    listing = _command(
        verbs,
        "list",
        commands.deliveries_list,
        "an endpoint's delivery attempts, newest first (deliveries not yet"
        " attempted before them): status, HTTP status, latency, error, time",
    )
    listing.add_argument("--endpoint", metavar="WE", required=True, help="webhook endpoint id")
    listing.add_argument(
        "--failed",
        action="store_true",
        help="failed attempts only, and failed deliveries never attempted",
    )
    _table(listing)
    retry = _command(
        verbs,
        "retry",
        commands.deliveries_retry,
        "put an endpoint's failed deliveries of events created since T back to"
        " pending, due now, with a fresh retry schedule",
    )
    retry.add_argument("--endpoint", metavar="WE", required=True, help="webhook endpoint id")
    retry.add_argument(
        "--since",
        type=parse_time,
        metavar="T",
        required=True,
        help=f"events created since T: {TIMES}",
    )
    _table(retry, limit=False)


def _endpoints(nouns: Any) -> None:
    verbs = _noun(nouns, "endpoints", "webhook endpoints: enable")
    enable = _command(
        verbs,
        "enable",
        commands.endpoints_enable,
        "re-enable a webhook endpoint, e.g. one disabled after failing a whole"
        " retry schedule (its failed deliveries stay failed: tally deliveries"
        " retry)",
    )
    enable.add_argument("endpoint", metavar="WE", help="webhook endpoint id (we_…)")
    _table(enable, limit=False)


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"tally: {' '.join(message.split())}\n")
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    adopt_dev_env()
    try:
        if not args.db:
            return args.run(args)
        with psycopg.connect(
            database_url(),
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=5,
            application_name="tally",
        ) as conn:
            return args.run(conn, args)
    except (InvalidRequest, NotFound) as exc:
        return _fail(exc.message, 2)
    except psycopg.Error as exc:
        return _fail(f"PostgreSQL: {exc or type(exc).__name__}", 1)
