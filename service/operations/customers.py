"""Creating customers."""

from __future__ import annotations

from typing import Any

import psycopg

from service.domain.ids import CUSTOMER, new_id
from service.domain.invoices import new_invoice_prefix
from service.operations.context import Caller
from service.store import customers

PREFIX_ATTEMPTS = 5


def create_customer(
    conn: psycopg.Connection[Any], caller: Caller, params: dict[str, Any], *, now: int
) -> dict[str, Any]:
    """Store a new customer with an invoice prefix no other customer has. One statement
    per attempt (no explicit transaction); a prefix clash writes nothing and is retried."""
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
    # 16^8 prefixes: a clash is rare, several in a row would mean a broken generator.
    for _ in range(PREFIX_ATTEMPTS):
        row = customers.insert(conn, {**customer, "invoice_prefix": new_invoice_prefix()})
        if row is not None:
            return row
    raise RuntimeError(f"no free invoice prefix in {PREFIX_ATTEMPTS} attempts")
