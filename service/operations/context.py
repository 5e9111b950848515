"""Who caused a change, recorded on the events it writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.domain.events import Event


@dataclass(frozen=True, slots=True)
class Caller:
    livemode: bool
    request_id: str | None = None
    idempotency_key: str | None = None

    def event(
        self,
        type_: str,
        obj: dict[str, Any],
        *,
        now: int,
        previous: dict[str, Any] | None = None,
    ) -> Event:
        """An event of a change this caller caused, carrying its request and key. Only
        built: the caller's process wakes the publisher once the change commits."""
        return Event(
            type=type_,
            livemode=self.livemode,
            created=now,
            object=obj,
            previous_attributes=previous,
            request_id=self.request_id,
            idempotency_key=self.idempotency_key,
        )


def webhook_caller(livemode: bool) -> Caller:
    """Changes caused by an inbound webhook carry no API request."""
    return Caller(livemode=livemode)
