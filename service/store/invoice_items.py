"""Invoice items: pending charges of a customer, and, once bound to an invoice, its lines.

An item is read and written as an InvoiceItem; an invoice's lines (lines, lines_of,
lines_page) are read as dicts, which is what render takes for them."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from service.db import Conn
from service.domain.invoices import InvoiceItem
from service.domain.ledger import as_dict


def _typed(conn: Conn) -> psycopg.Cursor[InvoiceItem]:
    """A cursor whose rows are InvoiceItems."""
    return conn.cursor(row_factory=class_row(InvoiceItem))


def insert(conn: Conn, item: dict[str, Any]) -> InvoiceItem:
    cur = _typed(conn)
    (row,) = cur.execute(
        """
        INSERT INTO invoice_items (id, line_id, livemode, customer, invoice, amount, unit_amount,
            quantity, currency, description, metadata, created)
        VALUES (%(id)s, %(line_id)s, %(livemode)s, %(customer)s, %(invoice)s, %(amount)s,
            %(unit_amount)s, %(quantity)s, %(currency)s, %(description)s, %(metadata)s,
            %(created)s)
        RETURNING id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
            currency, description, metadata, created
        """,
        {**item, "metadata": Jsonb(item["metadata"])},
    ).fetchall()
    return row


# One row by id, as get and get_for_update read it.
_BY_ID = """
    SELECT id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
        currency, description, metadata, created
    FROM invoice_items WHERE id = %(id)s AND livemode = %(livemode)s
"""


def get(conn: Conn, item_id: str, livemode: bool) -> InvoiceItem | None:
    return _typed(conn).execute(_BY_ID, {"id": item_id, "livemode": livemode}).fetchone()


def get_for_update(conn: Conn, item_id: str, livemode: bool) -> InvoiceItem | None:
    """The item, locked until the end of the caller's transaction (after its invoice's
    lock: the lock order)."""
    params = {"id": item_id, "livemode": livemode}
    return _typed(conn).execute(_BY_ID + " FOR UPDATE", params).fetchone()


def update(conn: Conn, item: InvoiceItem) -> InvoiceItem:
    """Write the changeable fields of `item`: its amounts, description and metadata."""
    cur = _typed(conn)
    (row,) = cur.execute(
        """
        UPDATE invoice_items SET amount = %(amount)s, unit_amount = %(unit_amount)s,
            quantity = %(quantity)s, description = %(description)s, metadata = %(metadata)s
        WHERE id = %(id)s
        RETURNING id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
            currency, description, metadata, created
        """,
        {**as_dict(item), "metadata": Jsonb(item.metadata)},
    ).fetchall()
    return row


def delete(conn: Conn, item_id: str) -> None:
    conn.execute("DELETE FROM invoice_items WHERE id = %(id)s", {"id": item_id})


def release(conn: Conn, invoice_id: str) -> list[InvoiceItem]:
    """Take every item off `invoice_id`, pending again (no longer anyone's line), oldest
    first; call with the invoice locked."""
    cur = _typed(conn)
    return cur.execute(
        """
        WITH released AS (
            UPDATE invoice_items SET invoice = NULL, line_id = NULL
            WHERE invoice = %(invoice)s
            RETURNING seq, id, line_id, livemode, customer, invoice, amount, unit_amount,
                quantity, currency, description, metadata, created
        )
        SELECT id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
            currency, description, metadata, created
        FROM released ORDER BY seq
        """,
        {"invoice": invoice_id},
    ).fetchall()


def latest_pending_currency(conn: Conn, customer: str, livemode: bool) -> str | None:
    """The currency of the customer's newest pending item, if any."""
    row = conn.execute(
        """
        SELECT currency FROM invoice_items
        WHERE customer = %(customer)s AND livemode = %(livemode)s AND invoice IS NULL
        ORDER BY seq DESC LIMIT 1
        """,
        {"customer": customer, "livemode": livemode},
    ).fetchone()
    return row["currency"] if row else None


def pending_ids_for_update(conn: Conn, customer: str, currency: str, livemode: bool) -> list[str]:
    """Lock the customer's pending items in `currency`, oldest first."""
    rows = conn.execute(
        """
        SELECT id FROM invoice_items
        WHERE customer = %(customer)s AND currency = %(currency)s AND livemode = %(livemode)s
          AND invoice IS NULL
        ORDER BY seq
        FOR UPDATE
        """,
        {"customer": customer, "currency": currency, "livemode": livemode},
    ).fetchall()
    return [r["id"] for r in rows]


def bind(conn: Conn, invoice_id: str, line_ids: dict[str, str]) -> list[InvoiceItem]:
    """Put still-pending items on `invoice_id`, each becoming the line named in `line_ids`."""
    cur = _typed(conn)
    return cur.execute(
        """
        UPDATE invoice_items SET invoice = %(invoice)s, line_id = l.line_id
        FROM unnest(%(ids)s::text[], %(line_ids)s::text[]) AS l (id, line_id)
        WHERE invoice_items.id = l.id AND invoice_items.invoice IS NULL
        RETURNING invoice_items.id, invoice_items.line_id, invoice_items.livemode,
            invoice_items.customer, invoice_items.invoice, invoice_items.amount,
            invoice_items.unit_amount, invoice_items.quantity, invoice_items.currency,
            invoice_items.description, invoice_items.metadata, invoice_items.created
        """,
        {"invoice": invoice_id, "ids": list(line_ids), "line_ids": list(line_ids.values())},
    ).fetchall()


def lines(conn: Conn, invoice_id: str, limit: int) -> list[dict[str, Any]]:
    """The invoice's newest `limit` items, newest first (Stripe's order for invoice items).
    Lines stay dicts, the shape render takes and store.invoices.NEWEST_LINES returns."""
    return conn.execute(
        """
        SELECT id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
            currency, description, metadata, created
        FROM invoice_items WHERE invoice = %(invoice)s
        ORDER BY seq DESC LIMIT %(limit)s
        """,
        {"invoice": invoice_id, "limit": limit},
    ).fetchall()


def lines_of(conn: Conn, invoice_ids: list[str], limit: int) -> dict[str, list[dict[str, Any]]]:
    """Each invoice's newest `limit` items, newest first, for many invoices in one query."""
    rows = conn.execute(
        """
        SELECT id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
            currency, description, metadata, created
        FROM (
            SELECT *, row_number() OVER (PARTITION BY invoice ORDER BY seq DESC) AS position
            FROM invoice_items WHERE invoice = ANY(%(invoices)s)
        ) ranked
        WHERE position <= %(limit)s
        ORDER BY invoice, position
        """,
        {"invoices": invoice_ids, "limit": limit},
    ).fetchall()
    by_invoice: dict[str, list[dict[str, Any]]] = {invoice_id: [] for invoice_id in invoice_ids}
    for row in rows:
        by_invoice[row["invoice"]].append(row)
    return by_invoice


_LINE_CURSOR = sql.SQL(
    """AND seq {} (SELECT seq FROM invoice_items
                   WHERE line_id = %(cursor)s AND invoice = %(invoice)s)"""
)


def lines_page(
    conn: Conn,
    invoice_id: str,
    *,
    limit: int,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """One newest-first page of the invoice's lines, paged by line id (`il_…`)."""
    params = {"invoice": invoice_id, "cursor": starting_after or ending_before, "limit": limit + 1}
    # After the cursor: older lines, newest first; before it: newer ones, oldest first
    # (reversed below). A closed set of fragments, composed.
    cursor: sql.Composable
    if starting_after is not None:
        cursor, order = _LINE_CURSOR.format(sql.SQL("<")), sql.SQL("DESC")
    elif ending_before is not None:
        cursor, order = _LINE_CURSOR.format(sql.SQL(">")), sql.SQL("ASC")
    else:
        cursor, order = sql.SQL(""), sql.SQL("DESC")
    query = sql.SQL(
        """
        SELECT id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
            currency, description, metadata, created
        FROM invoice_items
        WHERE invoice = %(invoice)s {cursor}
        ORDER BY seq {order} LIMIT %(limit)s
        """
    ).format(cursor=cursor, order=order)
    rows = conn.execute(query, params).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    if starting_after is None and ending_before is not None:
        rows.reverse()
    return rows, has_more
