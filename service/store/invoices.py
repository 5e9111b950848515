"""Invoices. Lock order: invoice row first, then its items and payments.

Every query that returns invoices selects the same columns, in the order of
service.domain.ledger.Invoice (class_row), from the view invoice_rows (migration 0037),
which owns the one derived column, a draft's starting_balance; queries name it
`invoices`. Writes that return the invoice go through the view too (PostgreSQL
updates the table under it, and RETURNING reads the view), except update_state, which
sets the frozen starting_balance on the table itself.
"""

from __future__ import annotations

import functools
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from service.db import Conn
from service.domain.ledger import Invoice, as_dict

# The columns every query returning invoices selects (see above).
COLUMNS = sql.SQL("""
    id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance""")


# An invoice's newest items, as store.invoice_items.lines returns them: crediting
# renders them into its events (store.credits).
NEWEST_LINES = sql.SQL("""
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount,
                  quantity, currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT %(lines)s) item) AS line_rows""")


@functools.cache
def _with_columns(query: str) -> bytes:
    """`query` with {columns} (and {newest_lines}) filled in, composed once per query
    (crediting runs two of these per credit)."""
    return sql.SQL(query).format(columns=COLUMNS, newest_lines=NEWEST_LINES).as_bytes(None)


def _typed(conn: Conn) -> psycopg.Cursor[Invoice]:
    """A cursor whose rows are Invoices."""
    return conn.cursor(row_factory=class_row(Invoice))


def insert(conn: Conn, invoice: dict[str, Any]) -> Invoice:
    """Insert a draft."""
    cur = _typed(conn)
    (row,) = cur.execute(
        _with_columns(
            """
        INSERT INTO invoice_rows AS invoices (id, livemode, customer, status, currency,
            description, footer, metadata, auto_advance, collection_method, due_date,
            customer_email, customer_name, created)
        VALUES (%(id)s, %(livemode)s, %(customer)s, 'draft', %(currency)s, %(description)s,
            %(footer)s, %(metadata)s, %(auto_advance)s, %(collection_method)s, %(due_date)s,
            %(customer_email)s, %(customer_name)s, %(created)s)
        RETURNING {columns}
        """
        ),
        {**invoice, "metadata": Jsonb(invoice["metadata"])},
    ).fetchall()
    return row


def get(conn: Conn, invoice_id: str, livemode: bool) -> Invoice | None:
    cur = _typed(conn)
    return cur.execute(
        _with_columns(
            """
        SELECT {columns}
        FROM invoice_rows AS invoices WHERE id = %(id)s AND livemode = %(livemode)s
        """
        ),
        {"id": invoice_id, "livemode": livemode},
    ).fetchone()


def get_for_update(conn: Conn, invoice_id: str, livemode: bool) -> Invoice | None:
    """The invoice row, locked until the end of the caller's transaction."""
    cur = _typed(conn)
    return cur.execute(
        _with_columns(
            """
        SELECT {columns}
        FROM invoice_rows AS invoices WHERE id = %(id)s AND livemode = %(livemode)s
        FOR UPDATE
        """
        ),
        {"id": invoice_id, "livemode": livemode},
    ).fetchone()


def get_for_update_with_lines(
    conn: Conn, invoice_id: str, livemode: bool, *, lines: int
) -> tuple[Invoice, list[dict[str, Any]]] | None:
    """The invoice, locked, with its newest `lines` invoice items, as
    store.invoice_items.lines returns them. One round trip instead of two, for
    attaching and paying, which render the invoice into their events (the lines of a
    finalized invoice no longer change).
    """
    row = conn.execute(
        _with_columns(
            """
        SELECT {columns}, {newest_lines}
        FROM invoice_rows AS invoices WHERE id = %(id)s AND livemode = %(livemode)s
        FOR UPDATE"""
        ),
        {"id": invoice_id, "livemode": livemode, "lines": lines},
    ).fetchone()
    if row is None:
        return None
    line_rows = row.pop("line_rows")
    return Invoice(**row), line_rows


def refresh_total(conn: Conn, invoice_id: str) -> Invoice:
    """Recompute a draft's total from its items."""
    cur = _typed(conn)
    (row,) = cur.execute(
        _with_columns(
            """
        UPDATE invoice_rows AS invoices SET total = (
            SELECT coalesce(sum(amount), 0) FROM invoice_items WHERE invoice = %(id)s)
        WHERE id = %(id)s
        RETURNING {columns}
        """
        ),
        {"id": invoice_id},
    ).fetchall()
    return row


def update_details(conn: Conn, invoice: Invoice) -> Invoice:
    """Write the editable, non-monetary fields of `invoice`."""
    cur = _typed(conn)
    (row,) = cur.execute(
        _with_columns(
            """
        UPDATE invoice_rows AS invoices SET description = %(description)s, footer = %(footer)s,
            metadata = %(metadata)s, auto_advance = %(auto_advance)s,
            collection_method = %(collection_method)s, due_date = %(due_date)s
        WHERE id = %(id)s
        RETURNING {columns}
        """
        ),
        {**as_dict(invoice), "metadata": Jsonb(invoice.metadata)},
    ).fetchall()
    return row


def lock_drafts_of(conn: Conn, customer_id: str, livemode: bool) -> list[dict[str, Any]]:
    """Lock the customer's drafts, in id order; their ids and the customer details they
    show. Take before the customer's row (the lock order)."""
    return conn.execute(
        """
        SELECT id, customer_email, customer_name FROM invoices
        WHERE customer = %(customer)s AND livemode = %(livemode)s AND status = 'draft'
        ORDER BY id
        FOR NO KEY UPDATE
        """,
        {"customer": customer_id, "livemode": livemode},
    ).fetchall()


def show_customer(
    conn: Conn, invoice_ids: list[str], email: str | None, name: str | None
) -> list[Invoice]:
    """Write the customer's email and name on those of the (locked) drafts that show
    others; the drafts written."""
    cur = _typed(conn)
    return cur.execute(
        _with_columns(
            """
        UPDATE invoice_rows AS invoices SET customer_email = %(email)s, customer_name = %(name)s
        WHERE id = ANY(%(ids)s) AND status = 'draft'
          AND (customer_email, customer_name) IS DISTINCT FROM (%(email)s, %(name)s)
        RETURNING {columns}
        """
        ),
        {"ids": invoice_ids, "email": email, "name": name},
    ).fetchall()


def update_state(conn: Conn, invoice: Invoice) -> Invoice:
    """Write a status move of `invoice`: status, number, the transition timestamps and
    the balance it started from and left (frozen at finalize). On the table, which
    holds the frozen starting_balance: every move leaves the invoice finalized, and a
    finalized invoice's own starting_balance is set (CHECK of migration 0011), so the
    table's columns are the row."""
    cur = _typed(conn)
    (row,) = cur.execute(
        _with_columns(
            """
        UPDATE invoices SET status = %(status)s, number = %(number)s,
            auto_advance = %(auto_advance)s, paid_out_of_band = %(paid_out_of_band)s,
            finalized_at = %(finalized_at)s, paid_at = %(paid_at)s, voided_at = %(voided_at)s,
            marked_uncollectible_at = %(marked_uncollectible_at)s,
            starting_balance = %(starting_balance)s, ending_balance = %(ending_balance)s
        WHERE id = %(id)s
        RETURNING {columns}
        """
        ),
        as_dict(invoice),
    ).fetchall()
    return row


def delete(conn: Conn, invoice_id: str) -> None:
    """Delete a draft (its items released first: they reference it)."""
    conn.execute("DELETE FROM invoices WHERE id = %(id)s", {"id": invoice_id})


def has_payments(conn: Conn, invoice_id: str, statuses: tuple[str, ...]) -> bool:
    """Whether the invoice has an invoice payment in one of `statuses`."""
    row = conn.execute(
        "SELECT 1 FROM invoice_payments WHERE invoice = %(invoice)s AND status = ANY(%(statuses)s)"
        " LIMIT 1",
        {"invoice": invoice_id, "statuses": list(statuses)},
    ).fetchone()
    return row is not None
