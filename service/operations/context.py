"""Who caused a change, recorded on the events it writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    livemode: bool
    request_id: str | None = None
    idempotency_key: str | None = None


def webhook_caller(livemode: bool) -> Caller:
    """Changes caused by an inbound webhook carry no API request."""
    return Caller(livemode=livemode)
