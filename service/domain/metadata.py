"""Stripe's metadata updates."""

from __future__ import annotations


def merge_metadata(current: dict[str, str], update: dict[str, str]) -> dict[str, str]:
    """Stripe merges metadata: an empty value unsets its key, and `metadata=""` (an
    empty update) unsets every key."""
    if not update:
        return {}
    merged = {**current, **update}
    return {k: v for k, v in merged.items() if v != ""}
