"""Which webhook endpoint URLs Tally may deliver to: no target inside (loopback,
private, link-local, CGNAT, unique-local, metadata) in any notation, and https for
live mode."""

from __future__ import annotations

import ipaddress
import re
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from urllib.parse import urlsplit

from service.errors import InvalidRequest

MAX_URL_LENGTH = 2048

# NAT64 (RFC 6052): the well-known prefix carries a public IPv4 address in its last 32
# bits; the local-use prefix (RFC 8215) reaches whatever the operator's translator
# reaches, so it is inside by definition and refused whole.
_NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = IPv6Network("64:ff9b:1::/48")
# IPv4-compatible addresses (RFC 4291, deprecated): ::a.b.c.d.
_IPV4_COMPATIBLE = IPv6Network("::/96")

# A part of an IPv4 address as inet_aton (so getaddrinfo) and browsers read it:
# hex with 0x, octal with a leading 0, else decimal.
_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
# A host whose last label is a number is an IPv4 address or no host at all
# (the WHATWG URL standard's "ends in a number").
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


def _invalid(reason: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid URL: {reason}", param="url", code="url_invalid")


def _parse_ipv4(host: str) -> IPv4Address | None:
    """The IPv4 address `host` denotes in any notation inet_aton or a browser accepts
    (0177.0.0.1, 0x7f.0.0.1, 0x7f000001, 2130706433, 127.1: one to four parts, the
    last filling the bytes left), or None if it denotes none."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(p) for p in parts):
        return None
    values = [
        int(p[2:] or "0", 16) if p[:2].lower() == "0x" else int(p, 8 if p[0] == "0" else 10)
        for p in parts
    ]
    *leading, last = values
    if any(v > 255 for v in leading) or last >= 256 ** (5 - len(values)):
        return None
    for position, value in enumerate(leading):
        last += value << (8 * (3 - position))
    return IPv4Address(last)


def _embedded_ipv4(ip: IPv6Address) -> list[IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: mapped, compatible, NAT64, 6to4,
    and both ends of Teredo (its client address de-obfuscated by ipaddress)."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _IPV4_COMPATIBLE or ip in _NAT64_WELL_KNOWN:
        return [IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def _is_global(ip: IPv4Address | IPv6Address) -> bool:
    # is_global leaves out loopback, private, link-local (169.254/16 with the metadata
    # address, fe80::/10), CGNAT 100.64/10, unique-local fc00::/7 (AWS's fd00:ec2::254),
    # 0.0.0.0/8, reserved 240/4, broadcast and the unspecified address. Not IPv6's
    # is_reserved: its ::/8 holds 64:ff9b::/96, what DNS64 answers for an IPv4-only host.
    site_local = isinstance(ip, IPv6Address) and ip.is_site_local  # fec0::/10, deprecated
    return ip.is_global and not ip.is_multicast and not site_local


def is_public_address(address: str | IPv4Address | IPv6Address) -> bool:
    """Whether Tally may connect to this address: the one rule, for literal addresses
    at registration and for every resolved address at connect time."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if isinstance(ip, IPv6Address):
        if ip in _NAT64_LOCAL_USE:
            return False
        return _is_global(ip) and all(_is_global(v4) for v4 in _embedded_ipv4(ip))
    return _is_global(ip)


def check_webhook_url(url: str, *, livemode: bool, allow_private: bool) -> str:
    """The URL if it is an absolute http(s) URL to a host Tally may call, else
    InvalidRequest (param `url`). A live-mode endpoint must use https, even with
    `allow_private` (a development setting that lifts only the address rule).

    A host given as a name is checked again, resolved, when delivering.
    """
    if len(url) > MAX_URL_LENGTH:
        raise _invalid("too long.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _invalid("cannot be parsed.") from None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        raise _invalid("must be an absolute http or https URL without credentials.")
    if port == 0:
        raise _invalid("bad port.")
    # Stripe: "You can create an HTTPS webhook endpoint to receive events. [...] Stripe
    # uses HTTPS to send webhook events to your app" (docs.stripe.com/webhooks). Its API
    # refuses an http URL in live mode with 'Invalid URL: ... URLs in livemode must
    # begin with "https://"' and takes one in test mode (a receiver under development).
    if livemode and parts.scheme != "https":
        raise _invalid('URLs in livemode must begin with "https://".')
    if allow_private:
        return url
    # What getaddrinfo will look up: Python encodes the name with IDNA, which folds
    # full-width digits, letters and dots (U+FF11, U+3002) to ASCII.
    try:
        name = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise _invalid("bad host name.") from None
    if any(c.isspace() or c in "%\\" for c in name):
        raise _invalid("bad host name.")
    bare = name.removesuffix(".")
    try:
        # An IPv6 literal: urlsplit takes one only valid and in brackets.
        address: IPv4Address | IPv6Address | None = (
            IPv6Address(bare) if ":" in bare else _parse_ipv4(bare)
        )
    except ValueError:
        raise _invalid("bad IPv6 address.") from None
    if address is None and _NUMERIC_LABEL.fullmatch(bare.rsplit(".", 1)[-1]):
        raise _invalid("bad IPv4 address.")
    inside = (
        not is_public_address(address)
        if address is not None
        else f".{bare}".endswith(_LOCAL_SUFFIXES)
    )
    if inside:
        raise _invalid(
            "webhook endpoints must be publicly reachable "
            "(loopback, private, link-local and metadata addresses are refused)."
        )
    return url
