"""Stripe's metadata rules, for every object that carries metadata."""

from __future__ import annotations


def merge_metadata(current: dict[str, str], update: dict[str, str]) -> dict[str, str]:
    """The metadata after an update: keys merge into `current`, a key set to "" is
    removed, and an empty update (`metadata=""`) removes every key."""
    if not update:
        return {}
    merged = {**current, **update}
    return {k: v for k, v in merged.items() if v != ""}
