"""Customer balance transactions: the ledger whose sum is customers.balance."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb


def add(conn: psycopg.Connection[Any], txn: dict[str, Any]) -> dict[str, Any] | None:
    """Append `txn` and add its amount to its customer's balance, in one statement: the
    database adds it, the transaction's ending_balance is the balance it leaves, and the
    customer's row stays locked until commit. A customer without a currency takes the
    transaction's.

    Returns the transaction, or None (and writes nothing) when the customer's balance is
    in another currency.
    """
    return conn.execute(
        """
        WITH customer AS (
            UPDATE customers SET balance = balance + %(amount)s, currency = %(currency)s
            WHERE id = %(customer)s AND coalesce(currency, %(currency)s) = %(currency)s
            RETURNING id, balance
        )
        INSERT INTO customer_balance_transactions (id, livemode, customer, type, amount,
            currency, ending_balance, invoice, description, metadata, created)
        SELECT %(id)s, %(livemode)s, customer.id, %(type)s, %(amount)s, %(currency)s,
            customer.balance, %(invoice)s, %(description)s, %(metadata)s, %(created)s
        FROM customer
        RETURNING id, livemode, customer, type, amount, currency, ending_balance, invoice,
            description, metadata, created
        """,
        {**txn, "metadata": Jsonb(txn["metadata"])},
    ).fetchone()


def get(
    conn: psycopg.Connection[Any], customer_id: str, txn_id: str, livemode: bool
) -> dict[str, Any] | None:
    return conn.execute(
        """
        SELECT id, livemode, customer, type, amount, currency, ending_balance, invoice,
            description, metadata, created
        FROM customer_balance_transactions
        WHERE id = %(id)s AND customer = %(customer)s AND livemode = %(livemode)s
        """,
        {"id": txn_id, "customer": customer_id, "livemode": livemode},
    ).fetchone()


def get_for_update(
    conn: psycopg.Connection[Any], customer_id: str, txn_id: str, livemode: bool
) -> dict[str, Any] | None:
    """The transaction, locked until the transaction ends (its notes are being changed)."""
    return conn.execute(
        """
        SELECT id, livemode, customer, type, amount, currency, ending_balance, invoice,
            description, metadata, created
        FROM customer_balance_transactions
        WHERE id = %(id)s AND customer = %(customer)s AND livemode = %(livemode)s
        FOR NO KEY UPDATE
        """,
        {"id": txn_id, "customer": customer_id, "livemode": livemode},
    ).fetchone()


def update_notes(conn: psycopg.Connection[Any], txn: dict[str, Any]) -> dict[str, Any]:
    """Write a transaction's description and metadata, all that may change of it."""
    (row,) = conn.execute(
        """
        UPDATE customer_balance_transactions
        SET description = %(description)s, metadata = %(metadata)s
        WHERE id = %(id)s
        RETURNING id, livemode, customer, type, amount, currency, ending_balance, invoice,
            description, metadata, created
        """,
        {**txn, "metadata": Jsonb(txn["metadata"])},
    ).fetchall()
    return row
