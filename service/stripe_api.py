"""Reading from a Stripe-compatible API (Stripe itself, or Tally): one GET, stdlib only."""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
from typing import Any


def fetch_payment_intent(
    api_base: str, api_key: str, pi_id: str, *, timeout: float = 10.0
) -> dict[str, Any]:
    """GET /v1/payment_intents/:id with `api_key` as the HTTP Basic user name.

    Raises urllib.error.HTTPError / URLError (OSError) when the call fails, and
    ValueError when the answer is not a PaymentIntent.
    """
    url = f"{api_base.rstrip('/')}/v1/payment_intents/{urllib.parse.quote(pi_id)}"
    token = base64.b64encode(f"{api_key}:".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        pi = json.loads(response.read())
    if not isinstance(pi, dict) or pi.get("object") != "payment_intent":
        raise ValueError("the API did not return a payment_intent")
    return pi
