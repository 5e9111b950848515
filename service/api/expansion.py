"""Stripe's `expand`: ids become objects, includable fields appear, dotted paths
recurse (at most four levels); an unknown path is a 400 naming `expand`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.errors import InvalidRequest

MAX_DEPTH = 4

# prefix -> fetch(id, livemode) returning the rendered object, or None.
Fetcher = Callable[[str, bool], dict[str, Any] | None]
# (object type, field) -> include(obj, livemode) returning the field's value.
Includer = Callable[[dict[str, Any], bool], Any]

_fetchers: dict[str, Fetcher] = {}
_includers: dict[tuple[str, str], Includer] = {}


def expandable(prefix: str) -> Callable[[Fetcher], Fetcher]:
    """Register how to fetch objects whose ids start with `prefix`."""

    def register(fetch: Fetcher) -> Fetcher:
        _fetchers[prefix] = fetch
        return fetch

    return register


def includable(object_type: str, field: str) -> Callable[[Includer], Includer]:
    """Register a field left out of `object_type` unless expanded (like `payments`)."""

    def register(include: Includer) -> Includer:
        _includers[(object_type, field)] = include
        return include

    return register


def expand(obj: dict[str, Any], paths: list[str], livemode: bool) -> dict[str, Any]:
    for path in paths:
        segments = path.split(".")
        if len(segments) > MAX_DEPTH + 1 or not all(segments):
            raise InvalidRequest(
                f"You cannot expand more than {MAX_DEPTH} levels of a property.", param="expand"
            )
        _expand_path(obj, segments, path, livemode)
    return obj


def _expand_path(obj: dict[str, Any], segments: list[str], path: str, livemode: bool) -> None:
    key, rest = segments[0], segments[1:]
    if obj.get("object") == "list" and key == "data":
        if not rest:
            raise _cannot_expand(path)
        for item in obj["data"]:
            _expand_path(item, rest, path, livemode)
        return
    include = _includers.get((obj.get("object", ""), key))
    if include is not None and key not in obj:
        obj[key] = include(obj, livemode)
    if key not in obj:
        raise _cannot_expand(path)
    value = obj[key]
    if isinstance(value, str):
        fetch = _fetchers.get(value.partition("_")[0])
        if fetch is None:
            raise _cannot_expand(path)
        value = obj[key] = fetch(value, livemode) or value
    elif value is None or (include is not None and not rest and not isinstance(value, dict)):
        return  # null, or an included scalar such as amount_paid_off_stripe
    elif not isinstance(value, dict) or (include is None and not rest and "object" not in value):
        raise _cannot_expand(path)
    if rest and isinstance(value, dict):
        _expand_path(value, rest, path, livemode)


def _cannot_expand(path: str) -> InvalidRequest:
    return InvalidRequest(f"This property cannot be expanded ({path}).", param="expand")
