"""Lock ordering for a batch of inbound events, so batches cannot deadlock.

A batch credits many invoices in one transaction. Locking as it goes, two
batches (or a batch and an attach_payment) could take the same PaymentIntents
and invoices in opposite orders and deadlock: PostgreSQL would abort one, and
its whole batch would be redone event by event. Instead a batch takes all its
locks first, in the documented order: every PaymentIntent it names, sorted by
id, then every invoice those have open payments on, sorted by id. attach_payment
locks one PaymentIntent then its invoice, which fits the same order. The events
are then handled sorted by PaymentIntent (stable, so one PaymentIntent's events
keep their order), which also orders the inserts of PaymentIntents not yet mirrored.

A batch that names one PaymentIntent takes no locks up front: handling its events
locks that PaymentIntent (its upsert) and then its one invoice (crediting), which is
the lock order already; the two statements would cost the most common batch under
steady traffic two round trips. Nor does a batch applied set-wise (operations/
crediting.py) whose events name each PaymentIntent once: it is one round, whose
upsert locks every PaymentIntent in id order before its read of their open payments
locks their invoices in id order, then the customers of any overpayment. A batch
redone event by event, or naming a PaymentIntent twice (rounds), locks up front.
"""

from __future__ import annotations

from typing import Any

from service.db import Conn
from service.store import locks

CREDITING_TYPES = frozenset({"payment_intent.succeeded"})


def lock_in_order(
    conn: Conn, rows: list[dict[str, Any]], *, set_wise: bool = False
) -> list[dict[str, Any]]:
    """Lock what the claimed `rows` will touch, in lock order; return them in the
    order to handle them. Call inside the batch's transaction. `set_wise`: the rows
    are applied as one batch (see above), not one by one."""
    rows = sorted(rows, key=_payment_intent)
    named = [pi for row in rows if (pi := _payment_intent(row))]
    pi_ids = sorted(set(named))
    if set_wise and len(pi_ids) == len(named):
        return rows  # one round: its statements lock in order
    if len(pi_ids) > 1:
        locks.lock_payment_intents(conn, pi_ids)
        crediting = sorted(
            {pi for row in rows if row["type"] in CREDITING_TYPES and (pi := _payment_intent(row))}
        )
        if crediting:
            locks.lock_invoices_with_open_payments(conn, crediting)
    return rows


def _payment_intent(row: dict[str, Any]) -> str:
    """The PaymentIntent id a payment_intent.* event carries, or "" (malformed events
    fail later, in their own savepoint; here they simply sort first)."""
    if not str(row["type"]).startswith("payment_intent."):
        return ""
    try:
        pi_id = row["payload"]["data"]["object"]["id"]
    except (KeyError, TypeError):
        return ""
    return pi_id if isinstance(pi_id, str) else ""
