"""A webhook endpoint on loopback that verifies every POST with the stripe SDK's
`stripe.Webhook.construct_event`, as a Tally user's receiver would, and that the run
can take down (connections refused) and bring back on the same port."""

from __future__ import annotations

import http.server
import json
import threading
from collections import Counter
from typing import Any

import stripe

from bench.common import free_port


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/tally"
        self.secret = ""
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()  # evt id -> deliveries answered 200
        self.types: dict[str, str] = {}
        self.rejected: list[str] = []
        self._httpd: http.server.ThreadingHTTPServer | None = None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                header = self.headers.get("Stripe-Signature", "")
                try:
                    event = stripe.Webhook.construct_event(body, header, receiver.secret)
                except (stripe.SignatureVerificationError, ValueError) as exc:
                    with receiver.lock:
                        receiver.rejected.append(f"{type(exc).__name__}: {exc}")
                    status = 400
                else:
                    with receiver.lock:
                        receiver.received[event.id] += 1
                        receiver.types[event.id] = json.loads(body)["type"]
                    status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        """Listen (again) on the receiver's port."""
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the listening socket: deliveries now fail to connect."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
