"""Payments reported to Tally (payment records): their latest attempt's outcome, and
the refunds reported on them. Records are read through the view payment_record_rows
(migration 0037), which sums each one's refunds as `amount_refunded`."""

from __future__ import annotations

import functools
from typing import Any

from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from service.db import Conn
from service.domain.ledger import LockedPaymentRecord

# The columns every query returning payment records selects, from the view
# payment_record_rows (get_for_update adds the invoice it is attached to).
COLUMNS = sql.SQL("""
    id, livemode, amount, currency, customer, outcome, payment_method_type,
    payment_reference, description, initiated_at, guaranteed_at, failed_at,
    canceled_at, metadata, created, amount_refunded""")


@functools.cache
def _with_columns(query: str) -> bytes:
    """`query` with {columns} filled in, composed once per query."""
    return sql.SQL(query).format(columns=COLUMNS).as_bytes(None)


def insert(conn: Conn, record: dict[str, Any]) -> dict[str, Any]:
    (row,) = conn.execute(
        _with_columns(
            """
            INSERT INTO payment_record_rows (id, livemode, amount, currency, customer, outcome,
                payment_method_type, payment_reference, description, initiated_at, guaranteed_at,
                failed_at, canceled_at, metadata, created)
            VALUES (%(id)s, %(livemode)s, %(amount)s, %(currency)s, %(customer)s, %(outcome)s,
                %(payment_method_type)s, %(payment_reference)s, %(description)s, %(initiated_at)s,
                %(guaranteed_at)s, %(failed_at)s, %(canceled_at)s, %(metadata)s, %(created)s)
            RETURNING {columns}
            """
        ),
        {**record, "metadata": Jsonb(record["metadata"])},
    ).fetchall()
    return row


def get(conn: Conn, record_id: str, livemode: bool) -> dict[str, Any] | None:
    return conn.execute(
        _with_columns(
            """
            SELECT {columns}
            FROM payment_record_rows WHERE id = %(id)s AND livemode = %(livemode)s
            """
        ),
        {"id": record_id, "livemode": livemode},
    ).fetchone()


def get_for_update(conn: Conn, record_id: str, livemode: bool) -> LockedPaymentRecord | None:
    """The payment record, locked, with `attached_to` (the invoice it is attached to)
    and `amount_refunded` (its refunds are written under this lock).

    Two statements: the lock first, then the read. Under READ COMMITTED one statement
    reads with the snapshot it took before waiting for the lock, so a joined attach or
    refund that committed while it waited would be missed. Seen in
    tests/test_payment_records.py: an attach racing a guaranteed report left the
    invoice payment open and uncredited, and six concurrent refunds of 200 took back
    1200 of a 500 payment.
    """
    locked = conn.execute(
        """
        SELECT id FROM payment_records
        WHERE id = %(id)s AND livemode = %(livemode)s
        FOR UPDATE
        """,
        {"id": record_id, "livemode": livemode},
    ).fetchone()
    if locked is None:
        return None
    cur = conn.cursor(row_factory=class_row(LockedPaymentRecord))
    return cur.execute(
        """
        SELECT r.id, r.livemode, r.amount, r.currency, r.customer, r.outcome,
            r.payment_method_type, r.payment_reference, r.description, r.initiated_at,
            r.guaranteed_at, r.failed_at, r.canceled_at, r.metadata, r.created,
            r.amount_refunded, ip.invoice AS attached_to
        FROM payment_record_rows r
        LEFT JOIN invoice_payments ip ON ip.payment_record = r.id
        WHERE r.id = %(id)s
        """,
        {"id": record_id},
    ).fetchone()


def update(conn: Conn, record: dict[str, Any]) -> dict[str, Any]:
    """Write what a report may change (the latest attempt, description, customer,
    metadata) of a record the caller has locked; return the record after."""
    (row,) = conn.execute(
        _with_columns(
            """
            UPDATE payment_record_rows
            SET outcome = %(outcome)s, initiated_at = %(initiated_at)s,
                guaranteed_at = %(guaranteed_at)s, failed_at = %(failed_at)s,
                canceled_at = %(canceled_at)s, payment_method_type = %(payment_method_type)s,
                description = %(description)s, customer = %(customer)s, metadata = %(metadata)s
            WHERE id = %(id)s
            RETURNING {columns}
            """
        ),
        {**record, "metadata": Jsonb(record["metadata"])},
    ).fetchall()
    return row


def refund_reference_taken(conn: Conn, livemode: bool, reference: str) -> bool:
    return (
        conn.execute(
            """
            SELECT 1 FROM payment_record_refunds
            WHERE livemode = %(livemode)s AND refund_reference = %(reference)s
            """,
            {"livemode": livemode, "reference": reference},
        ).fetchone()
        is not None
    )


def insert_refund(conn: Conn, refund: dict[str, Any]) -> None:
    """Record a refund; raises UniqueViolation if its refund_reference is taken."""
    conn.execute(
        """
        INSERT INTO payment_record_refunds (payment_record, livemode, amount, currency,
            refund_reference, initiated_at, refunded_at, created)
        VALUES (%(payment_record)s, %(livemode)s, %(amount)s, %(currency)s,
            %(refund_reference)s, %(initiated_at)s, %(refunded_at)s, %(created)s)
        """,
        refund,
    )
