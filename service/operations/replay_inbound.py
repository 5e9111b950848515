"""Replaying stored inbound events: failed ones once their cause is fixed, or any."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from service.db import Conn
from service.errors import InvalidRequest
from service.store import inbound_events
from service.store.inbound_events import Requeued

FAILED_ONLY = ("failed",)


def replay_inbound(
    conn: Conn,
    *,
    ids: Sequence[str] | None = None,
    received_since: datetime | None = None,
    received_until: datetime | None = None,
    statuses: Sequence[str] | None = FAILED_ONLY,
) -> list[Requeued]:
    """Put the chosen inbound events back to `pending`, due now, with the full retry
    budget, and return them (oldest first); the consumers then process them as new.

    Choose by `ids`, by a `received_since`/`received_until` range (since inclusive,
    until exclusive), or both; by default only `failed` events, `statuses=None` for
    any (processed ones too: handling is idempotent, so a replay credits nothing
    twice). One statement: the events are re-queued together or not at all.
    """
    if not ids and received_since is None and received_until is None:
        raise InvalidRequest("Name the events to replay: ids, or a time range.", param="ids")
    return inbound_events.requeue(
        conn,
        ids=ids or None,
        received_since=received_since,
        received_until=received_until,
        statuses=statuses,
    )
