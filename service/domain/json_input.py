"""JSON from outside Tally (API bodies, inbound webhooks), parsed within bounds.

`json.loads` recurses once per level of nesting, so a body nested a few thousand deep
raises RecursionError, not ValueError; `1e400` parses as an infinite float; NaN and
Infinity are not JSON (PostgreSQL's jsonb refuses them); and an integer of more than
4300 digits raises a ValueError whose message names a Python setting. Each of these
becomes a JSONRefused with a plain message, for the caller's 400.
"""

from __future__ import annotations

import json
import math
from typing import Any


class JSONRefused(ValueError):
    """Input that is not JSON Tally takes; the message says why, in the caller's words."""


def loads(data: str | bytes) -> Any:
    """Parse `data`, or raise JSONRefused. Callers bound the depth of what they accept
    with `nested_deeper_than`; this only keeps parsing itself from failing badly."""
    try:
        return json.loads(
            data, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_int
        )
    except RecursionError:
        raise JSONRefused("it is nested too deeply") from None
    except JSONRefused:
        raise
    except ValueError:  # including UnicodeDecodeError
        raise JSONRefused("it is not valid JSON") from None


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` holds objects or arrays nested more than `limit` levels (an
    object or array is one level; a string or number none). Iterative: `value` may be
    as deep as the parser allowed."""
    pending = [(value, 1)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if level > limit:
            return True
        pending.extend((child, level + 1) for child in children)
    return False


def _refuse_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise JSONRefused("a number is out of range")
    return number


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # over Python's limit of 4300 digits
        raise JSONRefused("a number has too many digits") from None
