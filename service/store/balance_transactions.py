"""Customer balance transactions: the ledger whose sum, per currency, is the customer's
balance in that currency (customer_balances; customers.balance for the default one)."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from service.db import Conn


def add(conn: Conn, txn: dict[str, Any]) -> dict[str, Any]:
    """Append `txn` and add its amount to its customer's balance in its currency, in one
    statement: the database adds it, the transaction's ending_balance is that currency's
    balance after it, and the customer's row stays locked until commit (every move of
    any currency's balance updates it, so holding that lock holds them all still).
    customers.balance follows the default currency's; a customer without one takes the
    transaction's (Stripe: "If the customer's `currency` is not set, it will be updated
    to this value")."""
    (row,) = conn.execute(
        """
        WITH customer AS (
            UPDATE customers SET currency = coalesce(currency, %(currency)s),
                balance = balance + CASE WHEN coalesce(currency, %(currency)s) = %(currency)s
                                         THEN %(amount)s ELSE 0 END
            WHERE id = %(customer)s
            RETURNING id
        ), in_currency AS (
            INSERT INTO customer_balances (customer, currency, balance)
            SELECT id, %(currency)s, %(amount)s FROM customer
            ON CONFLICT (customer, currency)
                DO UPDATE SET balance = customer_balances.balance + excluded.balance
            RETURNING customer, balance
        )
        INSERT INTO customer_balance_transactions (id, livemode, customer, type, amount,
            currency, ending_balance, invoice, description, metadata, created)
        SELECT %(id)s, %(livemode)s, in_currency.customer, %(type)s, %(amount)s,
            %(currency)s, in_currency.balance, %(invoice)s, %(description)s, %(metadata)s,
            %(created)s
        FROM in_currency
        RETURNING id, livemode, customer, type, amount, currency, ending_balance, invoice,
            description, metadata, created
        """,
        {**txn, "metadata": Jsonb(txn["metadata"])},
    ).fetchall()
    return row


# One transaction by id, as get and get_for_update read it.
_BY_ID = """
    SELECT id, livemode, customer, type, amount, currency, ending_balance, invoice,
        description, metadata, created
    FROM customer_balance_transactions
    WHERE id = %(id)s AND customer = %(customer)s AND livemode = %(livemode)s
"""


def get(conn: Conn, customer_id: str, txn_id: str, livemode: bool) -> dict[str, Any] | None:
    return conn.execute(
        _BY_ID, {"id": txn_id, "customer": customer_id, "livemode": livemode}
    ).fetchone()


def get_for_update(
    conn: Conn, customer_id: str, txn_id: str, livemode: bool
) -> dict[str, Any] | None:
    """The transaction, locked until the transaction ends (its notes are being changed)."""
    return conn.execute(
        _BY_ID + " FOR NO KEY UPDATE",
        {"id": txn_id, "customer": customer_id, "livemode": livemode},
    ).fetchone()


def update_notes(conn: Conn, txn: dict[str, Any]) -> dict[str, Any]:
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
