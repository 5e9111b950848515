"""Customers, read and written as service.domain.balances.Customer rows."""

from __future__ import annotations

from typing import Any, LiteralString

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from service.db import Conn
from service.domain.balances import Customer
from service.domain.ledger import as_dict


def _typed(conn: Conn) -> psycopg.Cursor[Customer]:
    """A cursor whose rows are Customers."""
    return conn.cursor(row_factory=class_row(Customer))


_INSERT = """
    INSERT INTO customers (id, livemode, email, name, phone, description, metadata, created,
                           invoice_prefix)
    VALUES (%(id)s, %(livemode)s, %(email)s, %(name)s, %(phone)s, %(description)s,
            %(metadata)s, %(created)s, %(invoice_prefix)s)
"""
_RETURNING = """
    RETURNING id, livemode, email, name, phone, description, metadata, created, balance,
        currency, invoice_prefix, next_invoice_sequence, deleted
"""


def _insert(conn: Conn, customer: dict[str, Any], on_conflict: LiteralString) -> Customer | None:
    """Insert the customer unless `on_conflict` (a constant clause) skips it."""
    params = {**customer, "metadata": Jsonb(customer["metadata"])}
    return _typed(conn).execute(_INSERT + on_conflict + _RETURNING, params).fetchone()


def insert(conn: Conn, customer: dict[str, Any]) -> Customer | None:
    """Insert the customer; None, and nothing written, if its `invoice_prefix` is taken."""
    return _insert(conn, customer, "ON CONFLICT (invoice_prefix) DO NOTHING")


# One row by id, as get and get_for_update read it.
_BY_ID = """
    SELECT id, livemode, email, name, phone, description, metadata, created, balance,
        currency, invoice_prefix, next_invoice_sequence, deleted
    FROM customers WHERE id = %(id)s AND livemode = %(livemode)s
"""


def get(conn: Conn, customer_id: str, livemode: bool) -> Customer | None:
    """The customer, deleted or not (its `deleted` says)."""
    return _typed(conn).execute(_BY_ID, {"id": customer_id, "livemode": livemode}).fetchone()


def get_billable(conn: Conn, customer_id: str, livemode: bool) -> Customer | None:
    """The customer unless it is missing or deleted: what invoices, items, PaymentIntents
    and payment records may name (Stripe: deleting a customer "prevents any further
    operations to be performed", and its id is then resource_missing there)."""
    customer = get(conn, customer_id, livemode)
    return None if customer is None or customer.deleted else customer


def take_invoice_number(conn: Conn, customer_id: str) -> tuple[str, int] | None:
    """The customer's invoice prefix and the next number of its sequence, taken: the
    row stays locked until the transaction ends, so concurrent finalizations of one
    customer's invoices number in turn, and a rollback gives the number back. None,
    and nothing taken, when the customer is deleted (in the same statement as the
    lock, so a delete cannot slip between a check and the number)."""
    row = conn.execute(
        """
        UPDATE customers SET next_invoice_sequence = next_invoice_sequence + 1
        WHERE id = %(id)s AND NOT deleted
        RETURNING invoice_prefix, next_invoice_sequence - 1 AS sequence
        """,
        {"id": customer_id},
    ).fetchone()
    return None if row is None else (row["invoice_prefix"], row["sequence"])


def get_for_update(conn: Conn, customer_id: str, livemode: bool) -> Customer | None:
    """The customer, its row locked until the transaction ends so its balance holds
    still. NO KEY UPDATE: inserting an invoice or item of this customer (a foreign key
    check, FOR KEY SHARE) need not wait for it."""
    params = {"id": customer_id, "livemode": livemode}
    return _typed(conn).execute(_BY_ID + " FOR NO KEY UPDATE", params).fetchone()


def claim_invoice_prefix(conn: Conn, prefix: str, customer_id: str) -> bool:
    """Claim `prefix` for the customer, for good (invoice_prefixes, migration 0026); True
    when it is the customer's, now or from before; False when another customer has
    claimed it, or is claiming it concurrently (then the insert waits for that one to
    commit, and the row it wrote is outside this statement's snapshot)."""
    row = conn.execute(
        """
        WITH claimed AS (
            INSERT INTO invoice_prefixes (prefix, customer) VALUES (%(prefix)s, %(customer)s)
            ON CONFLICT (prefix) DO NOTHING
            RETURNING customer
        )
        SELECT customer FROM claimed
        UNION ALL
        SELECT customer FROM invoice_prefixes WHERE prefix = %(prefix)s
        """,
        {"prefix": prefix, "customer": customer_id},
    ).fetchone()
    return row is not None and row["customer"] == customer_id


def update(conn: Conn, customer: Customer) -> Customer | None:
    """Write what an update may change of a customer (its balance moves only through
    its transactions); None, and nothing written, if its `invoice_prefix` is another
    customer's."""
    cur = _typed(conn)
    return cur.execute(
        """
        UPDATE customers
        SET email = %(email)s, name = %(name)s, phone = %(phone)s,
            description = %(description)s, metadata = %(metadata)s,
            invoice_prefix = %(invoice_prefix)s
        WHERE id = %(id)s
          AND NOT EXISTS (SELECT 1 FROM customers other
                          WHERE other.invoice_prefix = %(invoice_prefix)s
                            AND other.id <> %(id)s)
        RETURNING id, livemode, email, name, phone, description, metadata, created, balance,
            currency, invoice_prefix, next_invoice_sequence, deleted
        """,
        {**as_dict(customer), "metadata": Jsonb(customer.metadata)},
    ).fetchone()


def mark_deleted(conn: Conn, customer_id: str) -> None:
    conn.execute("UPDATE customers SET deleted = true WHERE id = %(id)s", {"id": customer_id})


def insert_mirror(conn: Conn, customer: dict[str, Any]) -> Customer | None:
    """Insert a customer mirrored from upstream Stripe under its own id; None, and
    nothing written, when the id is already taken (a concurrent mirror) or the prefix."""
    return _insert(conn, customer, "ON CONFLICT DO NOTHING")


def exists(conn: Conn, customer_id: str) -> bool:
    """Whether the id is taken, in either mode."""
    row = conn.execute("SELECT 1 FROM customers WHERE id = %(id)s", {"id": customer_id}).fetchone()
    return row is not None


def balance_in(conn: Conn, customer_id: str, currency: str) -> int:
    """The customer's balance in `currency` (0 when it has none there)."""
    row = conn.execute(
        """
        SELECT balance FROM customer_balances
        WHERE customer = %(customer)s AND currency = %(currency)s
        """,
        {"customer": customer_id, "currency": currency},
    ).fetchone()
    return row["balance"] if row else 0


def balances(conn: Conn, customer_id: str) -> dict[str, int]:
    """The customer's balance in every currency it has transactions in."""
    rows = conn.execute(
        """
        SELECT currency, balance FROM customer_balances
        WHERE customer = %(customer)s ORDER BY currency
        """,
        {"customer": customer_id},
    ).fetchall()
    return {r["currency"]: r["balance"] for r in rows}
