"""A POST of the deliverer, resolved by a real DNS server the test controls.

`post_in_sandbox` runs this module in a network and mount namespace of its own
(`unshare`, as an unprivileged user): there the names resolve through glibc, as in
production, against a DNS server on 127.0.0.1:53 (/etc/resolv.conf and
/etc/nsswitch.conf are bind-mounted over, in that namespace only), which answers
each name with the records given, or never answers at all. The addresses given are
put on the namespace's loopback, where a receiver answers 200 on every address, so
a POST to any of them really connects: a refusal is the deliverer's, not the network's.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# glibc's own limit for a server that never answers: one try of 5 s.
RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:5 attempts:1\n"
A, AAAA = 1, 28


def sandbox_missing() -> str | None:
    """Why the sandbox cannot run here, or None (unprivileged user namespaces may be
    disabled, e.g. by AppArmor on Ubuntu 24.04)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (iproute2) is not installed"
    probe = subprocess.run(["unshare", "-rnm", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        return f"no unprivileged user namespaces: {probe.stderr.decode().strip()}"
    return None


def post_in_sandbox(
    url: str,
    *,
    records: dict[str, list[str]],
    local_addresses: list[str] = (),  # type: ignore[assignment]
    silent: bool = False,
    timeout: float = 2.0,
    allow_private: bool = False,
) -> dict[str, Any]:
    """POST to `url` with the deliverer's Poster in the sandbox; returns its status_code,
    error, elapsed seconds, and the connections the receiver took."""
    spec = {
        "url": url,
        "records": records,
        "local_addresses": list(local_addresses),
        "silent": silent,
        "timeout": timeout,
        "allow_private": allow_private,
    }
    ran = subprocess.run(
        ["unshare", "-rnm", sys.executable, "-m", "tests.dns_sandbox", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout.splitlines()[-1])  # type: ignore[no-any-return]


# -- in the namespace -------------------------------------------------------------------


def _answer(query: bytes, records: dict[str, list[str]]) -> bytes:
    """A DNS reply to `query`: the records of its name and type (none: NXDOMAIN)."""
    labels, at = [], 12
    while query[at]:
        labels.append(query[at + 1 : at + 1 + query[at]].decode())
        at += 1 + query[at]
    qtype = struct.unpack("!H", query[at + 1 : at + 3])[0]
    question = query[12 : at + 5]
    name = ".".join(labels).lower()
    known = name in records
    answers = [
        ipaddress.ip_address(address).packed
        for address in records.get(name, [])
        if ipaddress.ip_address(address).version == (4 if qtype == A else 6) and qtype in (A, AAAA)
    ]
    flags = 0x8180 if known else 0x8183  # a reply, recursion available; NXDOMAIN if unknown
    reply = query[:2] + struct.pack("!HHHHH", flags, 1, len(answers), 0, 0) + question
    for data in answers:
        reply += struct.pack("!HHHIH", 0xC00C, qtype, 1, 60, len(data)) + data
    return reply


def _serve_dns(records: dict[str, list[str]], silent: bool) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))

    def serve() -> None:
        while True:
            query, client = server.recvfrom(512)
            if not silent:
                server.sendto(_answer(query, records), client)

    threading.Thread(target=serve, daemon=True).start()


def _receiver() -> tuple[int, list[str]]:
    """An HTTP server on every local address (IPv4 and IPv6); returns its port and the
    list of addresses it was connected to."""
    connected: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def setup(self) -> None:
            super().setup()
            connected.append(self.connection.getsockname()[0])

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    class DualStack(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6

        def server_bind(self) -> None:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    httpd = DualStack(("::", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd.server_address[1], connected


def _main(spec: dict[str, Any]) -> None:
    etc = Path(tempfile.mkdtemp())
    (etc / "resolv.conf").write_text(RESOLV_CONF)
    (etc / "nsswitch.conf").write_text("hosts: files dns\n")
    for name in ("resolv.conf", "nsswitch.conf"):
        subprocess.run(["mount", "--bind", etc / name, f"/etc/{name}"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for address in spec["local_addresses"]:
        prefix = 32 if ipaddress.ip_address(address).version == 4 else 128
        flags = [] if prefix == 32 else ["nodad"]  # usable at once
        add = ["ip", "addr", "add", f"{address}/{prefix}", "dev", "lo", *flags]
        subprocess.run(add, check=True)
    _serve_dns(spec["records"], spec["silent"])
    port, connected = _receiver()

    from service.adapters.http import Poster

    started = time.monotonic()
    with Poster(timeout=spec["timeout"], allow_private=spec["allow_private"]) as poster:
        response = poster.post(spec["url"].format(port=port), b"{}", {})
    elapsed = time.monotonic() - started
    result = {
        "status_code": response.status_code,
        "error": response.error,
        "elapsed": elapsed,
        "connected": connected,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    _main(json.loads(sys.argv[1]))
