"""Draining pending inbound events: batch after batch for as long as they keep coming.

Each batch is one transaction (operations/process_inbound.py). The wake-up flag
that started the drain (service/queue.py) stays set while it runs, so events
stored meanwhile send no task of their own: its next batch takes them, and under
steady traffic one task runs many batches instead of paying Celery's dispatch per
batch. Only when a claim comes back empty does the drain clear the flag, and then
it claims once more: an event stored before the clear is in that last claim, and
one stored after it finds the flag clear and sends a new task. So no wake-up is
lost.

Before it lets go, an idle drain waits LINGER and claims once more: under steady
traffic the next event is usually that close, and a claim costs far less than the
wake-up, task and dispatch it saves (with the flag still set, none is sent).

A drain publishes the events its batches committed when a claim comes back empty,
and while events keep coming once they are PUBLISH_WITHIN old: a publish after
every batch made each batch's events wait for the previous batch's publishing, and
one publish now serves several batches.

A full batch means a backlog: the drain asks once for a peer, and every free
worker joins in. One drain runs at most `max_batches` batches that claimed events,
so a task stays short enough for its time limit and a warm shutdown waits for one
batch at most; when it stops with work possibly left it says so, and its task sends
a successor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from service.operations.process_inbound import BATCH_SIZE, MAX_CLAIMS, process_inbound_batch

# 20 batches of 50: about a second of crediting on one core.
MAX_BATCHES = 20
# Seconds an idle drain waits for one more claim before it clears its flag: at 200
# events/s (one each 5 ms) most wake-ups are then saved. Celery's dispatch of a new
# task takes about 4 ms here.
LINGER = 0.005
# Seconds committed events may wait for the next batch before a busy drain publishes
# them: a few batches' worth at 200 events/s.
PUBLISH_WITHIN = 0.02


@dataclass(frozen=True, slots=True)
class Drained:
    claimed: int = 0
    processed: int = 0
    batches: int = 0
    # Stopped (max_batches, or a shutdown) before an empty claim after clearing the
    # flag: events may be pending that no task will wake for, so send one.
    unfinished: bool = False


def drain_inbound(
    conn: psycopg.Connection[Any],
    *,
    clear_wake: Callable[[], object],
    wake_peer: Callable[[], object],
    events_written: Callable[[], object],
    stopping: Callable[[], bool] = lambda: False,
    max_batches: int = MAX_BATCHES,
    linger: float = LINGER,
    publish_within: float = PUBLISH_WITHIN,
    max_claims: int = MAX_CLAIMS,
) -> Drained:
    """Process due pending inbound events, a batch per transaction, until a claim made
    after `clear_wake()` comes back empty, `max_batches` ran, or `stopping()`; the
    first empty claim is retried once after `linger` seconds before the clear.

    `events_written()` (events are committed: publish them) once batches changed
    something, at the next empty claim, or after a batch once the oldest of them is
    `publish_within` seconds old, and before returning; `wake_peer()` after the first
    full batch. Idempotent and safe to run concurrently (see process_inbound_batch).
    A drain that raises leaves what it had not published to the sweeper. An event
    claimed `max_claims` times without settling is quarantined (process_inbound_batch).
    """
    claimed = processed = batches = 0
    cleared = lingered = peer_woken = False
    written_at: float | None = None  # when the oldest unpublished batch committed
    while batches < max_batches and not stopping():
        result = process_inbound_batch(conn, now=int(time.time()), max_claims=max_claims)
        if result.claimed:  # empty claims are few: the flag protocol ends them
            batches += 1
        claimed += result.claimed
        processed += result.processed
        if result.processed and written_at is None:
            written_at = time.monotonic()
        if written_at is not None and (
            result.claimed == 0 or time.monotonic() - written_at >= publish_within
        ):
            events_written()
            written_at = None
        if result.claimed == 0:
            if cleared:
                return Drained(claimed, processed, batches)
            if not lingered and linger > 0:
                time.sleep(linger)
                lingered = True
                continue
            clear_wake()
            cleared = True
            continue
        cleared = lingered = False
        if result.claimed >= BATCH_SIZE and not peer_woken:
            wake_peer()
            peer_woken = True
    if written_at is not None:
        events_written()
    return Drained(claimed, processed, batches, unfinished=True)
