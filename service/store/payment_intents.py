"""Tally's mirror of PaymentIntents."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from service.domain.ledger import LockedPaymentIntent, MirroredPaymentIntent


def insert(conn: psycopg.Connection[Any], pi: dict[str, Any]) -> dict[str, Any]:
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


def get(conn: psycopg.Connection[Any], pi_id: str, livemode: bool) -> dict[str, Any] | None:
    """The PaymentIntent, with its `origin` ('tally' or 'stripe': who owns the real one)."""
    return conn.execute(
        """
        SELECT id, livemode, amount, amount_received, currency, customer, description,
            status, cancellation_reason, canceled_at, metadata, created, origin
        FROM payment_intents WHERE id = %(id)s AND livemode = %(livemode)s
        """,
        {"id": pi_id, "livemode": livemode},
    ).fetchone()


def get_for_update(
    conn: psycopg.Connection[Any], pi_id: str, livemode: bool
) -> LockedPaymentIntent | None:
    """The PaymentIntent, locked, with `attached_to`: the invoice it is attached to."""
    cur = conn.cursor(row_factory=class_row(LockedPaymentIntent))
    return cur.execute(
        """
        SELECT p.id, p.livemode, p.amount, p.amount_received, p.currency, p.customer,
               p.description, p.status, p.cancellation_reason, p.canceled_at, p.metadata,
               p.created, p.superseded_canceled_at, ip.invoice AS attached_to
        FROM payment_intents p
        LEFT JOIN invoice_payments ip ON ip.payment_intent = p.id
        WHERE p.id = %(id)s AND p.livemode = %(livemode)s
        FOR UPDATE OF p
        """,
        {"id": pi_id, "livemode": livemode},
    ).fetchone()


def apply_update(
    conn: psycopg.Connection[Any], pi: dict[str, Any], *, terminal: tuple[str, ...]
) -> MirroredPaymentIntent | None:
    """Insert the mirror (origin 'stripe'), or bring its state up to `pi` unless its status
    is `terminal` (or it belongs to the other mode: a live event never moves a test object).
    One exception: a success moves a canceled copy to succeeded, keeping the canceled_at
    it had (or now, if it had none) in superseded_canceled_at (migration 0017: Stripe's
    success is the truth).

    Returns the row, locked for this transaction, or None when it was left as it was,
    a duplicate or late event changing nothing included (so it writes no event). The
    row says whether it was inserted (xmax 0: no earlier version) and whether its
    status moved, compared with the version this statement's snapshot saw first.
    """
    cur = conn.cursor(row_factory=class_row(MirroredPaymentIntent))
    return cur.execute(
        """
        WITH before AS (SELECT status FROM payment_intents WHERE id = %(id)s)
        INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
            description, status, cancellation_reason, canceled_at, metadata, created, origin)
        VALUES (%(id)s, %(livemode)s, %(amount)s, %(amount_received)s, %(currency)s, %(customer)s,
            %(description)s, %(status)s, %(cancellation_reason)s, %(canceled_at)s, %(metadata)s,
            %(created)s, 'stripe')
        ON CONFLICT (id) DO UPDATE
        SET status = EXCLUDED.status, amount = EXCLUDED.amount,
            amount_received = EXCLUDED.amount_received,
            cancellation_reason = EXCLUDED.cancellation_reason,
            canceled_at = EXCLUDED.canceled_at,
            -- never null once superseded: the breach check keys on it
            superseded_canceled_at = CASE WHEN payment_intents.status = 'canceled'
                THEN coalesce(payment_intents.canceled_at, extract(epoch FROM now())::bigint)
                END
        WHERE (payment_intents.status <> ALL(%(terminal)s)
               OR (payment_intents.status = 'canceled' AND EXCLUDED.status = 'succeeded'))
          AND payment_intents.livemode = EXCLUDED.livemode
          AND (payment_intents.status, payment_intents.amount, payment_intents.amount_received,
               payment_intents.cancellation_reason, payment_intents.canceled_at)
              IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.amount, EXCLUDED.amount_received,
                                EXCLUDED.cancellation_reason, EXCLUDED.canceled_at)
        RETURNING id, livemode, amount, amount_received, currency, customer, description,
            status, cancellation_reason, canceled_at, metadata, created, superseded_canceled_at,
            xmax = 0 AS inserted,
            status IS DISTINCT FROM (SELECT status FROM before) AS status_moved
        """,
        {**pi, "metadata": Jsonb(pi["metadata"]), "terminal": list(terminal)},
    ).fetchone()


def update_state(conn: psycopg.Connection[Any], pi: dict[str, Any]) -> dict[str, Any]:
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
