"""A webhook endpoint on loopback, as a Tally user's receiver: for the tests, the
benchmarks and the chaos run.

With a `secret` it verifies each POST with the stripe SDK (`stripe.Webhook.
construct_event`) and refuses a bad signature with 400; without one it takes every
POST (a benchmark's receiver spends no CPU on it). The n-th delivery of an event is
answered with script[n] (200 past its end) after `delay` seconds. It keeps
connections open (HTTP/1.1) unless `keep_alive` is off (HTTP/1.0, one request a
connection) or `drop_idle` is set: then it closes each connection after its reply
without saying so, as a receiver whose idle timeout ran out between two requests.
stop() and start() take it down and back on the same port. GET /arrivals?type=T
answers `arrivals(T)` as JSON, for `python -m devtools.receiver` in a process of its
own (`ReceiverProcess`), whose CPU is then its own.
"""

from __future__ import annotations

import http.server
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import stripe

from devtools.localenv import free_port
from devtools.procfile import ROOT


class Receiver:
    def __init__(self, secret: str | None = None, *, keep_alive: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.secret = secret
        self.keep_alive = keep_alive
        self.script: list[int] = []
        self.delay = 0.0
        self.drop_idle = False
        self.connections = 0
        self.received: list[dict[str, Any]] = []  # {"event", "status", "at"} per POST
        self.deliveries_of: Counter[str] = Counter()  # POSTs so far, by event id
        self.rejected: list[str] = []
        self.lock = threading.Lock()
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        """Listen (again) on the receiver's port."""
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the listening socket: deliveries now fail to connect."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    close = stop

    def _answer(self, body: bytes, header: str) -> int:
        """The status for one POST, recorded (under the lock)."""
        if self.secret is not None:
            try:
                stripe.Webhook.construct_event(body, header, self.secret)
            except (stripe.SignatureVerificationError, ValueError) as exc:
                self.rejected.append(f"{type(exc).__name__}: {exc}")
                return 400
        event = json.loads(body)
        # A count kept as POSTs arrive: scanning `received` made each POST cost more
        # than the last, and the benchmark's receiver the slowest part of its run.
        seen = self.deliveries_of[event["id"]]
        self.deliveries_of[event["id"]] += 1
        status = self.script[seen] if seen < len(self.script) else 200
        self.received.append({"event": event, "status": status, "at": time.time()})
        return status

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if receiver.keep_alive else "HTTP/1.0"

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver.connections += 1

            def do_POST(self) -> None:
                time.sleep(receiver.delay)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    status = receiver._answer(body, self.headers.get("Stripe-Signature", ""))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.close_connection = receiver.drop_idle or not receiver.keep_alive

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                body = json.dumps(receiver.arrivals(query.get("type", [""])[0])).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def event_ids(self, status: int | None = 200) -> list[str]:
        """Ids of the events received (once per delivery) answered `status` (None: any)."""
        with self.lock:
            return [
                r["event"]["id"] for r in self.received if status is None or r["status"] == status
            ]

    def arrivals(self, event_type: str) -> dict[str, float]:
        """When (time.time()) each `event_type` event first arrived, by its object's id."""
        with self.lock:
            received = list(self.received)
        arrived: dict[str, float] = {}
        for r in received:
            if r["event"]["type"] == event_type and r["status"] == 200:
                arrived.setdefault(r["event"]["data"]["object"]["id"], r["at"])
        return arrived


class ReceiverProcess:
    """A Receiver without a secret in a process of its own (`python -m
    devtools.receiver`), its log in `log`."""

    def __init__(self, log: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.receiver"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=log.open("ab"), text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None  # noqa: S101 -- for the type checker: stdout=PIPE
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def arrivals(self, event_type: str) -> dict[str, float]:
        http = HTTPConnection("127.0.0.1", self.port, timeout=10)
        http.request("GET", f"/arrivals?type={event_type}")
        return dict(json.loads(http.getresponse().read()))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def main() -> None:
    receiver = Receiver()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    sys.stdout.write(f"{receiver.port}\n")
    sys.stdout.flush()
    while not stopped.wait(1):
        pass
    receiver.stop()


if __name__ == "__main__":
    main()
