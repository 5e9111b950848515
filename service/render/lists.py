"""Stripe's list object, for list endpoints and embedded lists alike."""

from __future__ import annotations

from typing import Any


def list_object(data: list[dict[str, Any]], *, has_more: bool, url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
