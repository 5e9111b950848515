"""Invoices. Lock order: invoice row first, then its items and payments.

Every query that returns invoices selects the same columns, in the order of
service.domain.ledger.Invoice (class_row). A draft's starting_balance is the customer's
balance now, in the invoice's currency (Stripe shows it before finalize); finalize
freezes it. COALESCE evaluates the subquery only for drafts.
"""

from __future__ import annotations

import functools
from dataclasses import fields
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from service.domain.ledger import Invoice, InvoicePayment

# The columns every query returning invoices selects (see above).
COLUMNS = sql.SQL("""
    id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance,
    coalesce(starting_balance,
             (SELECT b.balance FROM customer_balances b
              WHERE b.customer = invoices.customer AND b.currency = invoices.currency),
             0) AS starting_balance""")


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


def insert(conn: psycopg.Connection[Any], invoice: dict[str, Any]) -> dict[str, Any]:
    (row,) = conn.execute(
        _with_columns(
            """
        INSERT INTO invoices (id, livemode, customer, status, currency, description, footer,
            metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
            created)
        VALUES (%(id)s, %(livemode)s, %(customer)s, 'draft', %(currency)s, %(description)s,
            %(footer)s, %(metadata)s, %(auto_advance)s, %(collection_method)s, %(due_date)s,
            %(customer_email)s, %(customer_name)s, %(created)s)
        RETURNING {columns}
        """
        ),
        {**invoice, "metadata": Jsonb(invoice["metadata"])},
    ).fetchall()
    return row


def get(conn: psycopg.Connection[Any], invoice_id: str, livemode: bool) -> dict[str, Any] | None:
    return conn.execute(
        _with_columns(
            """
        SELECT {columns}
        FROM invoices WHERE id = %(id)s AND livemode = %(livemode)s
        """
        ),
        {"id": invoice_id, "livemode": livemode},
    ).fetchone()


def get_for_update(
    conn: psycopg.Connection[Any], invoice_id: str, livemode: bool
) -> dict[str, Any] | None:
    """The invoice row, locked until the end of the caller's transaction."""
    return conn.execute(
        _with_columns(
            """
        SELECT {columns}
        FROM invoices WHERE id = %(id)s AND livemode = %(livemode)s
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
        FROM invoices WHERE id = %(id)s AND livemode = %(livemode)s
        FOR UPDATE"""
        ),
        {"id": invoice_id, "livemode": livemode, "lines": lines},
    ).fetchone()
    if row is None:
        return None
    line_rows = row.pop("line_rows")
    return Invoice(**row), line_rows


# The open invoice payments of some PaymentIntents or payment records, each with its
# invoice, locked (in id order), and that invoice's newest lines: all a credit reads,
# in one round trip. {paid_by} is the column naming what pays them.
_OPEN_PAYMENTS = """
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
            FROM invoice_payments WHERE {paid_by} = ANY(%(ids)s) AND status = 'open'
        ) p
        JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
        ORDER BY invoices.id, p.p_id
        FOR UPDATE OF invoices"""
# Composed once, at import: crediting runs one per batch.
_OPEN_PAYMENTS_OF = {
    paid_by: sql.SQL(_OPEN_PAYMENTS)
    .format(columns=COLUMNS, newest_lines=NEWEST_LINES, paid_by=sql.Identifier(paid_by))
    .as_bytes(None)
    for paid_by in ("payment_intent", "payment_record")
}

# An open invoice payment, its invoice (locked) and that invoice's newest lines.
OpenPayment = tuple[InvoicePayment, Invoice, list[dict[str, Any]]]


def open_payments_of_payment_intents(
    conn: psycopg.Connection[Any], pi_ids: list[str], *, lines: int
) -> list[OpenPayment]:
    """The open invoice payments of the PaymentIntents `pi_ids` (each has at most one: a
    PaymentIntent is attached once), with their invoices locked, in id order, and each
    invoice's newest `lines` items: all a batch of credits reads, in one round trip (the
    hot path of a backlog).

    The payments are read, not locked: invoices.apply_credits moves one only while it is
    still open, whatever a concurrent transaction did since.
    """
    rows = conn.execute(
        _OPEN_PAYMENTS_OF["payment_intent"], {"ids": pi_ids, "lines": lines}
    ).fetchall()
    return [_payment_with_invoice(row) for row in rows]


def open_payment_of_payment_record(
    conn: psycopg.Connection[Any], record_id: str, *, lines: int
) -> OpenPayment | None:
    """The payment record's open invoice payment, as open_payments_of_payment_intents
    finds a PaymentIntent's: its invoice locked, with that invoice's newest `lines`
    items."""
    row = conn.execute(
        _OPEN_PAYMENTS_OF["payment_record"], {"ids": [record_id], "lines": lines}
    ).fetchone()
    return None if row is None else _payment_with_invoice(row)


def _payment_with_invoice(row: dict[str, Any]) -> OpenPayment:
    """An invoice payment (its columns prefixed p_), its invoice and the invoice's lines,
    from one row of the open payments queries."""
    payment = InvoicePayment(*(row.pop(f"p_{f.name}") for f in fields(InvoicePayment)))
    line_rows = row.pop("line_rows")
    return payment, Invoice(**row), line_rows


def apply_credits(
    conn: psycopg.Connection[Any],
    credits: list[tuple[str, str, int]],
    *,
    now: int,
    payable: tuple[str, ...],
    out_of_band: bool = False,
) -> dict[str, Invoice]:
    """For each (invoice id, invoice payment id, amount) of `credits`, mark the open
    invoice payment paid with the amount and add it to its invoice, all in one statement
    (crediting is the hot path of a backlog). The database adds the amount and moves a
    `payable` invoice to paid once nothing of its amount_due (frozen at finalize: the
    total with the customer's balance applied) remains, so even a caller without the
    invoice's row lock could not lose a concurrent credit. The invoices must be
    distinct: one statement updates a row once, so a second credit of the same invoice
    waits for the next call.

    Returns each invoice after, by the id of the payment credited; a payment that was
    not open is left out (and changes nothing): that is what makes a second credit of
    the same payment impossible.
    """
    if len({invoice for invoice, _, _ in credits}) != len(credits):
        raise ValueError("apply_credits credits each invoice once per call")
    rows = conn.execute(
        _with_columns(
            """
        WITH credit AS (
            SELECT * FROM unnest(%(invoices)s::text[], %(payments)s::text[],
                                 %(amounts)s::bigint[]) AS c (invoice, payment, amount)
        ), paid AS (
            UPDATE invoice_payments p
            SET status = 'paid', amount_paid = credit.amount, paid_at = %(now)s
            FROM credit
            WHERE p.id = credit.payment AND p.invoice = credit.invoice AND p.status = 'open'
            RETURNING p.invoice, p.id AS payment, p.amount_paid AS credited
        )
        UPDATE invoices
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
        RETURNING {columns}, paid.payment AS credited_payment
        """
        ),
        {
            "invoices": [invoice for invoice, _, _ in credits],
            "payments": [payment for _, payment, _ in credits],
            "amounts": [amount for _, _, amount in credits],
            "now": now,
            "payable": list(payable),
            "out_of_band": out_of_band,
        },
    ).fetchall()
    after = {}
    for row in rows:
        payment = row.pop("credited_payment")
        after[payment] = Invoice(**row)
    return after


def refresh_total(conn: psycopg.Connection[Any], invoice_id: str) -> dict[str, Any]:
    """Recompute a draft's total from its items."""
    (row,) = conn.execute(
        _with_columns(
            """
        UPDATE invoices SET total = (
            SELECT coalesce(sum(amount), 0) FROM invoice_items WHERE invoice = %(id)s)
        WHERE id = %(id)s
        RETURNING {columns}
        """
        ),
        {"id": invoice_id},
    ).fetchall()
    return row


def update_details(conn: psycopg.Connection[Any], invoice: dict[str, Any]) -> dict[str, Any]:
    """Write the editable, non-monetary fields of `invoice`."""
    (row,) = conn.execute(
        _with_columns(
            """
        UPDATE invoices SET description = %(description)s, footer = %(footer)s,
            metadata = %(metadata)s, auto_advance = %(auto_advance)s,
            collection_method = %(collection_method)s, due_date = %(due_date)s
        WHERE id = %(id)s
        RETURNING {columns}
        """
        ),
        {**invoice, "metadata": Jsonb(invoice["metadata"])},
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
) -> list[dict[str, Any]]:
    """Write the customer's email and name on those of the (locked) drafts that show
    others; the drafts written."""
    return conn.execute(
        _with_columns(
            """
        UPDATE invoices SET customer_email = %(email)s, customer_name = %(name)s
        WHERE id = ANY(%(ids)s) AND status = 'draft'
          AND (customer_email, customer_name) IS DISTINCT FROM (%(email)s, %(name)s)
        RETURNING {columns}
        """
        ),
        {"ids": invoice_ids, "email": email, "name": name},
    ).fetchall()


def update_state(conn: psycopg.Connection[Any], invoice: dict[str, Any]) -> dict[str, Any]:
    """Write a status move of `invoice`: status, number, the transition timestamps and
    the balance it started from and left (frozen at finalize)."""
    (row,) = conn.execute(
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
        invoice,
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
