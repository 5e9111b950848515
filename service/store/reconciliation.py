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
    # status = paid ⇔ amount_remaining = 0, for finalized, non-void invoices (an open
    # invoice with nothing due owes nothing and is left out). amount_due is the total
    # with the customer's balance applied at finalize.
    "paid_iff_nothing_remains": """
        SELECT id, format('status=%s, amount_due=%s, amount_paid=%s',
                          status, amount_due, amount_paid) AS detail
        FROM (SELECT id, status, amount_paid,
                     greatest(total + starting_balance, 0) AS amount_due
              FROM invoices
              WHERE status IN ('open', 'paid', 'uncollectible')) i
        WHERE (status = 'paid') <> (amount_paid >= amount_due)
          AND NOT (status <> 'paid' AND amount_due = 0 AND amount_paid = 0)
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
    # A success Stripe reported for a PaymentIntent Tally had canceled (migration 0017):
    # the money arrived, and stays a breach while it is on no invoice (an operator's call).
    "canceled_payment_intent_succeeded": """
        SELECT pi.id, format('succeeded at Stripe after Tally canceled it at %s, so the '
                             'cancel never reached Stripe; %s', pi.superseded_canceled_at,
                             CASE WHEN ip.id IS NULL THEN 'it is attached to no invoice'
                                  ELSE format('its invoice payment %s of invoice %s is %s',
                                              ip.id, ip.invoice, ip.status) END) AS detail
        FROM payment_intents pi
        LEFT JOIN invoice_payments ip ON ip.payment_intent = pi.id
        WHERE pi.superseded_canceled_at IS NOT NULL AND ip.status IS DISTINCT FROM 'paid'
        LIMIT 100
    """,
    # customer.balance = Σ its balance transactions.
    "customer_balance_is_sum_of_transactions": """
        SELECT c.id, format('balance=%s, transactions sum to %s',
                            c.balance, coalesce(t.total, 0)) AS detail
        FROM customers c
        LEFT JOIN (SELECT customer, sum(amount) AS total FROM customer_balance_transactions
                   GROUP BY customer) t ON t.customer = c.id
        WHERE c.balance <> coalesce(t.total, 0)
        LIMIT 100
    """,
    # Each transaction's ending_balance is the balance after it, in the order written.
    "balance_transactions_chain": """
        SELECT id, format('ending_balance=%s, but the transactions up to it sum to %s',
                          ending_balance, running) AS detail
        FROM (SELECT id, ending_balance,
                     sum(amount) OVER (PARTITION BY customer ORDER BY seq) AS running
              FROM customer_balance_transactions) t
        WHERE ending_balance <> running
        LIMIT 100
    """,
    # Each overpaid cent is in the balance ledger once: an invoice's invoice_overpaid
    # transactions credit its amount_overpaid. (A one-currency balance cannot hold an
    # overpayment in another currency; that stays on the invoice.)
    "overpaid_is_in_the_balance_ledger": """
        SELECT i.id, format('amount_overpaid=%s, invoice_overpaid transactions credit %s',
                            i.overpaid, coalesce(t.credited, 0)) AS detail
        FROM (SELECT id, customer, currency,
                     greatest(amount_paid - greatest(total + coalesce(starting_balance, 0), 0),
                              0) AS overpaid
              FROM invoices) i
        JOIN customers c ON c.id = i.customer
        LEFT JOIN (SELECT invoice, -sum(amount) AS credited FROM customer_balance_transactions
                   WHERE type = 'invoice_overpaid' GROUP BY invoice) t ON t.invoice = i.id
        WHERE coalesce(t.credited, 0) <> CASE WHEN c.currency <> i.currency THEN 0
                                              ELSE i.overpaid END
        LIMIT 100
    """,
    # What a finalized invoice took from the balance (ending - starting) is what its
    # applied_to_invoice transaction moved, and a void invoice gave it back.
    "balance_applied_once": """
        SELECT i.id, format('status=%s, took %s from the balance, its transactions moved %s',
                            i.status, i.ending_balance - i.starting_balance,
                            coalesce(t.moved, 0)) AS detail
        FROM invoices i
        LEFT JOIN (SELECT invoice, sum(amount) AS moved FROM customer_balance_transactions
                   WHERE type IN ('applied_to_invoice', 'unapplied_from_invoice')
                   GROUP BY invoice) t ON t.invoice = i.id
        WHERE i.finalized_at IS NOT NULL
          AND coalesce(t.moved, 0) <> CASE WHEN i.status = 'void' THEN 0
                                           ELSE i.ending_balance - i.starting_balance END
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


def take_stale_open_payment_intents(
    conn: psycopg.Connection[Any], *, older_than: int, now: int, limit: int
) -> list[dict[str, Any]]:
    """PaymentIntents whose invoice payment has been open for `older_than` seconds and
    not asked about upstream for as long, least recently asked first; marked as asked
    now, in the same statement, so concurrent sweepers take different ones."""
    return conn.execute(
        """
        UPDATE invoice_payments SET refetched_at = %(now)s
        WHERE id IN (
            SELECT id FROM invoice_payments
            WHERE status = 'open' AND payment_intent IS NOT NULL
              AND created <= %(cutoff)s
              AND (refetched_at IS NULL OR refetched_at <= %(cutoff)s)
            ORDER BY refetched_at NULLS FIRST, created
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED)
        RETURNING payment_intent AS id, livemode
        """,
        {"now": now, "cutoff": now - older_than, "limit": limit},
    ).fetchall()
