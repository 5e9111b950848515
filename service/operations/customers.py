"""Creating customers."""

from __future__ import annotations

from typing import Any

import psycopg

from service.domain.ids import CUSTOMER, new_id
from service.operations.context import Caller
from service.store import customers


def create_customer(
    conn: psycopg.Connection[Any], caller: Caller, params: dict[str, Any], *, now: int
) -> dict[str, Any]:
    """Store a new customer; one statement, so no explicit transaction is needed."""
    return customers.insert(
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
