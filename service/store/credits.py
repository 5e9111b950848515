"""Crediting's statements: the open invoice payments a credit reads, with their invoices
locked, and the credits themselves, each set-wise (a batch of inbound events credits
many invoices in one transaction). Lock order: invoice, then its payments. Invoices are
read through invoice_rows (migration 0037: the one definition of a draft's
starting_balance) and updated in their table: a credit moves only open invoices, whose
starting_balance is frozen."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from psycopg import sql

from service.db import Conn
from service.domain.ledger import Invoice, InvoicePayment, LockedPaymentIntent
from service.store import payment_intents
from service.store.invoices import COLUMNS, NEWEST_LINES

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
        JOIN invoice_rows AS invoices
            ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
        ORDER BY invoices.id, p.p_id
        FOR UPDATE OF invoices"""
# Composed once, at import: crediting runs one per batch (bench/crediting.py runs
# it in pgbench).
OPEN_PAYMENTS_OF = {
    paid_by: sql.SQL(_OPEN_PAYMENTS)
    .format(columns=COLUMNS, newest_lines=NEWEST_LINES, paid_by=sql.Identifier(paid_by))
    .as_bytes(None)
    for paid_by in ("payment_intent", "payment_record")
}

# A credit: the payments `paid` (a CTE returning invoice, payment, credited) added to
# their invoices. The database adds the amounts and moves a `payable` invoice to paid
# once nothing of its amount_due (frozen at finalize: the total with the customer's
# balance applied) remains, so even a caller without the invoice's row lock could not
# lose a concurrent credit.
_CREDIT = """
        WITH {paid}
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
        RETURNING {columns}, paid.payment AS credited_payment"""
# Open invoice payments marked paid (apply_credits).
_PAY_OPEN = """
        credit AS (
            SELECT * FROM unnest(%(invoices)s::text[], %(payments)s::text[],
                                 %(amounts)s::bigint[]) AS c (invoice, payment, amount)
        ), paid AS (
            UPDATE invoice_payments p
            SET status = 'paid', amount_paid = credit.amount, paid_at = %(now)s
            FROM credit
            WHERE p.id = credit.payment AND p.invoice = credit.invoice AND p.status = 'open'
            RETURNING p.invoice, p.id AS payment, p.amount_paid AS credited
        )"""
# A new invoice payment, paid as it is attached (attach_paid).
_INSERT_PAID = """
        paid AS (
            INSERT INTO invoice_payments (id, livemode, invoice, payment_intent,
                payment_record, currency, amount_requested, status, amount_paid, paid_at,
                created)
            VALUES (%(id)s, %(livemode)s, %(invoice)s, %(payment_intent)s,
                %(payment_record)s, %(currency)s, %(amount_requested)s, 'paid', %(amount)s,
                %(now)s, %(created)s)
            RETURNING invoice, id AS payment, amount_paid AS credited
        )"""
CREDIT_WITH = {
    name: sql.SQL(_CREDIT).format(paid=sql.SQL(paid), columns=COLUMNS).as_bytes(None)
    for name, paid in (("pay_open", _PAY_OPEN), ("insert_paid", _INSERT_PAID))
}

# What attaching a PaymentIntent locks, in one round trip: the PaymentIntent, then
# (the lock order) the invoice with its newest lines. The invoice's condition on the
# PaymentIntent's CTE is an InitPlan, run before any invoice row is read, so the
# PaymentIntent is locked first whichever subquery runs first.
_LOCK_FOR_ATTACH = (
    sql.SQL("""
        WITH payment AS ({locked}
        ), invoice AS (
            SELECT {columns}, {newest_lines}
            FROM invoice_rows AS invoices
            WHERE id = %(invoice)s AND livemode = %(livemode)s
              AND (SELECT count(*) FROM payment) >= 0
            FOR UPDATE
        )
        SELECT (SELECT to_jsonb(payment) FROM payment) AS payment,
               (SELECT to_jsonb(invoice) FROM invoice) AS invoice""")
    .format(locked=sql.SQL(payment_intents.LOCKED), columns=COLUMNS, newest_lines=NEWEST_LINES)
    .as_bytes(None)
)

# An open invoice payment, its invoice (locked) and that invoice's newest lines.
OpenPayment = tuple[InvoicePayment, Invoice, list[dict[str, Any]]]


def lock_for_attach(
    conn: Conn, pi_id: str, invoice_id: str, livemode: bool, *, lines: int
) -> tuple[LockedPaymentIntent | None, tuple[Invoice, list[dict[str, Any]]] | None]:
    """The PaymentIntent locked with `attached_to` (payment_intents.get_for_update), and
    the invoice locked after it with its newest `lines` items
    (invoices.get_for_update_with_lines), in one statement; either is None if missing."""
    (row,) = conn.execute(
        _LOCK_FOR_ATTACH,
        {"id": pi_id, "invoice": invoice_id, "livemode": livemode, "lines": lines},
    ).fetchall()
    payment = None if row["payment"] is None else LockedPaymentIntent(**row["payment"])
    if row["invoice"] is None:
        return payment, None
    line_rows = row["invoice"].pop("line_rows")
    return payment, (Invoice(**row["invoice"]), line_rows)


def open_payments_of_payment_intents(
    conn: Conn, pi_ids: list[str], *, lines: int
) -> list[OpenPayment]:
    """The open invoice payments of the PaymentIntents `pi_ids` (each has at most one: a
    PaymentIntent is attached once), with their invoices locked, in id order, and each
    invoice's newest `lines` items: all a batch of credits reads, in one round trip (the
    hot path of a backlog).

    The payments are read, not locked: apply_credits moves one only while it is still
    open, whatever a concurrent transaction did since.
    """
    rows = conn.execute(
        OPEN_PAYMENTS_OF["payment_intent"], {"ids": pi_ids, "lines": lines}
    ).fetchall()
    return [_payment_with_invoice(row) for row in rows]


def open_payment_of_payment_record(conn: Conn, record_id: str, *, lines: int) -> OpenPayment | None:
    """The payment record's open invoice payment, as open_payments_of_payment_intents
    finds a PaymentIntent's: its invoice locked, with that invoice's newest `lines`
    items."""
    row = conn.execute(
        OPEN_PAYMENTS_OF["payment_record"], {"ids": [record_id], "lines": lines}
    ).fetchone()
    return None if row is None else _payment_with_invoice(row)


def _payment_with_invoice(row: dict[str, Any]) -> OpenPayment:
    """An invoice payment (its columns prefixed p_), its invoice and the invoice's lines,
    from one row of the open payments queries."""
    payment = InvoicePayment(*(row.pop(f"p_{f.name}") for f in fields(InvoicePayment)))
    line_rows = row.pop("line_rows")
    return payment, Invoice(**row), line_rows


def apply_credits(
    conn: Conn,
    credits: list[tuple[str, str, int]],
    *,
    now: int,
    payable: tuple[str, ...],
    out_of_band: bool = False,
) -> dict[str, Invoice]:
    """For each (invoice id, invoice payment id, amount) of `credits`, mark the open
    invoice payment paid with the amount and add it to its invoice (_CREDIT), all in
    one statement (crediting is the hot path of a backlog). The invoices must be
    distinct: one statement updates a row once, so a second credit of the same invoice
    waits for the next call.

    Returns each invoice after, by the id of the payment credited; a payment that was
    not open is left out (and changes nothing): that is what makes a second credit of
    the same payment impossible.
    """
    if len({invoice for invoice, _, _ in credits}) != len(credits):
        raise ValueError("apply_credits credits each invoice once per call")
    rows = conn.execute(
        CREDIT_WITH["pay_open"],
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


def attach_paid(
    conn: Conn,
    payment: dict[str, Any],
    *,
    amount: int,
    now: int,
    payable: tuple[str, ...],
    out_of_band: bool = False,
) -> Invoice:
    """Insert the invoice payment `payment` (the columns of invoice_payments.insert)
    paid with `amount`, and add it to its invoice (_CREDIT), in one statement: what
    attaching a payment that has already succeeded writes, in one round trip instead of
    an insert and a credit. Raises UniqueViolation if its payment is attached."""
    (row,) = conn.execute(
        CREDIT_WITH["insert_paid"],
        {
            **payment,
            "amount": amount,
            "now": now,
            "payable": list(payable),
            "out_of_band": out_of_band,
        },
    ).fetchall()
    del row["credited_payment"]
    return Invoice(**row)
