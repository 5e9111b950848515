"""JSON from outside Tally (API bodies, inbound webhooks), parsed within bounds.

`json.loads` recurses once per level of nesting, so a body nested a few thousand deep
raises RecursionError, not ValueError; `1e400` parses as an infinite float; NaN and
Infinity are not JSON (PostgreSQL's jsonb refuses them); and an integer of more than
4300 digits raises a ValueError whose message names a Python setting. Each of these
is a JSONRefused with a plain message and, where it can tell, the top-level key whose
value is at fault, for the caller's 400.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

# What the parser puts in place of a number it cannot represent, for the walk after
# parsing to find (and name the key it sits under); never returned to a caller.
_OUT_OF_RANGE = object()


class JSONRefused(ValueError):
    """Input that is not JSON Tally takes; the message says why, in the caller's words,
    and `key` is the top-level key whose value is at fault, when known."""

    def __init__(self, message: str, *, key: str | None = None):
        super().__init__(message)
        self.key = key


def loads(data: str | bytes, *, max_depth: int) -> Any:
    """Parse `data`, holding objects and arrays nested at most `max_depth` levels (the
    top-level value is level 1) and only finite numbers Python represents; or raise
    JSONRefused."""
    out_of_range: list[str] = []

    def parse_float(text: str) -> Any:
        number = float(text)
        if math.isfinite(number):
            return number
        out_of_range.append(text)
        return _OUT_OF_RANGE

    def parse_int(text: str) -> Any:
        try:
            return int(text)
        except ValueError:  # over Python's limit of 4300 digits
            out_of_range.append(text)
            return _OUT_OF_RANGE

    try:
        value = json.loads(
            data, parse_constant=_refuse_constant, parse_float=parse_float, parse_int=parse_int
        )
    except RecursionError:
        raise JSONRefused("it is nested too deeply") from None
    except JSONRefused:
        raise
    except ValueError:  # including UnicodeDecodeError
        raise JSONRefused("it is not valid JSON") from None
    # Each level opens with a bracket, so fewer brackets than levels allowed (counted in
    # C, strings included) need no walk; nor do numbers, when none was out of range.
    # Any encoding json.loads takes writes `{` and `[` with their ASCII byte.
    if out_of_range or _brackets(data) > max_depth:
        _check(value, max_depth)
    return value


def _brackets(data: str | bytes) -> int:
    if isinstance(data, str):
        return data.count("{") + data.count("[")
    return data.count(b"{") + data.count(b"[")


def _check(value: Any, max_depth: int) -> None:
    """Iterative: `value` may be nested as deep as the parser allowed."""
    pending: list[tuple[Any, int, str | None]] = [(value, 1, None)]
    while pending:
        node, level, key = pending.pop()
        if node is _OUT_OF_RANGE:
            raise JSONRefused("a number is out of range", key=key)
        children: Iterable[tuple[Any, Any]]
        if isinstance(node, dict):
            children = node.items()
        elif isinstance(node, list):
            children = enumerate(node)
        else:
            continue
        if level > max_depth:
            raise JSONRefused(f"it is nested more than {max_depth} levels deep", key=key)
        pending.extend((child, level + 1, key or str(name)) for name, child in children)


def _refuse_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not a JSON number")
