"""Stripe's webhook signature scheme: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>]`.

The signed string is `"{t}." + raw body`; the HMAC-SHA256 key is the secret string
itself (the `whsec_` text, not base64-decoded), as the stripe SDKs do it. `v0` and
unknown schemes are ignored; any `v1` matching any of the given secrets passes.

Inbound secrets belong to a mode: Stripe gives an account's test-mode and live-mode
webhook endpoints each its own signing secret, so an event is genuine only when a
secret of its own mode (`livemode`) verifies it. Otherwise whoever holds the test
secret (shared with laptops, CI and `stripe listen`) could sign a live event.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from service.errors import SignatureInvalid

SCHEME = "v1"
DEFAULT_TOLERANCE = 300


@dataclass(frozen=True, slots=True)
class WebhookSecrets:
    """The inbound signing secrets of each mode (several during a rotation).
    `either_mode` is the older STRIPE_WEBHOOK_SECRETS, which verifies events of both
    modes and so cannot tell a forged live event from a test one."""

    test: tuple[str, ...] = ()
    live: tuple[str, ...] = ()
    either_mode: tuple[str, ...] = ()

    def of_mode(self, livemode: bool) -> tuple[str, ...]:
        return (self.live if livemode else self.test) + self.either_mode

    @property
    def all(self) -> tuple[str, ...]:
        return self.test + self.live + self.either_mode


def compute(payload: bytes, secret: str, timestamp: int) -> str:
    """The lowercase hex v1 signature of `payload` signed at `timestamp`."""
    return hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256
    ).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The whole `Stripe-Signature` header value for `payload`."""
    return f"t={timestamp},{SCHEME}={compute(payload, secret, timestamp)}"


def verified_modes(
    payload: bytes,
    header: str | None,
    secrets: WebhookSecrets,
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> frozenset[bool]:
    """Check `header` against the raw `payload`: the modes (`livemode` values) one of
    whose secrets verifies it, or SignatureInvalid (missing, malformed, no matching v1,
    or older than `tolerance`). The caller accepts an event only if its own `livemode`
    is among them."""
    if not secrets.all:
        raise SignatureInvalid("No webhook signing secret is configured.")
    timestamp, signatures = _parse(header, now=now, tolerance=tolerance)
    # Every secret is tried (one HMAC each), so the time taken says nothing of which matched.
    verifying = {s for s in set(secrets.all) if _signed_with(payload, timestamp, signatures, s)}
    modes = frozenset(
        livemode for livemode in (False, True) if verifying.intersection(secrets.of_mode(livemode))
    )
    if not modes:
        raise SignatureInvalid("No signature matches the expected signature for the payload.")
    return modes


def _parse(header: str | None, *, now: int, tolerance: int) -> tuple[int, list[str]]:
    """The timestamp and v1 signatures of a `Stripe-Signature` header that is well
    formed and within `tolerance` seconds of `now`, or SignatureInvalid."""
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
    # No tolerance turns this off: the settings refuse one that is not positive.
    if timestamp < now - tolerance:
        raise SignatureInvalid("The Stripe-Signature timestamp is outside the tolerance zone.")
    return timestamp, signatures


def _signed_with(payload: bytes, timestamp: int, signatures: list[str], secret: str) -> bool:
    expected = compute(payload, secret, timestamp).encode()
    # Each compared in constant time, and all of them: no early exit at a match.
    matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in signatures]
    return any(matches)
