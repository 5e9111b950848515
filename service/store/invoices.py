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
from dataclasses import fields
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from service.domain.ledger import Invoice, InvoicePayment, as_dict

# The columns every query returning invoices selects (see above).
COLUMNS = sql.SQL("""
    id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance""")


# An invoice's newest items, as store.invoice_items.lines returns them: crediting
# renders them into its events.
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


def _typed(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Invoice]:
    """A cursor whose rows are Invoices."""
    return conn.cursor(row_factory=class_row(Invoice))


def insert(conn: psycopg.Connection[Any], invoice: dict[str, Any]) -> Invoice:
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


def get(conn: psycopg.Connection[Any], invoice_id: str, livemode: bool) -> Invoice | None:
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


def get_for_update(
    conn: psycopg.Connection[Any], invoice_id: str, livemode: bool
) -> Invoice | None:
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
    conn: psycopg.Connection[Any], invoice_id: str, livemode: bool, *, lines: int
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


# An open invoice payment with its invoice, locked, and that invoice's newest lines:
# all a credit reads, in one round trip. {paid_by} is the column naming what pays it.
_OPEN_PAYMENT = """
        SELECT {columns}, {newest_lines},
            p.p_id, p.p_livemode, p.p_invoice, p.p_payment_intent, p.p_payment_record,
            p.p_currency, p.p_amount_requested, p.p_amount_paid, p.p_status, p.p_paid_at,
            p.p_canceled_at, p.p_created
        FROM (
            SELECT id AS p_id, livemode AS p_livemode, invoice AS p_invoice,
                payment_intent AS p_payment_intent, payment_record AS p_payment_record,
                currency AS p_currency, amount_requested AS p_amount_requested,
                amount_paid AS p_amount_paid, status AS p_status, paid_at AS p_paid_at,
                canceled_at AS p_canceled_at, created AS p_created
            FROM invoice_payments WHERE {paid_by} = %(id)s AND status = 'open'
        ) p
        JOIN invoice_rows AS invoices
            ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
        FOR UPDATE OF invoices"""
# Composed once, at import: crediting runs one per credit.
_OPEN_PAYMENT_OF = {
    paid_by: sql.SQL(_OPEN_PAYMENT)
    .format(columns=COLUMNS, newest_lines=NEWEST_LINES, paid_by=sql.Identifier(paid_by))
    .as_bytes(None)
    for paid_by in ("payment_intent", "payment_record")
}


def open_payment_of_payment_intent(
    conn: psycopg.Connection[Any], pi_id: str, *, lines: int
) -> tuple[InvoicePayment, Invoice, list[dict[str, Any]]] | None:
    """The PaymentIntent's open invoice payment (it has at most one: a PaymentIntent is
    attached once), with its invoice locked and that invoice's newest `lines` items:
    all a credit reads, in one round trip (the hot path of a backlog).

    The payment is read, not locked: invoices.apply_credit moves it only while it is
    still open, whatever a concurrent transaction did since.
    """
    row = conn.execute(_OPEN_PAYMENT_OF["payment_intent"], {"id": pi_id, "lines": lines}).fetchone()
    return _payment_with_invoice(row)


def open_payment_of_payment_record(
    conn: psycopg.Connection[Any], record_id: str, *, lines: int
) -> tuple[InvoicePayment, Invoice, list[dict[str, Any]]] | None:
    """The payment record's open invoice payment, as open_payment_of_payment_intent
    finds a PaymentIntent's: its invoice locked, with that invoice's newest `lines`
    items."""
    row = conn.execute(
        _OPEN_PAYMENT_OF["payment_record"], {"id": record_id, "lines": lines}
    ).fetchone()
    return _payment_with_invoice(row)


def _payment_with_invoice(
    row: dict[str, Any] | None,
) -> tuple[InvoicePayment, Invoice, list[dict[str, Any]]] | None:
    """An invoice payment (its columns prefixed p_), its invoice and the invoice's lines,
    from one row of the open_payment_of_* queries."""
    if row is None:
        return None
    payment = InvoicePayment(*(row.pop(f"p_{f.name}") for f in fields(InvoicePayment)))
    line_rows = row.pop("line_rows")
    return payment, Invoice(**row), line_rows


def apply_credit(
    conn: psycopg.Connection[Any],
    invoice_id: str,
    payment_id: str,
    *,
    amount: int,
    now: int,
    payable: tuple[str, ...],
    out_of_band: bool = False,
) -> Invoice | None:
    """Mark an open invoice payment paid with `amount` and add it to its invoice, in one
    statement (crediting is the hot path of a backlog). The database adds the amount
    and moves a `payable` invoice to paid once nothing of its amount_due (frozen at
    finalize: the total with the customer's balance applied) remains, so even a caller
    without the invoice's row lock could not lose a concurrent credit.

    Returns the invoice after, or None (and changes nothing) if the payment was not
    open: that is what makes a second credit of the same payment impossible.
    """
    cur = conn.cursor(row_factory=class_row(Invoice))
    return cur.execute(
        _with_columns(
            """
        WITH paid AS (
            UPDATE invoice_payments
            SET status = 'paid', amount_paid = %(amount)s, paid_at = %(now)s
            WHERE id = %(payment_id)s AND invoice = %(id)s AND status = 'open'
            RETURNING invoice, amount_paid AS credited
        )
        UPDATE invoice_rows AS invoices
        SET amount_paid = invoices.amount_paid + paid.credited,
            status = CASE
                WHEN invoices.status = ANY(%(payable)s)
                    AND invoices.amount_paid + paid.credited
                        >= greatest(invoices.total + invoices.starting_balance, 0)
                THEN 'paid' ELSE invoices.status END,
            paid_at = CASE
                WHEN invoices.status = ANY(%(payable)s)
                    AND invoices.amount_paid + paid.credited
                        >= greatest(invoices.total + invoices.starting_balance, 0)
                THEN %(now)s ELSE invoices.paid_at END,
            paid_out_of_band = invoices.paid_out_of_band OR %(out_of_band)s
        FROM paid
        WHERE invoices.id = paid.invoice
        RETURNING {columns}
        """
        ),
        {
            "id": invoice_id,
            "payment_id": payment_id,
            "amount": amount,
            "now": now,
            "payable": list(payable),
            "out_of_band": out_of_band,
        },
    ).fetchone()


def refresh_total(conn: psycopg.Connection[Any], invoice_id: str) -> Invoice:
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


def update_details(conn: psycopg.Connection[Any], invoice: Invoice) -> Invoice:
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


def lock_drafts_of(
    conn: psycopg.Connection[Any], customer_id: str, livemode: bool
) -> list[dict[str, Any]]:
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
    conn: psycopg.Connection[Any], invoice_ids: list[str], email: str | None, name: str | None
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


def update_state(conn: psycopg.Connection[Any], invoice: Invoice) -> Invoice:
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


def delete(conn: psycopg.Connection[Any], invoice_id: str) -> None:
    """Delete a draft (its items released first: they reference it)."""
    conn.execute("DELETE FROM invoices WHERE id = %(id)s", {"id": invoice_id})


def has_payments(conn: psycopg.Connection[Any], invoice_id: str, statuses: tuple[str, ...]) -> bool:
    """Whether the invoice has an invoice payment in one of `statuses`."""
    row = conn.execute(
        "SELECT 1 FROM invoice_payments WHERE invoice = %(invoice)s AND status = ANY(%(statuses)s)"
        " LIMIT 1",
        {"invoice": invoice_id, "statuses": list(statuses)},
    ).fetchone()
    return row is not None
