"""Send Tally a signed Stripe event for one of its PaymentIntents, like `stripe trigger`.

    python -m service.trigger payment_intent.succeeded pi_123 \\
        [--url http://127.0.0.1:8000] [--secret whsec_…] [--amount 1299 --currency usd]

The PaymentIntent's amount, currency and customer come from Tally's
GET /v1/payment_intents/:id (with the first of TALLY_API_KEYS) unless --amount and
--currency are given. The secret defaults to the first of STRIPE_WEBHOOK_SECRETS.
They, and the URL, fall back to what `bin/dev` keeps in .tally-data/dev.env.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from service.config import API_VERSION
from service.dev import read_dev_env
from service.domain.signatures import sign

# The PaymentIntent status each event type carries.
STATUSES = {
    "payment_intent.created": "requires_payment_method",
    "payment_intent.requires_action": "requires_action",
    "payment_intent.processing": "processing",
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "requires_payment_method",
    "payment_intent.canceled": "canceled",
}


def build_event(event_type: str, pi: dict[str, Any], *, now: int) -> dict[str, Any]:
    """A Stripe event as Stripe sends it, carrying `pi` in its new state."""
    status = STATUSES[event_type]
    obj = {
        "id": pi["id"],
        "object": "payment_intent",
        "amount": pi["amount"],
        "amount_capturable": 0,
        "amount_received": pi["amount"] if status == "succeeded" else 0,
        "canceled_at": now if status == "canceled" else None,
        "cancellation_reason": "requested_by_customer" if status == "canceled" else None,
        "capture_method": "automatic",
        "created": pi.get("created") or now,
        "currency": pi["currency"],
        "customer": pi.get("customer"),
        "description": pi.get("description"),
        "last_payment_error": (
            {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}
            if event_type == "payment_intent.payment_failed"
            else None
        ),
        "livemode": bool(pi.get("livemode", False)),
        "metadata": pi.get("metadata") or {},
        "payment_method_types": ["card"],
        "status": status,
    }
    return {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": API_VERSION,
        "created": now,
        "data": {"object": obj},
        "livemode": obj["livemode"],
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def fetch_payment_intent(base_url: str, api_key: str, pi_id: str) -> dict[str, Any]:
    token = base64.b64encode(f"{api_key}:".encode()).decode()
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/v1/payment_intents/{pi_id}",
        headers={"Authorization": f"Basic {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def send(base_url: str, event: dict[str, Any], secret: str) -> tuple[int, str]:
    body = json.dumps(event).encode()
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/webhooks/stripe",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body, secret, int(time.time())),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _first(value: str | None) -> str | None:
    parts = [p.strip() for p in (value or "").split(",") if p.strip()]
    return parts[0] if parts else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.trigger", description=__doc__)
    parser.add_argument("event_type", choices=sorted(STATUSES))
    parser.add_argument("payment_intent", help="pi_… id")
    env = {**read_dev_env(), **os.environ}
    default_url = env.get("TALLY_URL") or f"http://127.0.0.1:{env.get('PORT', '8000')}"
    parser.add_argument("--url", default=default_url)
    parser.add_argument("--secret", default=_first(env.get("STRIPE_WEBHOOK_SECRETS")))
    parser.add_argument("--api-key", default=_first(env.get("TALLY_API_KEYS")))
    parser.add_argument("--amount", type=int)
    parser.add_argument("--currency")
    parser.add_argument("--customer")
    parser.add_argument("--livemode", action="store_true")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("no --secret and STRIPE_WEBHOOK_SECRETS is not set")
    if args.amount is not None and args.currency:
        pi: dict[str, Any] = {
            "id": args.payment_intent,
            "amount": args.amount,
            "currency": args.currency.lower(),
            "customer": args.customer,
            "livemode": args.livemode,
        }
    else:
        if not args.api_key:
            parser.error("give --amount and --currency, or set TALLY_API_KEYS to look them up")
        try:
            pi = fetch_payment_intent(args.url, args.api_key, args.payment_intent)
        except urllib.error.HTTPError as err:
            sys.stderr.write(f"GET /v1/payment_intents/{args.payment_intent}: {err.code}\n")
            return 1
        except urllib.error.URLError as err:
            sys.stderr.write(f"cannot reach Tally at {args.url} ({err.reason}): is it running?\n")
            return 1
    event = build_event(args.event_type, pi, now=int(time.time()))
    try:
        status, text = send(args.url, event, args.secret)
    except urllib.error.URLError as err:
        sys.stderr.write(f"cannot reach Tally at {args.url} ({err.reason}): is it running?\n")
        return 1
    sys.stdout.write(f"{event['id']} {args.event_type} {pi['id']} -> {status} {text.strip()}\n")
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
