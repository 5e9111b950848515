"""PaymentIntents created and canceled through the API (their updates from Stripe are
mirrored by crediting.apply_payment_intent_update)."""

from __future__ import annotations

import hashlib
from typing import Any

from service.adapters.upstream import Upstream
from service.db import Conn
from service.domain import ledger
from service.domain.ids import PAYMENT_INTENT, new_id
from service.errors import NotFound, PaymentStateConflict, ResourceMissing
from service.operations.context import Caller
from service.operations.crediting import apply_payment_intent_update
from service.operations.mirror_upstream import fetch_unknown_customer, mirror_customer
from service.render.payments import render_payment_intent
from service.store import customers, events, invoice_payments, payment_intents


def create_payment_intent(
    conn: Conn,
    caller: Caller,
    params: dict[str, Any],
    *,
    upstream: Upstream | None = None,
    now: int,
) -> dict[str, Any]:
    """Mirror a new PaymentIntent awaiting its payment method; `payment_intent.created`.
    A customer Tally has not seen is fetched from `upstream` first and mirrored with it,
    in one transaction."""
    customer = params.get("customer")
    fetched = fetch_unknown_customer(conn, caller, customer, upstream) if customer else None
    with conn.transaction():
        mirror_customer(conn, caller, fetched, now=now)
        if customer and customers.get_billable(conn, customer, caller.livemode) is None:
            raise ResourceMissing(f"No such customer: '{customer}'", param="customer")
        row = payment_intents.insert(
            conn,
            {
                "id": new_id(PAYMENT_INTENT),
                "livemode": caller.livemode,
                "amount": params["amount"],
                "amount_received": 0,
                "currency": params["currency"],
                "customer": customer,
                "description": params.get("description"),
                "status": "requires_payment_method",
                "cancellation_reason": None,
                "canceled_at": None,
                "metadata": params.get("metadata") or {},
                "created": now,
            },
        )
        events.add(
            conn, caller.event("payment_intent.created", render_payment_intent(row), now=now)
        )
    return row


def cancel_payment_intent(
    conn: Conn,
    caller: Caller,
    pi_id: str,
    *,
    reason: str | None,
    upstream: Upstream | None = None,
    now: int,
) -> dict[str, Any]:
    """Cancel a PaymentIntent that has not succeeded, and its open invoice payment, with
    `payment_intent.canceled` carrying the caller's request (Stripe's answer's, mirrored,
    for one Stripe owns).

    One that Stripe owns (mirrored from it) is canceled at Stripe first, when upstream is
    configured, and the copy is canceled only once Stripe has confirmed, by mirroring what
    Stripe answered: a copy canceled alone would leave the real one free to collect money
    that Tally would then not credit. Stripe failing or slow raises UpstreamUnavailable
    (503) and Stripe refusing raises UpstreamRefused with Stripe's error, both before
    anything is written; Stripe's new state then reaches the copy as its webhook does.
    Without upstream, or for Tally's own PaymentIntents, the cancel is Tally's alone.
    """
    pi = payment_intents.get(conn, pi_id, caller.livemode)
    if pi is None:
        raise NotFound(f"No such payment_intent: '{pi_id}'", param="intent")
    _check_cancelable(pi["status"])
    canceled_upstream = None
    if upstream is not None and pi["origin"] == "stripe":
        # Asked before the transaction: no row is locked while Stripe answers.
        canceled_upstream = upstream.cancel_payment_intent(
            pi_id,
            reason=reason,
            livemode=caller.livemode,
            idempotency_key=_upstream_idempotency_key(caller, pi_id),
        )
    with conn.transaction():
        if canceled_upstream is not None:
            events.add_all(
                conn, apply_payment_intent_update(conn, canceled_upstream, now=now, caller=caller)
            )
        locked = payment_intents.get_for_update(conn, pi_id, caller.livemode)
        if locked is None:
            raise NotFound(f"No such payment_intent: '{pi_id}'", param="intent")
        if canceled_upstream is not None:
            return ledger.as_dict(locked)  # Stripe's cancel, mirrored
        _check_cancelable(locked.status)
        row = payment_intents.update_state(
            conn,
            {
                **ledger.as_dict(locked),
                "status": "canceled",
                "cancellation_reason": reason,
                "canceled_at": now,
            },
        )
        invoice_payments.cancel_open_of_payment_intents(conn, [pi_id], now=now)
        events.add(
            conn, caller.event("payment_intent.canceled", render_payment_intent(row), now=now)
        )
    return row


def _check_cancelable(status: str) -> None:
    if status in ("succeeded", "canceled", "processing"):
        raise PaymentStateConflict(
            f"You cannot cancel this PaymentIntent because it has a status of {status}.",
            code="payment_intent_unexpected_state",
        )


def _upstream_idempotency_key(caller: Caller, pi_id: str) -> str | None:
    """Stripe's Idempotency-Key for the cancel, derived from the caller's: when Stripe
    canceled but its answer never reached Tally (a timeout, so a 503), the caller's retry
    with the same key gets Stripe's saved answer, the canceled PaymentIntent, instead of
    a refusal to cancel a canceled one. Hashed: Stripe's keys are at most 255 characters."""
    if caller.idempotency_key is None:
        return None
    digest = hashlib.sha256(f"{pi_id}\n{caller.idempotency_key}".encode()).hexdigest()
    return f"tally-cancel-{digest}"
