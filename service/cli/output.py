"""What `tally` prints: an aligned table by default, a JSON array of objects with --json."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

# A table cell longer than this is cut (an error message can run to 500 characters);
# --json prints every value whole.
MAX_CELL = 60


def iso(moment: datetime | int) -> str:
    """A time in ISO 8601 UTC (`2026-12-01T10:00:00Z`), from a datetime or Unix seconds."""
    if isinstance(moment, int):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = " ".join(str(_plain(value)).split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def show(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, as_json: bool) -> None:
    """Print `rows`, keeping `columns` in that order: a table, or a JSON array."""
    if as_json:
        objects = [{c: _plain(row[c]) for c in columns} for row in rows]
        sys.stdout.write(json.dumps(objects, indent=2) + "\n")
        return
    table = [[c.upper() for c in columns]] + [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
        sys.stdout.write("\n")


def note(message: str) -> None:
    """A line for the operator beside the output (stderr, so stdout stays parseable)."""
    sys.stderr.write(message + "\n")
