"""Delivering events to webhook endpoints: signed POSTs, recorded, retried.

A batch of leased deliveries is claimed in one UPDATE (which moves each lease past
the batch's longest possible run), POSTed with no transaction open and no row lock
held (the first alone, then up to POSTS_AT_ONCE at a time; adapters/http.py: a
deadline per POST, kept-alive connections kept for the next batch), then every
attempt and outcome is recorded in one transaction, in one statement. 2xx is success;
anything else is retried after schedule[attempts - 1] seconds; past the schedule's end
the delivery fails, and an endpoint with no success since that delivery's first attempt
is disabled.

A batch stops starting POSTs after BATCH_BUDGET_SECONDS (a slow receiver) or when
its worker is stopping, and makes what it claimed but did not attempt due again.

Endpoints are isolated from each other. A batch holds its endpoint (dispatch sends
no second batch to it meanwhile), so a receiver that never answers holds one
deliveries thread, not the pool. A POST that got no answer (timed out, could not
connect) ends its endpoint's part of the batch: the rest wait, not attempted. After
CIRCUIT_FAILURES such POSTs in a row the endpoint's circuit opens: no batch for
CIRCUIT_COOLDOWN_SECONDS, then one delivery at a time (half-open); an answer, any
status, closes it, another failure opens it for twice as long, up to
CIRCUIT_MAX_COOLDOWN_SECONDS. Deliveries waiting on a circuit are not attempts: they
neither fail nor count towards disabling. Since a circuit lets few deliveries reach
the end of their retry schedule, an endpoint that has not answered as many times in a
row, and for as long, as one delivery's whole schedule is disabled too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from service import observability
from service.adapters.http import KeptAlive, Poster, Response
from service.db import Conn
from service.domain import signatures
from service.domain.events import event_json
from service.operations.publish_events import EnqueueDeliveries, lease_due_batches
from service.store import deliveries, events, webhook_endpoints

log = logging.getLogger(__name__)

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
# How long a batch keeps starting POSTs; the last one may then still take its time.
BATCH_BUDGET_SECONDS = 5.0
# A delivery claimed but not attempted because its batch ran out of time or stopped.
RETURNED = "returned"
# A delivery claimed but not attempted because its endpoint stopped answering.
DEFERRED = "deferred"
CIRCUIT_FAILURES = 3
# POSTs in flight at once to one endpoint within a batch (_post_batch).
POSTS_AT_ONCE = 4
CIRCUIT_COOLDOWN_SECONDS = 30.0
CIRCUIT_MAX_COOLDOWN_SECONDS = 600.0
# How long a send task goes on sending its endpoint's next batches itself (deliver_leased).
KEEP_GOING_SECONDS = BATCH_BUDGET_SECONDS


def longest_batch_seconds(timeout: float) -> float:
    """The longest a batch can run: its budget, then one POST that may be tried twice
    (a kept-alive connection the receiver closed), each taking up to `timeout`."""
    return BATCH_BUDGET_SECONDS + 2 * timeout


def circuit_cooldown(consecutive_failures: int) -> float | None:
    """How long an endpoint gets no batch after this many unanswered POSTs in a row;
    None while its circuit stays closed."""
    beyond = consecutive_failures - CIRCUIT_FAILURES
    if beyond < 0:
        return None
    return min(CIRCUIT_COOLDOWN_SECONDS * 2 ** min(beyond, 16), CIRCUIT_MAX_COOLDOWN_SECONDS)


def deliver_leased(
    conn: Conn,
    leased: Sequence[tuple[int, int | None]],
    enqueue: EnqueueDeliveries,
    *,
    timeout: float,
    schedule: Sequence[int],
    allow_private: bool,
    stopping: Callable[[], bool] = lambda: False,
    kept_alive: KeptAlive | None = None,
    keep_going_for: float = KEEP_GOING_SECONDS,
) -> str:
    """The `deliveries.send` task: deliver the batch, then, its endpoint being free again,
    dispatch what came due meanwhile, unless it stopped answering: then its deliveries
    wait for the next publish or sweep, and its circuit. The endpoint's own next batch
    this task sends itself, for up to `keep_going_for` seconds, when the batch went
    whole (a Celery message per batch cost the deliveries process more CPU than a small
    batch's POSTs); what a batch handed back goes behind the batches already queued.
    Returns a summary for the task's log line (each delivery has a line of its own)."""
    started = time.monotonic()
    counted: Counter[str] = Counter()
    while True:
        endpoints: set[str] = set()
        outcomes = deliver_batch(
            conn,
            leased,
            timeout=timeout,
            schedule=schedule,
            allow_private=allow_private,
            stopping=stopping,
            kept_alive=kept_alive,
            claimed_endpoints=endpoints,
        )
        counted.update(outcomes.values())
        if DEFERRED in outcomes.values():
            break
        batches = lease_due_batches(conn)
        own = [batch for endpoint, batch in batches.items() if endpoint in endpoints]
        for endpoint, batch in batches.items():
            if endpoint not in endpoints:
                enqueue(batch)
        went_whole = RETURNED not in outcomes.values() and not stopping()
        if len(own) != 1 or not went_whole or time.monotonic() - started > keep_going_for:
            for batch in own:
                enqueue(batch)
            break
        leased = own[0]
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counted.items()))


def deliver_batch(
    conn: Conn,
    leased: Sequence[tuple[int, int | None]],
    *,
    timeout: float,
    schedule: Sequence[int],
    allow_private: bool,
    stopping: Callable[[], bool] = lambda: False,
    budget: float = BATCH_BUDGET_SECONDS,
    kept_alive: KeptAlive | None = None,
    claimed_endpoints: set[str] | None = None,
) -> dict[int, str]:
    """Attempt each (delivery id, lease token); returns each one's outcome: succeeded,
    retrying, failed, returned, deferred, or skipped (settled, leased to another task,
    its endpoint held by another batch, or taken over by one after this call outlived
    its claim). The endpoints of the deliveries it claimed go into `claimed_endpoints`.

    Safe to call twice with the same lease tokens: only one call claims them, and an
    outcome is recorded only while its claim stands.
    """
    outcomes = dict.fromkeys((delivery_id for delivery_id, _ in leased), "skipped")
    # Held past the longest run, so no other task claims them while this one POSTs.
    with conn.transaction():
        claimed = deliveries.claim(conn, leased, hold_seconds=longest_batch_seconds(timeout) + 30)
    bodies = events.get_many_as_sent(conn, [(row["event_id"], row["livemode"]) for row in claimed])
    responses: dict[int, Response | None] = {}  # None: not POSTed, the endpoint is gone
    unanswered: set[str] = set()  # endpoints a POST of this batch got no answer from
    try:
        _post_batch(
            claimed,
            bodies,
            responses,
            unanswered,
            lambda: Poster(timeout=timeout, allow_private=allow_private, kept_alive=kept_alive),
            deadline=time.monotonic() + budget,
            stopping=stopping,
        )
    finally:
        # Even when a POST raised (a time limit): what was sent is recorded, once,
        # and what was not is due again. Endpoints first: the lock order of claim.
        with conn.transaction():
            for endpoint_id, rows in _by_endpoint(claimed).items():
                _release(conn, endpoint_id, rows, responses, schedule)
            outcomes.update(_record(conn, claimed, responses, schedule, unanswered))
    for row in claimed:
        response = responses.get(row["id"])
        if response is not None:
            observability.observe_delivery(outcomes[row["id"]], response.latency_ms)
        log.info(
            "delivery %s: %s",
            row["id"],
            outcomes[row["id"]],
            extra={
                "delivery_id": row["id"],
                "event_id": row["event_id"],
                "endpoint_id": row["endpoint_id"],
                "outcome": outcomes[row["id"]],
            },
        )
    if claimed_endpoints is not None:
        claimed_endpoints.update(row["endpoint_id"] for row in claimed)
    return outcomes


def _post_batch(
    claimed: list[dict[str, Any]],
    bodies: dict[str, dict[str, Any]],
    responses: dict[int, Response | None],
    unanswered: set[str],
    poster: Callable[[], Poster],
    *,
    deadline: float,
    stopping: Callable[[], bool],
) -> None:
    """POST the claimed deliveries, filling `responses` and `unanswered` as answers come.

    The first POST goes alone; once it is answered, the rest go over up to
    POSTS_AT_ONCE connections at once, each object's events over one of them, in order
    (a consumer that applies deliveries as they arrive still ends with each object's
    latest state). One POST at a time, a busy machine's scheduling delays added up per
    POST, and a single endpoint could not take more than a few hundred a second. Going
    alone first keeps an endpoint that does not answer at one POST per batch. No POST
    starts after `deadline` (a monotonic time), once `stopping()`, or to an endpoint
    that has left one unanswered.
    """
    lock = threading.Lock()
    halted = threading.Event()  # the caller is leaving: start nothing more

    def run(rows: list[dict[str, Any]]) -> None:
        with poster() as own:
            for row in rows:
                if row["endpoint_deleted"] or row["endpoint_status"] != "enabled":
                    responses[row["id"]] = None
                    continue
                with lock:
                    if row["endpoint_id"] in unanswered:
                        continue
                if time.monotonic() > deadline or stopping() or halted.is_set():
                    return
                response = _post_event(own, row, bodies)
                with lock:
                    responses[row["id"]] = response
                    if response.status_code is None:
                        unanswered.add(row["endpoint_id"])

    run(claimed[:1])
    lanes = _lanes(claimed[1:], bodies, POSTS_AT_ONCE)
    # The calling thread is one lane; a thread costs about 0.1 ms to start, more than a
    # POST, so a batch of three or fewer goes on alone.
    if len(claimed) <= 3 or len(lanes) <= 1:
        run(claimed[1:])
        return
    with ThreadPoolExecutor(len(lanes) - 1, thread_name_prefix="delivery") as pool:
        others = [pool.submit(run, lane) for lane in lanes[1:]]
        try:
            run(lanes[0])
            for done in others:
                done.result()
        finally:
            halted.set()


def _lanes(
    rows: list[dict[str, Any]], bodies: dict[str, dict[str, Any]], count: int
) -> list[list[dict[str, Any]]]:
    """`rows` in at most `count` lanes, in order within each, all the events of one
    object in the same lane; objects dealt to the lanes in turn."""
    lanes: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    lane_of: dict[str, int] = {}
    for row in rows:
        body = bodies.get(row["event_id"])
        key = body["object_id"] if body is not None else row["event_id"]
        lanes[lane_of.setdefault(key, len(lane_of) % count)].append(row)
    return [lane for lane in lanes if lane]


def _by_endpoint(claimed: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Claimed rows by endpoint, endpoints in id order (claim's lock order), each one's
    rows in the order they were POSTed."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(claimed, key=lambda row: row["endpoint_id"]):
        grouped.setdefault(row["endpoint_id"], []).append(row)
    return grouped


def _release(
    conn: Conn,
    endpoint_id: str,
    rows: list[dict[str, Any]],
    responses: dict[int, Response | None],
    schedule: Sequence[int],
) -> None:
    """Free the endpoint for its next batch, with its circuit brought up to date by the
    POSTs this batch made to it, in order."""
    failures: int | None = None  # no POST: the circuit stays as it is
    for row in rows:
        if (response := responses.get(row["id"])) is not None:
            before = row["consecutive_failures"] if failures is None else failures
            failures = 0 if response.status_code is not None else before + 1
    disabled = webhook_endpoints.release(
        conn,
        endpoint_id,
        claim=rows[0]["claim"],
        consecutive_failures=failures,
        open_for=None if failures is None else circuit_cooldown(failures),
        # As long, and as many tries, as a delivery's whole schedule.
        disable_after=(len(schedule) + 1, sum(schedule)),
    )
    if disabled:
        log.warning(
            "webhook endpoint %s disabled: it did not answer for the whole retry schedule",
            endpoint_id,
        )


def _post_event(poster: Poster, row: dict[str, Any], bodies: dict[str, dict[str, Any]]) -> Response:
    event = bodies.get(row["event_id"])
    if event is None:  # webhook_deliveries.event_id references it
        raise RuntimeError(f"event {row['event_id']} of delivery {row['id']} is missing")
    body = event_json(event).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Stripe-Signature": signatures.sign(body, row["secret"], int(time.time())),
    }
    return poster.post(row["url"], body, headers)


def _record(
    conn: Conn,
    claimed: list[dict[str, Any]],
    responses: dict[int, Response | None],
    schedule: Sequence[int],
    unanswered: set[str],
) -> dict[int, str]:
    """Write the claimed deliveries' outcomes and attempts, in one statement; returns the
    outcome of each whose claim still stood (one taken over meanwhile, as the task
    outlived its hold, is recorded by whoever holds it now)."""
    planned = {row["id"]: _outcome(row, responses, schedule) for row in claimed}
    settled = deliveries.settle_all(
        conn,
        [
            deliveries.Settled(
                row["id"],
                claim=row["claim"],
                outcome=planned[row["id"]],
                retry_in=schedule[row["attempts"]] if planned[row["id"]] == "retrying" else 0,
                attempt=responses.get(row["id"]),
            )
            for row in claimed
        ],
    )
    recorded = {}
    for row in claimed:
        delivery_id, outcome = row["id"], planned[row["id"]]
        if delivery_id not in settled:
            continue
        if outcome == RETURNED and row["endpoint_id"] in unanswered:
            recorded[delivery_id] = DEFERRED
            continue
        if outcome == "failed" and webhook_endpoints.disable_if_failing_since(
            conn, row["endpoint_id"], delivery_id=delivery_id
        ):
            log.warning(
                "webhook endpoint %s disabled: every delivery failed for the whole retry schedule",
                row["endpoint_id"],
            )
        recorded[delivery_id] = "failed" if outcome == "refused" else outcome
    return recorded


def _outcome(
    row: dict[str, Any], responses: dict[int, Response | None], schedule: Sequence[int]
) -> str:
    if row["id"] not in responses:
        return RETURNED
    if (response := responses[row["id"]]) is None:
        return "refused"
    if response.status_code is not None and 200 <= response.status_code < 300:
        return "succeeded"
    return "retrying" if row["attempts"] + 1 <= len(schedule) else "failed"
