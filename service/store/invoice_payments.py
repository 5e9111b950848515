"""Invoice payments: the link of one PaymentIntent or payment record to one invoice."""

from __future__ import annotations

from typing import Any

from service.db import Conn


def insert(conn: Conn, payment: dict[str, Any]) -> None:
    """Insert an open invoice payment; raises UniqueViolation if its payment is attached.
    Nothing is read back: its caller has every column (an attach's most frequent
    statement; a RETURNING into an InvoicePayment nobody read cost a third of it)."""
    conn.execute(
        """
        INSERT INTO invoice_payments (id, livemode, invoice, payment_intent, payment_record,
            currency, amount_requested, status, created)
        VALUES (%(id)s, %(livemode)s, %(invoice)s, %(payment_intent)s, %(payment_record)s,
            %(currency)s, %(amount_requested)s, 'open', %(created)s)
        """,
        payment,
    )


def get(conn: Conn, payment_id: str, livemode: bool) -> dict[str, Any] | None:
    return conn.execute(
        """
        SELECT id, livemode, invoice, payment_intent, payment_record, currency,
            amount_requested, amount_paid, status, paid_at, canceled_at, created
        FROM invoice_payments WHERE id = %(id)s AND livemode = %(livemode)s
        """,
        {"id": payment_id, "livemode": livemode},
    ).fetchone()


def cancel_open_of_payment_intents(conn: Conn, pi_ids: list[str], *, now: int) -> None:
    """Cancel the open invoice payments of the PaymentIntents `pi_ids`, in one statement."""
    conn.execute(
        """
        UPDATE invoice_payments SET status = 'canceled', canceled_at = %(now)s
        WHERE payment_intent = ANY(%(ids)s) AND status = 'open'
        """,
        {"ids": pi_ids, "now": now},
    )


def open_for_invoice(conn: Conn, invoice_id: str) -> list[tuple[str, str | None]]:
    """(id, payment_intent) of the invoice's open payments, oldest first."""
    rows = conn.execute(
        "SELECT id, payment_intent FROM invoice_payments"
        " WHERE invoice = %(invoice)s AND status = 'open' ORDER BY seq",
        {"invoice": invoice_id},
    ).fetchall()
    return [(row["id"], row["payment_intent"]) for row in rows]


def paid_off_stripe(conn: Conn, invoice_id: str) -> int:
    """What the invoice's paid payment records (payments made outside Stripe) paid."""
    (row,) = conn.execute(
        "SELECT coalesce(sum(amount_paid), 0) AS amount FROM invoice_payments"
        " WHERE invoice = %(invoice)s AND status = 'paid' AND payment_record IS NOT NULL",
        {"invoice": invoice_id},
    ).fetchall()
    return int(row["amount"])


def mark_canceled(conn: Conn, payment_id: str, *, now: int) -> dict[str, Any] | None:
    return conn.execute(
        """
        UPDATE invoice_payments SET status = 'canceled', canceled_at = %(now)s
        WHERE id = %(id)s AND status = 'open'
        RETURNING id, livemode, invoice, payment_intent, payment_record, currency,
            amount_requested, amount_paid, status, paid_at, canceled_at, created
        """,
        {"id": payment_id, "now": now},
    ).fetchone()


def for_invoice(conn: Conn, invoice_id: str, limit: int) -> list[dict[str, Any]]:
    return conn.execute(
        """
        SELECT id, livemode, invoice, payment_intent, payment_record, currency,
            amount_requested, amount_paid, status, paid_at, canceled_at, created
        FROM invoice_payments WHERE invoice = %(invoice)s
        ORDER BY seq DESC LIMIT %(limit)s
        """,
        {"invoice": invoice_id, "limit": limit},
    ).fetchall()
