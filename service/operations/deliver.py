"""Delivering events to webhook endpoints: signed POSTs, recorded, retried.

A batch of leased deliveries is claimed in one UPDATE (which moves each lease past
the batch's longest possible run), POSTed one by one with no transaction open and
no row lock held, over one kept-alive connection per host, then every attempt and
outcome is recorded in one transaction. 2xx is success; anything else is retried
after schedule[attempts - 1] seconds; past the schedule's end the delivery fails,
and an endpoint with no success since that delivery's first attempt is disabled.

A batch stops starting POSTs after BATCH_BUDGET_SECONDS (a slow receiver) or when
its worker is stopping, and makes what it claimed but did not attempt due again.
Each POST, resolving the host and connecting included, has `timeout` seconds of wall
clock in all: neither a resolver that never answers nor a receiver that drips its
answer a byte at a time can hold it longer (Celery's threads pool, which the
deliveries process runs, enforces no task time limit).

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

import functools
import http.client
import io
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import psycopg

from service import observability
from service.domain import signatures
from service.domain.events import render_event
from service.domain.urls import is_public_address
from service.store import deliveries, events, webhook_endpoints

log = logging.getLogger(__name__)

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
MAX_RESPONSE_BYTES = 64 * 1024
# How long a batch keeps starting POSTs; the last one may then still take its time.
BATCH_BUDGET_SECONDS = 5.0
# A delivery claimed but not attempted because its batch ran out of time or stopped.
RETURNED = "returned"
# A delivery claimed but not attempted because its endpoint stopped answering.
DEFERRED = "deferred"
CIRCUIT_FAILURES = 3
CIRCUIT_COOLDOWN_SECONDS = 30.0
CIRCUIT_MAX_COOLDOWN_SECONDS = 600.0


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


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int | None
    error: str | None
    latency_ms: int


def deliver_batch(
    conn: psycopg.Connection[Any],
    leased: Sequence[tuple[int, int | None]],
    *,
    timeout: float,
    schedule: Sequence[int],
    allow_private: bool,
    stopping: Callable[[], bool] = lambda: False,
    budget: float = BATCH_BUDGET_SECONDS,
) -> dict[int, str]:
    """Attempt each (delivery id, lease token); returns each one's outcome: succeeded,
    retrying, failed, returned, deferred, or skipped (settled, leased to another task,
    its endpoint held by another batch, or taken over by one after this call outlived
    its claim).

    Safe to call twice with the same lease tokens: only one call claims them, and an
    outcome is recorded only while its claim stands.
    """
    outcomes = dict.fromkeys((delivery_id for delivery_id, _ in leased), "skipped")
    # Held past the longest run, so no other task claims them while this one POSTs.
    with conn.transaction():
        claimed = deliveries.claim(conn, leased, hold_seconds=longest_batch_seconds(timeout) + 30)
    bodies = events.get_many(conn, [(row["event_id"], row["livemode"]) for row in claimed])
    started = time.monotonic()
    responses: dict[int, Response | None] = {}  # None: not POSTed, the endpoint is gone
    unanswered: set[str] = set()  # endpoints a POST of this batch got no answer from
    try:
        with Poster(timeout=timeout, allow_private=allow_private) as poster:
            for row in claimed:
                if row["endpoint_deleted"] or row["endpoint_status"] != "enabled":
                    responses[row["id"]] = None
                elif row["endpoint_id"] in unanswered:
                    continue
                elif time.monotonic() - started > budget or stopping():
                    break
                else:
                    posted = responses[row["id"]] = _post_event(poster, row, bodies)
                    if posted.status_code is None:
                        unanswered.add(row["endpoint_id"])
    finally:
        # Even when a POST raised (a time limit): what was sent is recorded, once,
        # and what was not is due again. Endpoints first: the lock order of claim.
        with conn.transaction():
            for endpoint_id, rows in _by_endpoint(claimed).items():
                _release(conn, endpoint_id, rows, responses, schedule)
            for row in claimed:
                outcome = _record(conn, row, responses, schedule, unanswered)
                if outcome is not None:
                    outcomes[row["id"]] = outcome
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
    return outcomes


def _by_endpoint(claimed: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Claimed rows by endpoint, endpoints in id order (claim's lock order), each one's
    rows in the order they were POSTed."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(claimed, key=lambda row: row["endpoint_id"]):
        grouped.setdefault(row["endpoint_id"], []).append(row)
    return grouped


def _release(
    conn: psycopg.Connection[Any],
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
    body = json.dumps(render_event(event), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Stripe-Signature": signatures.sign(body, row["secret"], int(time.time())),
    }
    return poster.post(row["url"], body, headers)


def _record(
    conn: psycopg.Connection[Any],
    row: dict[str, Any],
    responses: dict[int, Response | None],
    schedule: Sequence[int],
    unanswered: set[str],
) -> str | None:
    """Write a claimed delivery's outcome and attempt; None if its claim was taken over
    meanwhile (the task outlived its hold: whoever holds it now records)."""
    delivery_id, claim = row["id"], row["claim"]
    if delivery_id not in responses:
        outcome = RETURNED
    elif (response := responses[delivery_id]) is None:
        outcome = "refused"
    elif response.status_code is not None and 200 <= response.status_code < 300:
        outcome = "succeeded"
    elif row["attempts"] + 1 <= len(schedule):
        outcome = "retrying"
    else:
        outcome = "failed"
    retry_in = schedule[row["attempts"]] if outcome == "retrying" else 0
    if not deliveries.settle(conn, delivery_id, claim=claim, outcome=outcome, retry_in=retry_in):
        return None
    if outcome == RETURNED and row["endpoint_id"] in unanswered:
        return DEFERRED
    if response := responses.get(delivery_id):
        deliveries.add_attempt(
            conn,
            delivery_id,
            status_code=response.status_code,
            latency_ms=response.latency_ms,
            error=response.error,
        )
    if outcome == "failed" and webhook_endpoints.disable_if_failing_since(
        conn, row["endpoint_id"], delivery_id=delivery_id
    ):
        log.warning(
            "webhook endpoint %s disabled: every delivery failed for the whole retry schedule",
            row["endpoint_id"],
        )
    return "failed" if outcome == "refused" else outcome


class Poster:
    """POSTs that never raise, over one kept-alive connection per host while open.

    Each host is resolved once, within the POST's deadline, and refused if any of its
    addresses is not public (unless allowed); the connection goes to the address
    checked (no DNS rebinding).
    """

    def __init__(self, *, timeout: float, allow_private: bool) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._open: dict[tuple[str, str, int], _DeadlineConnection] = {}

    def __enter__(self) -> Poster:
        return self

    def __exit__(self, *exc: object) -> None:
        for conn in self._open.values():
            conn.close()
        self._open.clear()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        started = time.monotonic()
        deadline = started + self.timeout

        def done(status: int | None, error: str | None) -> Response:
            return Response(status, error, int((time.monotonic() - started) * 1000))

        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, host, port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._open.get(key)
        reused = conn is not None and conn.sock is not None
        if conn is None:
            try:
                addresses = _resolve(host, port, deadline)
            except (OSError, ValueError) as exc:  # UnicodeError for a malformed name
                return done(None, f"could not resolve {host}: {exc}")
            if not self.allow_private and not all(map(is_public_address, addresses)):
                return done(None, f"refused: {host} resolves to a private or loopback address")
            address = addresses[0]
            pinned = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
            conn = self._open[key] = pinned(host, address, port, timeout=self.timeout)
        try:
            try:
                status = _exchange(conn, path, body, headers, deadline)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                # The receiver closed the kept-alive connection between two POSTs.
                conn.close()
                status = _exchange(conn, path, body, headers, time.monotonic() + self.timeout)
        except (OSError, http.client.HTTPException) as exc:
            del self._open[key]
            conn.close()
            return done(None, f"{type(exc).__name__}: {exc}"[:500])
        return done(status, None if 200 <= status < 300 else f"HTTP {status}")


def _resolve(host: str, port: int, deadline: float) -> list[str]:
    """The addresses of `host`, or TimeoutError if they are not known by `deadline` (a
    monotonic time). getaddrinfo cannot be interrupted, and a resolver that never
    answers holds it for resolv.conf's timeouts (5 s per try and server by default):
    it runs in a thread of its own, which the delivery leaves behind to finish alone."""
    found: Future[list[Any]] = Future()

    def lookup() -> None:
        try:
            found.set_result(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the waiting delivery
            found.set_exception(exc)

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    try:
        infos = found.result(timeout=max(deadline - time.monotonic(), 0))
    except TimeoutError:
        raise TimeoutError("no answer before the delivery's deadline") from None
    return [str(info[4][0]) for info in infos]


def _exchange(
    conn: _DeadlineConnection,
    path: str,
    body: bytes,
    headers: dict[str, str],
    deadline: float,
) -> int:
    """One POST and its status, by `deadline` (a monotonic time); the connection stays
    open only if its reply was read whole."""
    conn.deadline = deadline
    conn.request("POST", path, body=body, headers=headers)
    reply = conn.getresponse()
    reply.read(MAX_RESPONSE_BYTES)
    if not reply.isclosed():  # longer than we read: the connection cannot be reused
        conn.close()
    return reply.status


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("the receiver did not answer in time")
    return remaining


class _DeadlineReader(io.RawIOBase):
    """A response's socket reader whose every read waits only for what is left until
    the deadline (a socket's own timeout starts again at every read)."""

    def __init__(self, raw: Any, sock: socket.socket, deadline: float):
        self._raw = raw
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(_remaining(self._deadline))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *, deadline: float, **kwargs: Any):
        super().__init__(sock, **kwargs)
        # Wrap the socket reader HTTPResponse made rather than replace it: while it is
        # open the socket stays open, even after a "Connection: close" closes the
        # connection and leaves the response to be read.
        raw = self.fp.detach()
        self.fp = io.BufferedReader(_DeadlineReader(raw, sock, deadline))


class _DeadlineConnection(http.client.HTTPConnection):
    """Connects, sends and reads a response within `deadline` (a monotonic time, set by
    _exchange before each POST)."""

    deadline: float

    def send(self, data: Any) -> None:
        if self.sock is not None:
            self.sock.settimeout(_remaining(self.deadline))
        super().send(data)

    def getresponse(self) -> http.client.HTTPResponse:
        # http.client makes the response as response_class(sock, method=...); this
        # partial is such a callable, though typeshed declares the attribute a class.
        self.response_class = functools.partial(  # type: ignore[assignment]
            _DeadlineResponse, deadline=self.deadline
        )
        return super().getresponse()


class _PinnedHTTPConnection(_DeadlineConnection):
    """Sends Host: <name> but connects to the address resolved and checked beforehand."""

    def __init__(self, host: str, address: str, port: int, *, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        address = (self._address, self.port)
        self.sock = socket.create_connection(address, _remaining(self.deadline))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, port: int, *, timeout: float):
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        address = (self._address, self.port)
        sock = socket.create_connection(address, _remaining(self.deadline))
        # The TLS handshake is bounded by what is left as well.
        sock.settimeout(_remaining(self.deadline))
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
