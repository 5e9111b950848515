"""Who caused a change, recorded on the events it writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.domain.events import Event


@dataclass(frozen=True, slots=True)
class Caller:
    livemode: bool
    request_id: str | None = None
    idempotency_key: str | None = None
    # Told whenever an event is made, so the caller's process can have it published
    # promptly once the change commits (the web layer wakes the publisher).
    on_event: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def event(
        self,
        type_: str,
        obj: dict[str, Any],
        *,
        now: int,
        previous: dict[str, Any] | None = None,
    ) -> Event:
        """An event of a change this caller caused, carrying its request and key."""
        if self.on_event is not None:
            self.on_event()
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
