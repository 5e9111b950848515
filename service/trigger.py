"""Send Tally a signed Stripe event for one of its PaymentIntents, like `stripe trigger`.

    python -m service.trigger payment_intent.succeeded pi_123 \\
        [--url http://127.0.0.1:8000] [--secret whsec_…] [--amount 1299 --currency usd]

The PaymentIntent's amount, currency and customer come from Tally's
GET /v1/payment_intents/:id (with the first of TALLY_API_KEYS) unless --amount and
--currency are given. The event is signed with a secret of its own mode, as Stripe
signs it: by default the first of STRIPE_WEBHOOK_SECRETS_TEST (or of
STRIPE_WEBHOOK_SECRETS_LIVE for a live-mode PaymentIntent; else of the older
STRIPE_WEBHOOK_SECRETS). They, and the URL, fall back to what `bin/dev` keeps in
.tally-data/dev.env.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from service.adapters.upstream import Upstream
from service.config import read_dev_env
from service.domain.events import PAYMENT_INTENT_STATUSES, payment_intent_event
from service.domain.signatures import sign
from service.errors import UpstreamUnavailable


def _is_http(url: str) -> bool:
    return urllib.parse.urlsplit(url).scheme in ("http", "https")


def send(base_url: str, event: dict[str, Any], secret: str) -> tuple[int, str]:
    if not _is_http(base_url):  # urlopen would also read file: and ftp: URLs
        raise ValueError(f"not an http:// or https:// URL: {base_url!r}")
    body = json.dumps(event).encode()
    request = urllib.request.Request(  # noqa: S310 -- the scheme is checked above
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
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- as above
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def answering(base_url: str) -> bool:
    """True if Tally answers GET /healthz at base_url (any HTTP status will do)."""
    try:
        # S310: base_url is checked to be http(s) by the caller.
        with urllib.request.urlopen(f"{base_url.rstrip('/')}/healthz", timeout=5):  # noqa: S310
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def _first(value: str | None) -> str | None:
    parts = [p.strip() for p in (value or "").split(",") if p.strip()]
    return parts[0] if parts else None


def _signing_secret_name(livemode: bool) -> str:
    return "STRIPE_WEBHOOK_SECRETS_LIVE" if livemode else "STRIPE_WEBHOOK_SECRETS_TEST"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.trigger", description=__doc__)
    parser.add_argument("event_type", choices=sorted(PAYMENT_INTENT_STATUSES))
    parser.add_argument("payment_intent", help="pi_… id")
    env = {**read_dev_env(), **os.environ}
    default_url = env.get("TALLY_URL") or f"http://127.0.0.1:{env.get('PORT', '8000')}"
    parser.add_argument("--url", default=default_url)
    parser.add_argument("--secret", help="default: the first secret of the event's mode")
    parser.add_argument("--api-key", default=_first(env.get("TALLY_API_KEYS")))
    parser.add_argument("--amount", type=int)
    parser.add_argument("--currency")
    parser.add_argument("--customer")
    parser.add_argument("--livemode", action="store_true")
    args = parser.parse_args(argv)
    if not _is_http(args.url):
        parser.error(f"--url must be an http:// or https:// URL, not {args.url!r}")
    by_hand = args.amount is not None and args.currency
    if not by_hand and not args.api_key:
        parser.error("give --amount and --currency, or set TALLY_API_KEYS to look them up")
    if not answering(args.url):
        # Before the look-up, which would blame Stripe: Tally is read with Stripe's SDK.
        sys.stderr.write(f"Tally is not answering at {args.url}: is bin/dev running?\n")
        return 1
    livemode = args.livemode if by_hand else args.api_key.startswith("sk_live_")
    secret_name = _signing_secret_name(livemode)
    secret = (
        args.secret or _first(env.get(secret_name)) or _first(env.get("STRIPE_WEBHOOK_SECRETS"))
    )
    if not secret:
        parser.error(f"no --secret and {secret_name} is not set")
    if by_hand:
        pi: dict[str, Any] = {
            "id": args.payment_intent,
            "amount": args.amount,
            "currency": args.currency.lower(),
            "customer": args.customer,
            "livemode": args.livemode,
        }
    else:
        # Tally speaks Stripe's API: read the PaymentIntent as upstream Stripe is read.
        tally = Upstream(args.api_key, args.url, timeout=10)
        try:
            found = tally.payment_intent(args.payment_intent, livemode=livemode)
        except UpstreamUnavailable as err:
            sys.stderr.write(f"cannot read it from Tally at {args.url}: {err.message}\n")
            return 1
        if found is None:
            sys.stderr.write(f"no such payment_intent at {args.url}: {args.payment_intent}\n")
            return 1
        pi = found
    event = payment_intent_event(args.event_type, pi, now=int(time.time()))
    try:
        status, text = send(args.url, event, secret)
    except urllib.error.URLError as err:
        sys.stderr.write(f"cannot reach Tally at {args.url} ({err.reason}): is it running?\n")
        return 1
    sys.stdout.write(f"{event['id']} {args.event_type} {pi['id']} -> {status} {text.strip()}\n")
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
