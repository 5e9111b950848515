"""Which webhook endpoint URLs Tally may deliver to (no loopback or private targets)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from service.errors import InvalidRequest

MAX_URL_LENGTH = 2048


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified IPs."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_webhook_url(url: str, *, allow_private: bool) -> str:
    """The URL if it is an absolute http(s) URL to a host Tally may call, else InvalidRequest.

    A host given as a name is checked again, resolved, when delivering.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest("Invalid URL: too long.", param="url", code="url_invalid")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidRequest("Invalid URL.", param="url", code="url_invalid") from None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        raise InvalidRequest(
            "Invalid URL: must be an absolute http or https URL without credentials.",
            param="url",
            code="url_invalid",
        )
    if port == 0:
        raise InvalidRequest("Invalid URL: bad port.", param="url", code="url_invalid")
    if allow_private:
        return url
    local_name = host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
    try:
        public = is_public_address(host)
    except ValueError:
        public = not local_name
    if not public:
        raise InvalidRequest(
            "Invalid URL: webhook endpoints must be publicly reachable "
            "(loopback and private addresses are refused).",
            param="url",
            code="url_invalid",
        )
    return url
