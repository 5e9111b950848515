"""Stripe's `expand`: ids become objects, includable fields appear, dotted paths
recurse (at most four levels); an unknown path is a 400 naming `expand`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.errors import InvalidParameter

MAX_DEPTH = 4

# prefix -> fetch(id, livemode) returning the rendered object, or None.
Fetcher = Callable[[str, bool], dict[str, Any] | None]
# (object type, field) -> include(obj, livemode) returning the field's value.
Includer = Callable[[dict[str, Any], bool], Any]

_fetchers: dict[str, Fetcher] = {}
_includers: dict[tuple[str, str], Includer] = {}

# object type -> {field holding an id: the object it expands to}. Only these expand:
# any other string (`id`, a `description` that happens to read "cus_...") is refused,
# as in Stripe. A hash inside an object is typed "<object>.<field>".
EXPANDABLE_FIELDS: dict[str, dict[str, str]] = {
    "customer_balance_transaction": {"customer": "customer", "invoice": "invoice"},
    "invoice": {"customer": "customer"},
    "invoiceitem": {"customer": "customer", "invoice": "invoice"},
    "line_item": {"invoice": "invoice"},
    "invoice_payment": {"invoice": "invoice"},
    "invoice_payment.payment": {
        "payment_intent": "payment_intent",
        "payment_record": "payment_record",
    },
    "payment_intent": {"customer": "customer"},
    "payment_record.customer_details": {"customer": "customer"},
}


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


def includers() -> list[tuple[tuple[str, str], Includer]]:
    """Every includable field, as ((object type, field), include)."""
    return list(_includers.items())


def expand(obj: dict[str, Any], paths: list[str], livemode: bool) -> dict[str, Any]:
    for path in paths:
        segments = path.split(".")
        if len(segments) > MAX_DEPTH + 1 or not all(segments):
            raise InvalidParameter(
                f"You cannot expand more than {MAX_DEPTH} levels of a property.", param="expand"
            )
        _expand_path(obj, _kind(obj, ""), segments, path, livemode)
    return obj


def _expand_path(
    obj: dict[str, Any], kind: str, segments: list[str], path: str, livemode: bool
) -> None:
    key, rest = segments[0], segments[1:]
    if kind in ("list", "search_result") and key == "data":
        if not rest:
            raise _cannot_expand(path)
        for item in obj["data"]:
            _expand_path(item, _kind(item, ""), rest, path, livemode)
        return
    include = _includers.get((kind, key))
    if include is not None and key not in obj:
        obj[key] = include(obj, livemode)
    if key not in obj:
        raise _cannot_expand(path)
    value = obj[key]
    if isinstance(value, str):
        fetch = _fetchers.get(value.partition("_")[0])
        if fetch is None or key not in EXPANDABLE_FIELDS.get(kind, {}):
            raise _cannot_expand(path)
        value = obj[key] = fetch(value, livemode) or value
    elif value is None or (include is not None and not rest and not isinstance(value, dict)):
        return  # null, or an included scalar such as amount_paid_off_stripe
    elif not isinstance(value, dict) or (include is None and not rest and "object" not in value):
        raise _cannot_expand(path)
    if rest and isinstance(value, dict):
        _expand_path(value, _kind(value, f"{kind}.{key}"), rest, path, livemode)


def _kind(obj: dict[str, Any], otherwise: str) -> str:
    """The object type of a hash; an event's `data` has an `object` that is not one."""
    kind = obj.get("object")
    return kind if isinstance(kind, str) else otherwise


def _cannot_expand(path: str) -> InvalidParameter:
    return InvalidParameter(f"This property cannot be expanded ({path}).", param="expand")
