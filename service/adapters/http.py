"""POSTs to webhook receivers: a deadline per POST, pinned to a checked address, over
connections kept alive within a batch and, through KeptAlive, across batches.

Each POST, resolving the host and connecting included, has `timeout` seconds of wall
clock in all: neither a resolver that never answers nor a receiver that drips its
answer a byte at a time can hold it longer (Celery's threads pool, which the
deliveries process runs, enforces no task time limit).
"""

from __future__ import annotations

import functools
import http.client
import io
import socket
import ssl
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from service.domain.urls import is_public_address

MAX_RESPONSE_BYTES = 64 * 1024
# A connection left open by a batch is reused by a later one only this soon after: a
# receiver may close it first (a retry on a fresh one covers that), and its host is
# resolved and checked again after.
IDLE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int | None
    error: str | None
    latency_ms: int


# (scheme, host, port, private addresses allowed): connections are interchangeable
# only within one.
_Key = tuple[str, str, int, bool]


class KeptAlive:
    """Idle connections that one batch left open, for the next batch to the same host;
    thread-safe (each connection is used by one batch at a time). One per process."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS):
        self.idle_seconds = idle_seconds
        self._idle: dict[_Key, list[tuple[float, _DeadlineConnection]]] = {}
        self._lock = threading.Lock()

    def take(self, key: _Key) -> _DeadlineConnection | None:
        """The most recently returned connection for `key` not idle too long, if any."""
        stale = []
        with self._lock:
            idle = self._idle.get(key, [])
            fresh = time.monotonic() - self.idle_seconds
            while idle and idle[0][0] < fresh:
                stale.append(idle.pop(0)[1])
            conn = idle.pop()[1] if idle else None
        for old in stale:
            old.close()
        return conn

    def give(self, key: _Key, conn: _DeadlineConnection) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append((time.monotonic(), conn))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for _, conn in conns:
                conn.close()


class Poster:
    """POSTs that never raise, over one kept-alive connection per host while open.

    Each host is resolved once, within the POST's deadline, and refused if any of its
    addresses is not public (unless allowed); the connection goes to the address
    checked (no DNS rebinding).
    """

    def __init__(
        self, *, timeout: float, allow_private: bool, kept_alive: KeptAlive | None = None
    ) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.kept_alive = kept_alive
        self._open: dict[_Key, _DeadlineConnection] = {}

    def __enter__(self) -> Poster:
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the connections opened, or leave those still open to `kept_alive`."""
        for key, conn in self._open.items():
            if self.kept_alive is not None and conn.sock is not None:
                self.kept_alive.give(key, conn)
            else:
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
        key = (parts.scheme, host, port, self.allow_private)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._open.get(key)
        if conn is None and self.kept_alive is not None:
            conn = self.kept_alive.take(key)
            if conn is not None:
                self._open[key] = conn
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
    conn: _DeadlineConnection, path: str, body: bytes, headers: dict[str, str], deadline: float
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
