"""Stripe's webhook signature scheme: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>]`.

The signed string is `"{t}." + raw body`; the HMAC-SHA256 key is the secret string
itself (the `whsec_` text, not base64-decoded), as the stripe SDKs do it. `v0` and
unknown schemes are ignored; any `v1` matching any configured secret passes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from service.errors import SignatureInvalid

SCHEME = "v1"
DEFAULT_TOLERANCE = 300


def compute(payload: bytes, secret: str, timestamp: int) -> str:
    """The lowercase hex v1 signature of `payload` signed at `timestamp`."""
    return hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256
    ).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The whole `Stripe-Signature` header value for `payload`."""
    return f"t={timestamp},{SCHEME}={compute(payload, secret, timestamp)}"


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> int:
    """Check `header` against the raw `payload`; return its timestamp or raise
    SignatureInvalid (missing, malformed, no matching v1, or older than `tolerance`)."""
    if not secrets:
        raise SignatureInvalid("No webhook signing secret is configured.")
    if not header:
        raise SignatureInvalid("No Stripe-Signature header was sent.")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureInvalid("The Stripe-Signature timestamp is malformed.") from None
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureInvalid("The Stripe-Signature header has no timestamp.")
    if not signatures:
        raise SignatureInvalid("The Stripe-Signature header has no v1 signature.")
    if tolerance > 0 and timestamp < now - tolerance:
        raise SignatureInvalid("The Stripe-Signature timestamp is outside the tolerance zone.")
    # Compare every candidate in constant time; stop only once one matched.
    for secret in secrets:
        expected = compute(payload, secret, timestamp).encode()
        for candidate in signatures:
            if hmac.compare_digest(expected, candidate.encode()):
                return timestamp
    raise SignatureInvalid("No signature matches the expected signature for the payload.")
