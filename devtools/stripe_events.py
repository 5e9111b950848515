"""Webhooks as Stripe sends them, for the tests, the benchmarks and the chaos run.

The one place outside the product that builds a `payment_intent.*` event and signs it:
`signed_webhook` gives the body and headers of the POST Stripe would make.
"""

from __future__ import annotations

import json
import time
from typing import Any

from service.domain.events import payment_intent_event
from service.domain.signatures import sign


def stripe_event(pi: dict[str, Any], event_type: str, **over: Any) -> dict[str, Any]:
    """A Stripe event carrying the PaymentIntent `pi` as data.object; `over` replaces
    top-level fields (id, livemode, created...)."""
    return {**payment_intent_event(event_type, pi, now=int(time.time())), **over}


def signed_webhook(
    event: dict[str, Any] | bytes, secret: str, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of Stripe's POST of `event` (a dict, or a body already
    serialised), signed with `secret` at `timestamp` (now by default)."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    at = int(time.time()) if timestamp is None else timestamp
    return body, {"Stripe-Signature": sign(body, secret, at), "Content-Type": "application/json"}
