"""The wake-up protocol: how committed work gets a task to do it, without a task per row.

Work is a row in PostgreSQL (a pending inbound event, an unpublished event); Redis
only carries nudges, so a lost nudge costs latency, never work: the sweeper
re-drives from PostgreSQL whatever waits too long. Three flags, each a Redis key
`SET NX PX`, coalesce the nudges:

    DRAIN_QUEUED         "a drain is queued or running, and will claim again":
                         whoever stores an inbound event calls `wake_drain()`, and
                         only the call that set the flag sends `inbound.drain`, so a
                         burst of webhooks costs one task.
    EXTRA_DRAIN_QUEUED   "one more drain is queued": a drain that claimed a full batch
                         (a backlog: every free worker should join) or that stops with
                         work possibly left (its successor) calls `wake_extra_drain()`
                         while its own flag stays set; each drain clears this flag as
                         it starts, so at most one such task waits, whatever the backlog.
    PUBLISH_QUEUED       "an `events.publish` is queued": whoever commits events
                         outside a drain (an API call, the sweeper) calls
                         `wake_publisher()` after the commit; the task clears it before
                         it claims, so events committed before a wake-up are seen by a
                         task that starts after it.

A drain keeps DRAIN_QUEUED while it runs (a `DrainShift`): events stored meanwhile
send no task, and its next batch takes them, so a steady stream costs one task per
many batches. When a claim comes back empty it waits LINGER and claims again (under
steady traffic the next event is usually that close, and a claim costs far less than
the wake-up, task and dispatch it saves); when that claim is empty too it clears the
flag and claims once more. An event stored before the clear is in that last claim;
one stored after it finds the flag clear and sends a new task: no wake-up is lost.

If Redis loses a task, its flag expires after FLAG_TTL_MS and the next wake-up sends a
new one. The sweeper sends a drain whatever the flag says (`force`), since the task
the flag stands for may be the one Redis lost. When Redis is down, wake-ups give up at
once and skip Redis for REDIS_DOWN_BACKOFF: nothing here ever raises for it.

Publishing has one more nudge, between publishers rather than to a task: they are
serialised by a lock in PostgreSQL (the stream keeps the outbox's order), and one that
finds the lock taken never waits for it (a waiting publish task held a worker slot
that a drain needed). It leaves PUBLISH_AGAIN, tries the lock once more, and goes; the
holder, after it lets go of the lock, takes the note and publishes again
(operations/publish_events.py), so events the holder's claim missed are not left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis

log = logging.getLogger(__name__)

# Redis keys; a rename would only cost a duplicate task during a deploy.
DRAIN_QUEUED = "tally:drain"
EXTRA_DRAIN_QUEUED = "tally:drain:more"
PUBLISH_QUEUED = "tally:publish"
PUBLISH_AGAIN = "tally:publish:again"
# How long a flag stands for its task: longer than a task normally waits in its queue
# (milliseconds), short enough that a lost task is replaced promptly.
FLAG_TTL_MS = 5000
# Seconds an idle drain waits for one more claim before it clears its flag: at 200
# events/s (one each 5 ms) most wake-ups are then saved. Celery's dispatch of a new
# task takes about 4 ms here.
LINGER = 0.005
# After a Redis failure, skip Redis for this long instead of paying a timeout per call.
REDIS_DOWN_BACKOFF = 1.0

# send(task name, args): raises what the broker raises when it cannot take the task.
SendTask = Callable[[str, tuple[Any, ...]], None]


class Wakeups:
    """The flags above, for the web, the workers and the command line; thread-safe.
    Sends the tasks it wakes through `send`, and never raises for an unavailable
    Redis or broker."""

    def __init__(
        self,
        client: redis.Redis,
        send: SendTask,
        *,
        drain_task: str,
        publish_task: str,
        send_errors: tuple[type[BaseException], ...] = (),
    ):
        self.client = client
        self._send_task = send
        self._drain_task = drain_task
        self._publish_task = publish_task
        self._send_errors: tuple[type[BaseException], ...] = (
            OSError,
            redis.RedisError,
            *send_errors,
        )
        self._down_until = 0.0
        self._lock = threading.Lock()

    def wake_drain(self, *, force: bool = False) -> bool:
        """Make sure a drain starts after this call; True if this call sent it."""
        return self._wake(DRAIN_QUEUED, self._drain_task, force=force)

    def wake_extra_drain(self) -> bool:
        """From a running drain: make sure one more starts (a helper for a backlog, or
        this drain's successor), while this one keeps DRAIN_QUEUED."""
        return self._wake(EXTRA_DRAIN_QUEUED, self._drain_task, force=False)

    def wake_publisher(self, *, force: bool = False) -> bool:
        """After a commit that wrote events: make sure `events.publish` starts."""
        return self._wake(PUBLISH_QUEUED, self._publish_task, force=force)

    def drain_started(self) -> None:
        """A drain task is starting: the next `wake_extra_drain` sends a new one."""
        self._clear(EXTRA_DRAIN_QUEUED)

    def drain_letting_go(self) -> None:
        """An idle drain is about to claim for the last time: later wake-ups send a new one."""
        self._clear(DRAIN_QUEUED)

    def publisher_started(self) -> None:
        """`events.publish` is about to claim: later wake-ups send a new one."""
        self._clear(PUBLISH_QUEUED)

    def send(self, task: str, args: tuple[Any, ...]) -> bool:
        """Send `task`; False (logged once per outage) if the broker would not take it."""
        try:
            self._send_task(task, args)
            return True
        except self._send_errors as exc:
            self._went_down(exc)
            return False

    def _wake(self, flag: str, task: str, *, force: bool) -> bool:
        if time.monotonic() < self._down_until:
            return False
        try:
            if not self.client.set(flag, b"1", nx=not force, px=FLAG_TTL_MS):
                return False  # a task is already on its way
        except redis.RedisError as exc:
            self._went_down(exc)
            return False
        return self.send(task, ())

    def _clear(self, flag: str) -> None:
        # A failure here is harmless: the flag expires, and the caller claims anyway.
        try:
            self.client.delete(flag)
        except redis.RedisError as exc:
            log.warning("could not clear %s: %s", flag, exc)

    def _went_down(self, exc: BaseException) -> None:
        with self._lock:
            first = time.monotonic() >= self._down_until
            self._down_until = time.monotonic() + REDIS_DOWN_BACKOFF
        if first:
            log.warning("redis unavailable for tasks (%s); the sweeper will re-drive", exc)


class DrainFlags(Protocol):
    """What a drain needs of Wakeups."""

    def wake_extra_drain(self) -> bool: ...
    def drain_started(self) -> None: ...
    def drain_letting_go(self) -> None: ...


class DrainShift:
    """One drain task's hold on DRAIN_QUEUED (the module docstring), begun once the task
    has called `drain_started()`: after each claim, `claim_again` says whether to claim
    once more, lingering or letting go of the flag on the way, and asks for a helper at
    the first full batch; `stopped_early` asks for a successor."""

    def __init__(self, flags: DrainFlags, *, linger: float = LINGER):
        self.flags = flags
        self.linger = linger
        self._let_go = self._lingered = self._helper_asked = False

    def claim_again(self, claimed: int, *, full: bool) -> bool:
        if claimed:
            self._let_go = self._lingered = False
            if full and not self._helper_asked:
                self.flags.wake_extra_drain()
                self._helper_asked = True
            return True
        if self._let_go:
            return False  # the claim made after letting go was empty: done
        if not self._lingered and self.linger > 0:
            time.sleep(self.linger)
            self._lingered = True
        else:
            self.flags.drain_letting_go()
            self._let_go = True
        return True

    def stopped_early(self) -> None:
        """The drain stops before a claim made after letting go came back empty (its
        batch limit, or a shutdown): events may be pending that no task will wake for."""
        self.flags.wake_extra_drain()
