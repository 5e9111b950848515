"""Delivering one event to one webhook endpoint: a signed POST, recorded, retried.

Claim (a short UPDATE that moves the lease past the HTTP timeout), POST with no
transaction open and no row lock held, then record the attempt and the outcome
in one transaction. 2xx is success; anything else is retried after
schedule[attempts - 1] seconds; past the schedule's end the delivery fails, and
an endpoint with no success since that delivery's first attempt is disabled.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import time
from collections.abc import Sequence
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


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int | None
    error: str | None
    latency_ms: int


def deliver(
    conn: psycopg.Connection[Any],
    delivery_id: int,
    *,
    lease: int | None,
    timeout: float,
    schedule: Sequence[int],
    allow_private: bool,
    now: int,
) -> str:
    """Attempt one delivery; returns its outcome: succeeded, retrying, failed or skipped.

    Safe to call twice with the same lease token: only one call claims it.
    """
    claimed = deliveries.claim(conn, delivery_id, lease=lease, hold_seconds=timeout + 30)
    if claimed is None:
        return "skipped"
    if claimed["endpoint_deleted"] or claimed["endpoint_status"] != "enabled":
        deliveries.mark_failed(conn, delivery_id, count_attempt=False)
        return "failed"
    observability.bind(event_id=claimed["event_id"], endpoint_id=claimed["endpoint_id"])
    row = events.get(conn, claimed["event_id"], claimed["livemode"])
    if row is None:  # webhook_deliveries.event_id references it
        raise RuntimeError(f"event {claimed['event_id']} of delivery {delivery_id} is missing")
    body = json.dumps(render_event(row), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Stripe-Signature": signatures.sign(body, claimed["secret"], int(time.time())),
    }
    response = post(claimed["url"], body, headers, timeout=timeout, allow_private=allow_private)
    ok = response.status_code is not None and 200 <= response.status_code < 300
    attempts = claimed["attempts"] + 1
    with conn.transaction():
        deliveries.add_attempt(
            conn,
            delivery_id,
            status_code=response.status_code,
            latency_ms=response.latency_ms,
            error=response.error,
        )
        if ok:
            deliveries.mark_succeeded(conn, delivery_id)
            outcome = "succeeded"
        elif attempts <= len(schedule):
            deliveries.schedule_retry(conn, delivery_id, delay=schedule[attempts - 1])
            outcome = "retrying"
        else:
            deliveries.mark_failed(conn, delivery_id, count_attempt=True)
            outcome = "failed"
            if webhook_endpoints.disable_if_failing_since(
                conn, claimed["endpoint_id"], delivery_id=delivery_id
            ):
                log.warning(
                    "webhook endpoint %s disabled: every delivery failed for the whole retry "
                    "schedule",
                    claimed["endpoint_id"],
                )
    observability.observe_delivery(outcome, response.latency_ms)
    return outcome


def post(
    url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool
) -> Response:
    """POST `body`; never raises. Connects to the address it checked (no DNS rebinding)."""
    started = time.monotonic()

    def done(status: int | None, error: str | None) -> Response:
        return Response(status, error, int((time.monotonic() - started) * 1000))

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return done(None, f"could not resolve {host}: {exc}")
    address = infos[0][4][0]
    if not allow_private and not all(is_public_address(str(info[4][0])) for info in infos):
        return done(None, f"refused: {host} resolves to a private or loopback address")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = _PinnedHTTPSConnection(host, address, port, timeout=timeout)
    else:
        conn = _PinnedHTTPConnection(host, address, port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", path, body=body, headers=headers)
        reply = conn.getresponse()
        reply.read(MAX_RESPONSE_BYTES)
        return done(reply.status, None if 200 <= reply.status < 300 else f"HTTP {reply.status}")
    except (OSError, http.client.HTTPException) as exc:
        return done(None, f"{type(exc).__name__}: {exc}"[:500])
    finally:
        conn.close()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Sends Host: <name> but connects to the address resolved and checked beforehand."""

    def __init__(self, host: str, address: str, port: int, *, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, port: int, *, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
