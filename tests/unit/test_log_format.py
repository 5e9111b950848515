"""The request log's formatter writes what python-json-logger's JsonFormatter writes
(then redacts it): the same fields, in the same order, for every kind of record."""

from __future__ import annotations

import copy
import datetime
import enum
import logging
import sys

import pytest
from pythonjsonlogger.json import JsonFormatter

from service import observability

FORMAT = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"
RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


class Colour(enum.Enum):
    RED = "red"


def records() -> list[logging.LogRecord]:
    def record(msg: object, args: tuple = (), **extra: object) -> logging.LogRecord:
        made = logging.LogRecord("tally.request", logging.INFO, __file__, 1, msg, args, None)
        made.__dict__.update(extra)
        return made

    plain = record("request", method="POST", status=200, duration_ms=1.25, client=None)
    with_args = record("inbound event %s (%s) of %d bytes", ("evt_1", "x.y", 12))
    odd_values = record(
        "odd", when=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC), colour=Colour.RED,
        raw=b"bytes", error=ValueError("no"), type=int, nested={"a": [1, "é"]},
        time="an extra named like a renamed field", _private="skipped",
    )  # fmt: skip
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = record("failed", exc_info=sys.exc_info())
    cached = record("cached text", exc_text="Traceback: earlier")
    stacked = record("stack", stack_info="Stack (most recent call last): here")
    as_dict = record({"event": "dict message", "count": 2})
    return [plain, with_args, odd_values, failed, cached, stacked, as_dict]


@pytest.mark.parametrize("index", range(len(records())))
def test_the_fast_format_is_json_formatters(index):
    ours = observability.RedactingJsonFormatter(FORMAT, rename_fields=RENAMES)
    theirs = JsonFormatter(FORMAT, rename_fields=RENAMES)
    record = records()[index]
    record.request_id = "req_1"  # as the context filter binds it
    assert ours._format(copy.copy(record)) == theirs.format(copy.copy(record))


@pytest.mark.parametrize(
    "line",
    [
        '{"message": "request", "path": "/v1/customers"}',
        '{"m": "sk_live_abcdef123456"}',
        "url=SK%5FTEST%5Fabcdef123",
        "Authorization: bEaReR abcdefgh",
        "\\u017fk_test_abcdef (escaped, ASCII)",
        "\u017fk_test_abcdef (not ASCII: the full scan)",
        "whsec_0123456789",
    ],
)
def test_redaction_is_the_full_scan_with_or_without_the_markers(line):
    exact = observability._exact  # values other tests configured, if any
    expected = exact.sub(observability.REDACTED, line) if exact is not None else line
    assert observability.redact(line) == observability._SECRET.sub(observability.REDACTED, expected)


LINES_WITH_VALUES = [
    '{"message": "request", "path": "/v1/customers"}',
    '{"m": "key sk_test_unit_value_123 in a message"}',
    "url=sk%5Ftest_unit_value_123&x=1",
    "escaped s\\\\k_test_unit_value_123 in a repr in JSON",
    "secret whsec_unit_value_456, twice: whsec_unit_value_456",
    "almost whsec_unit_value_45",
]


def test_configured_values_are_redacted_as_the_full_scan_would(monkeypatch):
    # given no values yet (other tests configure theirs), then plain values (each
    # character only itself), then one that is not
    monkeypatch.setattr(observability, "_values", frozenset())
    monkeypatch.setattr(observability, "_exact", None)
    monkeypatch.setattr(observability, "_verbatim", None)
    observability.redact_values(["sk_test_unit_value_123", "whsec_unit_value_456"])
    assert observability._verbatim is not None
    checked = [(line, observability.redact(line)) for line in LINES_WITH_VALUES]
    observability.redact_values(["pässwörd-unit-value"])
    assert observability._verbatim is None
    checked += [
        (line, observability.redact(line)) for line in [*LINES_WITH_VALUES, "p\\u00e4sswörd"]
    ]
    # then each line is what both scans in full make of it
    for line, redacted in checked:
        exact = observability._exact
        assert exact is not None
        full = observability._SECRET.sub(
            observability.REDACTED, exact.sub(observability.REDACTED, line)
        )
        assert redacted == full, line
    assert "unit_value" not in "".join(redacted for line, redacted in checked if "45," in line)
