"""The transaction of a use case that bills a customer (a new invoice or invoice item)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from service.adapters.upstream import Upstream
from service.db import Conn
from service.domain.balances import Customer
from service.errors import ResourceMissing
from service.operations.context import Caller
from service.operations.mirror_upstream import fetch_unknown_customer, mirror_customer
from service.store import customers


@contextmanager
def billing(
    conn: Conn, caller: Caller, customer_id: str, upstream: Upstream | None, *, now: int
) -> Iterator[Customer]:
    """The transaction of a use case that bills `customer_id`, with that customer.

    A customer Tally has not seen is fetched from `upstream` before the transaction
    (no row is locked while Stripe is asked) and mirrored inside it, with its
    `customer.created`; a missing or deleted customer is refused, and the refusal
    rolls the mirror back with the rest.
    """
    fetched = fetch_unknown_customer(conn, caller, customer_id, upstream)
    with conn.transaction():
        mirror_customer(conn, caller, fetched, now=now)
        customer = customers.get_billable(conn, customer_id, caller.livemode)
        if customer is None:
            raise ResourceMissing(f"No such customer: '{customer_id}'", param="customer")
        yield customer
