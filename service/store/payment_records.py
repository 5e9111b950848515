"""Out-of-band payments reported to Tally."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from service.domain.ledger import LockedPaymentRecord


def insert(conn: psycopg.Connection[Any], record: dict[str, Any]) -> dict[str, Any]:
    (row,) = conn.execute(
        """
        INSERT INTO payment_records (id, livemode, amount, currency, customer, outcome,
            payment_method_type, payment_reference, description, initiated_at, guaranteed_at,
            failed_at, metadata, created)
        VALUES (%(id)s, %(livemode)s, %(amount)s, %(currency)s, %(customer)s, %(outcome)s,
            %(payment_method_type)s, %(payment_reference)s, %(description)s, %(initiated_at)s,
            %(guaranteed_at)s, %(failed_at)s, %(metadata)s, %(created)s)
        RETURNING id, livemode, amount, currency, customer, outcome, payment_method_type,
            payment_reference, description, initiated_at, guaranteed_at, failed_at, metadata,
            created
        """,
        {**record, "metadata": Jsonb(record["metadata"])},
    ).fetchall()
    return row


def get(conn: psycopg.Connection[Any], record_id: str, livemode: bool) -> dict[str, Any] | None:
    return conn.execute(
        """
        SELECT id, livemode, amount, currency, customer, outcome, payment_method_type,
            payment_reference, description, initiated_at, guaranteed_at, failed_at, metadata,
            created
        FROM payment_records WHERE id = %(id)s AND livemode = %(livemode)s
        """,
        {"id": record_id, "livemode": livemode},
    ).fetchone()


def get_for_update(
    conn: psycopg.Connection[Any], record_id: str, livemode: bool
) -> LockedPaymentRecord | None:
    """The payment record, locked, with `attached_to`: the invoice it is attached to."""
    cur = conn.cursor(row_factory=class_row(LockedPaymentRecord))
    return cur.execute(
        """
        SELECT r.id, r.livemode, r.amount, r.currency, r.customer, r.outcome,
               ip.invoice AS attached_to
        FROM payment_records r
        LEFT JOIN invoice_payments ip ON ip.payment_record = r.id
        WHERE r.id = %(id)s AND r.livemode = %(livemode)s
        FOR UPDATE OF r
        """,
        {"id": record_id, "livemode": livemode},
    ).fetchone()
