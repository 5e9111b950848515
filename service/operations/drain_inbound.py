"""Draining pending inbound events: batch after batch until one comes back short.

Each batch is one transaction (operations/process_inbound.py). A full batch means
a backlog, so the drain asks for a peer (a coalesced wake-up: at most one extra
task waits in the queue) and every free worker joins in. One drain runs at most
`max_batches` batches, so a task stays short enough for its time limit and a warm
shutdown waits for one batch at most; a peer it woke takes over the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from service.operations.process_inbound import BATCH_SIZE, process_inbound_batch

# 20 batches of 50: about a second of crediting on one core.
MAX_BATCHES = 20


@dataclass(frozen=True, slots=True)
class Drained:
    claimed: int = 0
    processed: int = 0
    batches: int = 0


def drain_inbound(
    conn: psycopg.Connection[Any],
    *,
    wake_peer: Callable[[], object],
    events_written: Callable[[], object],
    stopping: Callable[[], bool] = lambda: False,
    max_batches: int = MAX_BATCHES,
) -> Drained:
    """Process due pending inbound events, a batch per transaction, until a batch
    comes back short, `max_batches` ran, or `stopping()`.

    After each batch that changed something, `events_written()` (its events are
    committed: publish them); after each full one, `wake_peer()`. Idempotent and
    safe to run concurrently (see process_inbound_batch).
    """
    claimed = processed = batches = 0
    while batches < max_batches:
        result = process_inbound_batch(conn, now=int(time.time()))
        batches += 1
        claimed += result.claimed
        processed += result.processed
        if result.processed:
            events_written()
        if result.claimed < BATCH_SIZE:
            break
        wake_peer()
        if stopping():
            break
    return Drained(claimed=claimed, processed=processed, batches=batches)
