"""Metrics and logs shared by every process: the prometheus-client metrics, the
multiprocess directory their values live in, and one JSON line per log record.

Imports only the standard library, prometheus_client and python-json-logger, so
the operations, the Celery workers and gunicorn's master can all use it.

Metrics: under gunicorn and Celery prefork each child process writes its values to
files in PROMETHEUS_MULTIPROC_DIR, and a scrape adds them up (prometheus-client's
multiprocess mode). Every metric here has labels, so no value exists until it is
first observed, which happens after the fork, once the directory is known.

Logs: one JSON object per line, carrying the context bound for the current
request or task (request_id, event_id, invoice_id, task, ...). Every line passes
through `redact`, so a key, webhook secret or Authorization header that slips into
a message never reaches the log.
"""

from __future__ import annotations

import contextvars
import glob
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from typing import Any, TextIO

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values
from pythonjsonlogger.json import JsonFormatter

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# -- metrics -----------------------------------------------------------------------------

# Seconds; from a fast GET to a request held by a slow lock or a 10 s receiver.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds of pipeline lag: sub-second when flowing, minutes to hours when stuck.
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)

HTTP_REQUEST_SECONDS = Histogram(
    "tally_http_request_duration_seconds",
    "HTTP requests by method, route template (never the raw path) and status.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
INBOUND_EVENTS_SETTLED = Counter(
    "tally_inbound_events_settled",
    "Inbound Stripe events settled by a worker, by type and outcome "
    "(processed, ignored, retrying, failed).",
    ["type", "outcome"],
)
INBOUND_RECEIVED_TO_PROCESSED = Histogram(
    "tally_inbound_received_to_processed_seconds",
    "Seconds from storing an inbound Stripe event to committing its processing "
    "(for payment_intent.succeeded: webhook received to invoice credited).",
    ["type"],
    buckets=_LAG_BUCKETS,
)
EVENT_PUBLISH_DELAY = Histogram(
    "tally_event_publish_delay_seconds",
    "Seconds from an event's creation to its publication on the Redis stream "
    "(created has whole-second resolution).",
    ["type"],
    buckets=_LAG_BUCKETS,
)
DELIVERY_ATTEMPTS = Counter(
    "tally_webhook_delivery_attempts",
    "Webhook delivery attempts by outcome (succeeded, retrying, failed).",
    ["outcome"],
)
DELIVERY_SECONDS = Histogram(
    "tally_webhook_delivery_duration_seconds",
    "Seconds each webhook delivery attempt waited on the receiver, by outcome.",
    ["outcome"],
    buckets=_LATENCY_BUCKETS,
)
TASK_SECONDS = Histogram(
    "tally_task_duration_seconds",
    "Celery task run time by task name and final state (SUCCESS, FAILURE, RETRY, ...).",
    ["task", "state"],
    buckets=_LATENCY_BUCKETS,
)

# Inbound types worth a label of their own; any other type is counted as "other",
# so a sender cannot grow the number of series.
KNOWN_INBOUND_TYPES = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.processing",
        "payment_intent.requires_action",
        "payment_intent.created",
        "payment_intent.canceled",
        "payment_intent.payment_failed",
    }
)


def inbound_type_label(event_type: str) -> str:
    return event_type if event_type in KNOWN_INBOUND_TYPES else "other"


def observe_inbound_settled(settled: Iterable[tuple[str, str, float | None]]) -> None:
    """Count settled inbound events: (type, outcome, seconds since received, if processed)."""
    for event_type, outcome, seconds in settled:
        label = inbound_type_label(event_type)
        INBOUND_EVENTS_SETTLED.labels(label, outcome).inc()
        if seconds is not None:
            INBOUND_RECEIVED_TO_PROCESSED.labels(label).observe(max(seconds, 0.0))


def observe_published(rows: Iterable[dict[str, Any]], now: float) -> None:
    """Observe events just published: rows with `type` and `created` (Unix seconds)."""
    for row in rows:
        EVENT_PUBLISH_DELAY.labels(row["type"]).observe(max(now - int(row["created"]), 0.0))


def observe_delivery(outcome: str, latency_ms: int) -> None:
    DELIVERY_ATTEMPTS.labels(outcome).inc()
    DELIVERY_SECONDS.labels(outcome).observe(latency_ms / 1000)


_MASTER_DIR = re.compile(r"tally-[a-z]+-(\d+)")


def prepare_multiprocess_dir(role: str) -> str:
    """In a master process, before it forks its children: the directory they write
    metrics to, created empty.

    PROMETHEUS_MULTIPROC_DIR names a parent directory (else tally-metrics in the
    system's temp directory); each master gets `tally-<role>-<pid>` inside it, so a web and a
    worker master on one host never clear each other's files, and the directories
    of masters no longer running are removed here, which is the clearing at startup
    that multiprocess mode needs.
    """
    parent = os.environ.get("TALLY_METRICS_PARENT_DIR") or os.environ.get(MULTIPROC_ENV)
    parent = parent or os.path.join(tempfile.gettempdir(), "tally-metrics")
    os.makedirs(parent, exist_ok=True)
    for stale in glob.glob(os.path.join(parent, "tally-*-*")):
        found = _MASTER_DIR.fullmatch(os.path.basename(stale))
        if found and not _alive(int(found[1])):
            shutil.rmtree(stale, ignore_errors=True)
    path = os.path.join(parent, f"tally-{role}-{os.getpid()}")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    # The children inherit both: where to write, and where the parent was chosen.
    os.environ["TALLY_METRICS_PARENT_DIR"] = parent
    os.environ[MULTIPROC_ENV] = path
    # prometheus_client picks its value class when first imported, which in this
    # process may have been before the directory was set. No value exists yet
    # (every metric has labels), so choosing again is enough.
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_process_dead(pid: int) -> None:
    """A child exited: drop its live-gauge files (counters and histograms stay summed)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)


def multiprocess_registry() -> CollectorRegistry | None:
    """A registry summing every process's files, or None outside multiprocess mode."""
    if not os.environ.get(MULTIPROC_ENV):
        return None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


# -- logs --------------------------------------------------------------------------------

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("tally_log_context")


def reset_log_context(**fields: Any) -> None:
    """Start a new request or task: forget what the previous one bound."""
    _context.set({k: v for k, v in fields.items() if v is not None})


def bind(**fields: Any) -> None:
    """Add fields (event_id=..., invoice_id=...) to every log line of this request or task."""
    _context.set({**_context.get({}), **{k: v for k, v in fields.items() if v is not None}})


def log_context() -> dict[str, Any]:
    return dict(_context.get({}))


# A character of a key or secret: base64 in either alphabet (token_urlsafe emits `-`
# and `_`), Stripe's `*` mask, or any URL-encoded byte (`whsec_abc%2Dxyz`).
_KEY_CHAR = r"(?:[0-9A-Za-z_\-+/=*]|%[0-9A-Fa-f]{2})"
_UNDERSCORE = r"(?:_|%5F)"
# Stripe-style secret and restricted keys, webhook secrets, and credentials after an
# auth scheme (a Basic credential is the key, base64-encoded). No word boundary before
# them: in a JSON-escaped traceback a key may follow `\n`, and in a URL `%3D`.
_SECRET = re.compile(
    # The lookahead lets most positions fail at once: half the time of the bare pattern.
    r"(?=[srwb])(?:"
    rf"(?:sk|rk){_UNDERSCORE}(?:test|live){_UNDERSCORE}{_KEY_CHAR}+"
    rf"|whsec{_UNDERSCORE}{_KEY_CHAR}+"
    rf"|(?:Basic|Bearer)(?:\s|%20|\+)+(?:[.~]|{_KEY_CHAR}){{6,}}"
    ")",
    re.IGNORECASE,
)
REDACTED = "[redacted]"
# Shorter configured values are not looked for: they would blank common words.
MIN_REDACTED_VALUE = 6

_values: frozenset[str] = frozenset()
_exact: re.Pattern[str] | None = None
# The values, when each of their characters is written only as itself (raw, escaped
# and URL-encoded forms aside): then in a line with no `\\` and no `%`, _exact can
# match nothing but a value verbatim, which `in` finds faster. None otherwise.
_verbatim: tuple[str, ...] | None = None


def redact_values(values: Iterable[str | None]) -> None:
    """Also redact these exact strings from every log line, whatever they look like:
    the configured API keys and webhook secrets (a secret need not start with whsec_).

    Called by each process with its Settings (create_app, make_celery, gunicorn's
    master). Values add up and are never forgotten. Each is found raw, URL-encoded
    (in part or whole) or escaped, as the formatter may write it.
    """
    global _values, _exact, _verbatim
    _values = _values | {v for v in values if v and len(v) >= MIN_REDACTED_VALUE}
    # Longest first, so a value containing another is redacted whole.
    ordered = sorted(_values, key=len, reverse=True)
    if not ordered:
        return
    # What a value's first character may be written as: a lookahead on those lets
    # most positions of a line fail at once.
    starts = {"\\", "%"} | {start for v in ordered for start in _forms_of(v[0])}
    lookahead = "(?=[" + "".join(re.escape(c) for c in sorted(starts)) + "])"
    _exact = re.compile(lookahead + "(?:" + "|".join(_any_form(v) for v in ordered) + ")")
    plain = all(_forms_of(c) == {c} and c not in " \\%" for v in ordered for c in v)
    _verbatim = tuple(ordered) if plain else None


def _any_form(value: str) -> str:
    """A pattern for `value` with each character raw, URL-encoded, or escaped as JSON or
    a Python repr, at any depth (a dict's repr in a message, in a JSON line)."""
    parts = []
    for char in value:
        if char == "\\":
            parts.append(r"\\+")
            continue
        forms = {re.escape(form) for form in _forms_of(char)}
        forms.add("(?i:" + "".join(f"%{byte:02X}" for byte in char.encode()) + ")")
        if char == " ":
            forms.add(r"\+")  # quote_plus
        parts.append(r"\\*(?:" + "|".join(sorted(forms)) + ")")
    return "".join(parts)


def _forms_of(char: str) -> set[str]:
    """`char`, and what follows the backslashes when JSON or a repr escapes it (`n` of
    `\\n`, `u00e9` of `\\u00e9`)."""
    return {
        char,
        json.dumps(char)[1:-1].lstrip("\\"),
        char.encode("unicode_escape").decode().lstrip("\\"),
    }


# What any match of _SECRET contains, lowercased: in ASCII text, where IGNORECASE is
# plain ASCII case, a line without any of these has nothing for _SECRET (a JSON line
# is ASCII: the formatter escapes the rest). Finding none costs a third of the scan.
_SECRET_MARKERS = ("sk_", "rk_", "sk%5f", "rk%5f", "whsec", "basic", "bearer")


def redact(text: str) -> str:
    exact, verbatim = _exact, _verbatim
    if exact is not None and (
        verbatim is None or "\\" in text or "%" in text or any(value in text for value in verbatim)
    ):
        text = exact.sub(REDACTED, text)
    if text.isascii():
        lowered = text.lower()
        if not any(marker in lowered for marker in _SECRET_MARKERS):
            return text
    return _SECRET.sub(REDACTED, text)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get({}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class RedactingJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, with every secret-shaped string redacted.

    A record is formatted here as JsonFormatter.format would, for the configuration
    json_handler gives it, in half its time (one line per request, the web's most
    frequent Python work after the request itself): its fields in the same order, by
    the same encoder. tests/unit/test_log_format.py holds the two equal; any other
    configuration, or a dict message, goes through JsonFormatter itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        encoder = self.json_encoder
        self._encoder = None if encoder is None else encoder(ensure_ascii=self.json_ensure_ascii)
        self._renamed = [(field, self._get_rename(field)) for field in self._required_fields]
        self._plain = (
            self._encoder is not None
            and not self.defaults
            and not self.static_fields
            and not self.timestamp
            and not self.rename_fields_keep_missing
            and not self.prefix
            and self.json_default is None
            and self.json_indent is None
            and self.json_serializer is json.dumps
            and type(self).process_log_record is JsonFormatter.process_log_record
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact(self._format(record))

    def _format(self, record: logging.LogRecord) -> str:
        if self._encoder is None or not self._plain or isinstance(record.msg, dict):
            return super().format(record)
        record.message = record.getMessage()
        if "asctime" in self._required_fields:
            record.asctime = self.formatTime(record, self.datefmt)
        fields = record.__dict__
        data = {renamed: fields.get(field) for field, renamed in self._renamed}
        exc_info = self.formatException(record.exc_info) if record.exc_info else None
        if not exc_info and record.exc_text:
            exc_info = record.exc_text
        if exc_info is not None:
            data["exc_info"] = exc_info
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        skip, rename = self._skip_fields, self.rename_fields
        for key, value in fields.items():
            if key not in skip and not (hasattr(key, "startswith") and key.startswith("_")):
                data[rename.get(key, key)] = value
        return self._encoder.encode(data)


def json_handler(stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.__stderr__ or sys.stderr)
    handler.setFormatter(
        RedactingJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_ContextFilter())
    handler.set_name("tally-json")
    return handler


def configure_logging(level: int | str = logging.INFO, *, replace: bool = True) -> None:
    """Send every log record to stderr as one JSON line.

    With replace=False nothing changes if the root logger already has handlers
    (a test runner's, or the server's that called this first).
    """
    root = logging.getLogger()
    if root.handlers and not replace:
        return
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(json_handler())
    root.setLevel(level)
    # Celery logs "received" and "succeeded" for every task; the task line says both.
    for name in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(logging.WARNING)
