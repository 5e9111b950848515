"""Customers and PaymentIntents that upstream Stripe has and Tally has not seen yet.

In two steps, so that no row is locked while Stripe is asked: `fetch_unknown_*` runs
before the operation's transaction and asks upstream only about an id Tally does not
have in the caller's mode; the operation then mirrors what came back inside its
transaction, before applying its own rules, so a refusal rolls the mirror back with
the rest. PaymentIntents are mirrored by `crediting.apply_payment_intent_update`, the
webhook's path, so Stripe's status rules hold for them too.
"""

from __future__ import annotations

from typing import Any

from service.adapters.upstream import Upstream
from service.db import Conn
from service.domain.invoices import new_invoice_prefix
from service.operations.context import Caller
from service.operations.customers import PREFIX_ATTEMPTS
from service.render.customers import render_customer
from service.store import customers, events, payment_intents


def fetch_unknown_customer(
    conn: Conn, caller: Caller, customer_id: str, upstream: Upstream | None
) -> dict[str, Any] | None:
    """Upstream's customer when Tally has none by this id in the caller's mode; None when
    Tally has it, upstream has not, or no upstream is configured. Raises
    UpstreamUnavailable, having written nothing, when upstream fails."""
    if upstream is None or customers.get(conn, customer_id, caller.livemode) is not None:
        return None
    return upstream.customer(customer_id, livemode=caller.livemode)


def fetch_unknown_payment_intent(
    conn: Conn, caller: Caller, pi_id: str, upstream: Upstream | None
) -> dict[str, Any] | None:
    """Upstream's PaymentIntent when Tally has not mirrored it; as fetch_unknown_customer."""
    if upstream is None or payment_intents.get(conn, pi_id, caller.livemode) is not None:
        return None
    return upstream.payment_intent(pi_id, livemode=caller.livemode)


def mirror_customer(
    conn: Conn, caller: Caller, customer: dict[str, Any] | None, *, now: int
) -> None:
    """Store a customer fetched from upstream under Stripe's id (nothing if None), and
    write its `customer.created`, so that webhook consumers hear of it as of any other.
    Tally gives it an invoice prefix of its own; its balance is Tally's ledger, from
    zero."""
    if customer is None:
        return
    row = {
        "id": customer["id"],
        "livemode": customer["livemode"],
        "email": customer.get("email"),
        "name": customer.get("name"),
        "phone": customer.get("phone"),
        "description": customer.get("description"),
        "metadata": customer.get("metadata") or {},
        "created": int(customer["created"]),
    }
    for _ in range(PREFIX_ATTEMPTS):
        prefix = new_invoice_prefix()
        # Refused when the id exists (mirrored meanwhile, with its event: done) or the
        # prefix (retry).
        mirrored = customers.claim_invoice_prefix(conn, prefix, row["id"]) and (
            customers.insert_mirror(conn, {**row, "invoice_prefix": prefix})
        )
        if mirrored:
            events.add(conn, caller.event("customer.created", render_customer(mirrored), now=now))
            return
        if customers.exists(conn, row["id"]):
            return
    raise RuntimeError(f"no free invoice prefix in {PREFIX_ATTEMPTS} attempts")
