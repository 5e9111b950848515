"""Stripe's metadata updates."""

from __future__ import annotations


def merge_metadata(current: dict[str, str], update: dict[str, str]) -> dict[str, str]:
    """Stripe merges metadata: an empty value unsets its key, and `metadata=""` (an
    empty update) unsets every key."""
    if not update:
        return {}
    merged = {**current, **update}
    return {k: v for k, v in merged.items() if v != ""}


def previous_metadata(before: dict[str, str], after: dict[str, str]) -> dict[str, str | None]:
    """What an event's previous_attributes say of a metadata change, as Stripe's do:
    only the keys that changed, each with its value before (null for a key added)."""
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return {k: before.get(k) for k in changed}
