"""Reconciliation reads: the ledger invariants, as queries returning the rows that break
them (none, normally), and the PaymentIntents whose invoice payments stayed open."""

from __future__ import annotations

from typing import Any

import psycopg

# Each query lists breaches; a name, the offending id and a detail per row.
_CHECKS: dict[str, str] = {
    # invoice.amount_paid = Σ amount_paid of its paid invoice payments (out-of-band
    # payments included: they are paid payment records).
    "amount_paid_matches_payments": """
        SELECT i.id, format('amount_paid=%s, paid payments sum to %s',
                            i.amount_paid, coalesce(p.total, 0)) AS detail
        FROM invoices i
        LEFT JOIN (SELECT invoice, sum(amount_paid) AS total FROM invoice_payments
                   WHERE status = 'paid' GROUP BY invoice) p ON p.invoice = i.id
        WHERE i.amount_paid <> coalesce(p.total, 0)
        LIMIT 100
    """,
    # status = paid ⇔ amount_remaining = 0, for finalized, non-void invoices (a
    # zero-total open invoice owes nothing and is left out).
    "paid_iff_nothing_remains": """
        SELECT id, format('status=%s, total=%s, amount_paid=%s',
                          status, total, amount_paid) AS detail
        FROM invoices
        WHERE status IN ('open', 'paid', 'uncollectible')
          AND (status = 'paid') <> (amount_paid >= total)
          AND NOT (status <> 'paid' AND total = 0 AND amount_paid = 0)
        LIMIT 100
    """,
    # A paid invoice payment was credited once: never more than was asked, and a
    # PaymentIntent's payment only once it succeeded.
    "payment_intent_credited_after_success": """
        SELECT ip.id, format('invoice payment %s paid but payment_intent %s is %s',
                             ip.id, pi.id, pi.status) AS detail
        FROM invoice_payments ip JOIN payment_intents pi ON pi.id = ip.payment_intent
        WHERE ip.status = 'paid' AND pi.status <> 'succeeded'
        LIMIT 100
    """,
}


def breaches(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every breach found, as {check, id, detail}; each check is one consistent statement
    (its own snapshot), so a credit committing meanwhile cannot look like a breach."""
    found: list[dict[str, Any]] = []
    for name, query in _CHECKS.items():
        for row in conn.execute(query).fetchall():  # type: ignore[call-overload]
            found.append({"check": name, "id": row["id"], "detail": row["detail"]})
    return found


def stale_open_payment_intents(
    conn: psycopg.Connection[Any], *, older_than: int, now: int, limit: int
) -> list[dict[str, Any]]:
    """PaymentIntents whose invoice payment has been open for `older_than` seconds."""
    return conn.execute(
        """
        SELECT ip.payment_intent AS id, ip.livemode
        FROM invoice_payments ip
        WHERE ip.status = 'open' AND ip.payment_intent IS NOT NULL
          AND ip.created <= %(cutoff)s
        ORDER BY ip.created
        LIMIT %(limit)s
        """,
        {"cutoff": now - older_than, "limit": limit},
    ).fetchall()
