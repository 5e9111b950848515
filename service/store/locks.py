"""A batch's row locks, taken up front in the documented order (see store/__init__.py).

Each statement locks its rows sorted by id (ORDER BY runs before FOR UPDATE), so
two transactions that lock overlapping sets through these never wait on each
other in a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.db import Conn


def lock_payment_intents(conn: Conn, pi_ids: Sequence[str]) -> None:
    """Lock the mirrored PaymentIntents among `pi_ids`, in id order."""
    conn.execute(
        "SELECT id FROM payment_intents WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE",
        {"ids": list(pi_ids)},
    )


def lock_invoices_with_open_payments(conn: Conn, pi_ids: Sequence[str]) -> None:
    """Lock, in id order, the invoices that any of `pi_ids` has an open payment on
    (those that crediting them will lock). Call holding the PaymentIntents' locks,
    which keep those payments from changing."""
    conn.execute(
        """
        SELECT i.id FROM invoices i
        WHERE i.id IN (SELECT ip.invoice FROM invoice_payments ip
                       WHERE ip.payment_intent = ANY(%(ids)s) AND ip.status = 'open')
        ORDER BY i.id
        FOR UPDATE OF i
        """,
        {"ids": list(pi_ids)},
    )
