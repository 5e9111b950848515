"""Creating customers."""

from __future__ import annotations

from typing import Any

import psycopg

from service.domain.ids import CUSTOMER, new_id
from service.domain.invoices import new_invoice_prefix
from service.operations.balances import open_balance
from service.operations.context import Caller
from service.store import customers

PREFIX_ATTEMPTS = 5


def create_customer(
    conn: psycopg.Connection[Any], caller: Caller, params: dict[str, Any], *, now: int
) -> dict[str, Any]:
    """Store a new customer with an invoice prefix no other customer has; a nonzero
    `balance` is its `initial` balance transaction, written in the same transaction."""
    customer = {
        "id": new_id(CUSTOMER),
        "livemode": caller.livemode,
        "email": params.get("email"),
        "name": params.get("name"),
        "phone": params.get("phone"),
        "description": params.get("description"),
        "metadata": params.get("metadata") or {},
        "created": now,
    }
    with conn.transaction():
        # 16^8 prefixes: a clash is rare (it writes nothing and is retried); several in
        # a row would mean a broken generator.
        for _ in range(PREFIX_ATTEMPTS):
            row = customers.insert(conn, {**customer, "invoice_prefix": new_invoice_prefix()})
            if row is not None:
                break
        else:
            raise RuntimeError(f"no free invoice prefix in {PREFIX_ATTEMPTS} attempts")
        if params.get("balance"):
            row = open_balance(conn, caller, row, params["balance"], now=now)
    return row
