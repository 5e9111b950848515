"""Tally's mirror of PaymentIntents."""

from __future__ import annotations

from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from service.db import Conn
from service.domain.ledger import LockedPaymentIntent, MirroredPaymentIntent


def insert(conn: Conn, pi: dict[str, Any]) -> dict[str, Any]:
    """A PaymentIntent created in Tally: Tally's own (origin 'tally')."""
    (row,) = conn.execute(
        """
        INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
            description, status, cancellation_reason, canceled_at, metadata, created, origin)
        VALUES (%(id)s, %(livemode)s, %(amount)s, %(amount_received)s, %(currency)s, %(customer)s,
            %(description)s, %(status)s, %(cancellation_reason)s, %(canceled_at)s, %(metadata)s,
            %(created)s, 'tally')
        RETURNING id, livemode, amount, amount_received, currency, customer, description,
            status, cancellation_reason, canceled_at, metadata, created
        """,
        {**pi, "metadata": Jsonb(pi["metadata"])},
    ).fetchall()
    return row


def get(conn: Conn, pi_id: str, livemode: bool) -> dict[str, Any] | None:
    """The PaymentIntent, with its `origin` ('tally' or 'stripe': who owns the real one)."""
    return conn.execute(
        """
        SELECT id, livemode, amount, amount_received, currency, customer, description,
            status, cancellation_reason, canceled_at, metadata, created, origin
        FROM payment_intents WHERE id = %(id)s AND livemode = %(livemode)s
        """,
        {"id": pi_id, "livemode": livemode},
    ).fetchone()


# A PaymentIntent locked, with `attached_to`: the invoice it is attached to (also the
# first half of store.credits.lock_for_attach).
LOCKED = """
        SELECT p.id, p.livemode, p.amount, p.amount_received, p.currency, p.customer,
               p.description, p.status, p.cancellation_reason, p.canceled_at, p.metadata,
               p.created, p.superseded_canceled_at, ip.invoice AS attached_to
        FROM payment_intents p
        LEFT JOIN invoice_payments ip ON ip.payment_intent = p.id
        WHERE p.id = %(id)s AND p.livemode = %(livemode)s
        FOR UPDATE OF p"""


def get_for_update(conn: Conn, pi_id: str, livemode: bool) -> LockedPaymentIntent | None:
    """The PaymentIntent, locked, with `attached_to`: the invoice it is attached to."""
    cur = conn.cursor(row_factory=class_row(LockedPaymentIntent))
    return cur.execute(LOCKED, {"id": pi_id, "livemode": livemode}).fetchone()


# The mirrors' upsert, apply_updates's statement; bench/crediting.py runs it in pgbench.
APPLY_UPDATES = """
    WITH incoming AS (
        SELECT * FROM jsonb_to_recordset(%(pis)s) AS v (id text, livemode boolean,
            amount bigint, amount_received bigint, currency text, customer text,
            description text, status text, cancellation_reason text, canceled_at bigint,
            metadata jsonb, created bigint)
    ), before AS (
        SELECT id, status FROM payment_intents WHERE id IN (SELECT id FROM incoming)
    )
    INSERT INTO payment_intents AS pi (id, livemode, amount, amount_received, currency,
        customer, description, status, cancellation_reason, canceled_at, metadata,
        created, origin)
    SELECT id, livemode, amount, amount_received, currency, customer, description,
        status, cancellation_reason, canceled_at, metadata, created, 'stripe'
    FROM incoming ORDER BY id
    ON CONFLICT (id) DO UPDATE
    SET status = EXCLUDED.status, amount = EXCLUDED.amount,
        amount_received = EXCLUDED.amount_received,
        cancellation_reason = EXCLUDED.cancellation_reason,
        canceled_at = EXCLUDED.canceled_at,
        -- never null once superseded: the breach check keys on it
        superseded_canceled_at = CASE WHEN pi.status = 'canceled'
            THEN coalesce(pi.canceled_at, extract(epoch FROM now())::bigint)
            END
    WHERE (pi.status <> ALL(%(terminal)s)
           OR (pi.status = 'canceled' AND EXCLUDED.status = 'succeeded'))
      AND pi.livemode = EXCLUDED.livemode
      AND (pi.status, pi.amount, pi.amount_received, pi.cancellation_reason,
           pi.canceled_at)
          IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.amount, EXCLUDED.amount_received,
                            EXCLUDED.cancellation_reason, EXCLUDED.canceled_at)
    RETURNING id, livemode, amount, amount_received, currency, customer, description,
        status, cancellation_reason, canceled_at, metadata, created, superseded_canceled_at,
        xmax = 0 AS inserted,
        status IS DISTINCT FROM (SELECT b.status FROM before b WHERE b.id = pi.id)
            AS status_moved
"""


def apply_updates(
    conn: Conn, pis: list[dict[str, Any]], *, terminal: tuple[str, ...]
) -> dict[str, MirroredPaymentIntent]:
    """Insert each mirror (origin 'stripe'), or bring its state up to its entry of `pis`
    unless its status is `terminal` (or it belongs to the other mode: a live event never
    moves a test object), in one statement. The ids must be distinct (a row is changed
    once per statement); rows are locked in id order. One exception: a success moves a
    canceled copy to succeeded, keeping the canceled_at it had (or now, if it had none)
    in superseded_canceled_at (migration 0017: Stripe's success is the truth).

    Returns, by id, the rows changed, locked for this transaction; one left as it was,
    a duplicate or late event changing nothing included, is not returned (so it writes
    no event). Each row says whether it was inserted (xmax 0: no earlier version) and
    whether its status moved, compared with the version this statement's snapshot saw.
    """
    cur = conn.cursor(row_factory=class_row(MirroredPaymentIntent))
    rows = cur.execute(
        APPLY_UPDATES,
        {"pis": Jsonb(pis), "terminal": list(terminal)},
    ).fetchall()
    return {row.id: row for row in rows}


def update_state(conn: Conn, pi: dict[str, Any]) -> dict[str, Any]:
    (row,) = conn.execute(
        """
        UPDATE payment_intents
        SET status = %(status)s, amount = %(amount)s, amount_received = %(amount_received)s,
            cancellation_reason = %(cancellation_reason)s, canceled_at = %(canceled_at)s
        WHERE id = %(id)s
        RETURNING id, livemode, amount, amount_received, currency, customer, description,
            status, cancellation_reason, canceled_at, metadata, created
        """,
        pi,
    ).fetchall()
    return row
