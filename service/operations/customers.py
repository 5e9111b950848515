"""Creating customers."""

from __future__ import annotations

from typing import Any

import psycopg

from service.domain.ids import CUSTOMER, new_id
from service.operations.balances import open_balance
from service.operations.context import Caller
from service.store import customers


def create_customer(
    conn: psycopg.Connection[Any], caller: Caller, params: dict[str, Any], *, now: int
) -> dict[str, Any]:
    """Store a new customer; a nonzero `balance` is its `initial` balance transaction,
    written in the same transaction."""
    with conn.transaction():
        customer = customers.insert(
            conn,
            {
                "id": new_id(CUSTOMER),
                "livemode": caller.livemode,
                "email": params.get("email"),
                "name": params.get("name"),
                "phone": params.get("phone"),
                "description": params.get("description"),
                "metadata": params.get("metadata") or {},
                "created": now,
            },
        )
        if params.get("balance"):
            customer = open_balance(conn, caller, customer, params["balance"], now=now)
    return customer
