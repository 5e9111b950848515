"""Reconciliation reads: the ledger invariants, as queries returning the rows that break
them (none, normally), and the PaymentIntents whose invoice payments stayed open."""

from __future__ import annotations

import re
from typing import Any

from service.db import Conn

# Each query lists breaches; a name, the offending id and a detail per row. A
# `{column IN scope}` marks where a check can be narrowed to what changed: it reads
# TRUE in a full check, and `column = ANY(scope's ids)` in an incremental one.
_CHECKS: dict[str, str] = {
    # invoice.amount_paid = Σ amount_paid of its paid invoice payments (out-of-band
    # payments included: they are paid payment records).
    "amount_paid_matches_payments": """
        SELECT i.id, format('amount_paid=%s, paid payments sum to %s',
                            i.amount_paid, coalesce(p.total, 0)) AS detail
        FROM invoices i
        LEFT JOIN (SELECT invoice, sum(amount_paid) AS total FROM invoice_payments
                   WHERE status = 'paid' AND {invoice IN invoices} GROUP BY invoice) p
            ON p.invoice = i.id
        WHERE i.amount_paid <> coalesce(p.total, 0) AND {i.id IN invoices}
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
              WHERE status IN ('open', 'paid', 'uncollectible') AND {id IN invoices}) i
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
        WHERE ip.status = 'paid' AND pi.status <> 'succeeded' AND {ip.id IN invoice_payments}
        LIMIT 100
    """,
    # A payment record's invoice payment follows its latest attempt, in the same
    # transaction: paid once guaranteed (a record is money received only then), open
    # while initiated, canceled once failed or canceled.
    "payment_record_credited_once_guaranteed": """
        SELECT ip.id, format('invoice payment %s is %s but payment record %s is %s',
                             ip.id, ip.status, r.id, coalesce(r.outcome, 'initiated')) AS detail
        FROM invoice_payments ip JOIN payment_records r ON r.id = ip.payment_record
        WHERE ip.status <> CASE coalesce(r.outcome, 'initiated')
                               WHEN 'guaranteed' THEN 'paid'
                               WHEN 'initiated' THEN 'open'
                               ELSE 'canceled' END
          AND {ip.id IN invoice_payments}
        LIMIT 100
    """,
    # A record's refunds take back at most what it guaranteed.
    "payment_record_refunds_within_guaranteed": """
        SELECT r.id, format('outcome=%s, amount=%s, refunds sum to %s',
                            coalesce(r.outcome, 'initiated'), r.amount, f.refunded) AS detail
        FROM payment_records r
        JOIN (SELECT payment_record, sum(amount) AS refunded FROM payment_record_refunds
              WHERE {payment_record IN payment_records} GROUP BY payment_record) f
            ON f.payment_record = r.id
        WHERE (r.outcome IS DISTINCT FROM 'guaranteed' OR f.refunded > r.amount)
          AND {r.id IN payment_records}
        LIMIT 100
    """,
    # A success Stripe reported for a PaymentIntent Tally had canceled (migration 0017):
    # the money arrived, and stays a breach while it is on no invoice (an operator's call).
    # Not narrowed to what changed: such rows are rare and partly indexed, and each
    # check reports the breach again for as long as it lasts.
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
    # customer.balance = Σ its balance transactions in its default currency.
    "customer_balance_is_sum_of_transactions": """
        SELECT c.id, format('balance=%s, its %s transactions sum to %s', c.balance,
                            c.currency, coalesce(t.total, 0)) AS detail
        FROM customers c
        LEFT JOIN (SELECT customer, currency, sum(amount) AS total
                   FROM customer_balance_transactions
                   WHERE {customer IN customers}
                   GROUP BY customer, currency) t
            ON t.customer = c.id AND t.currency = c.currency
        WHERE c.balance <> coalesce(t.total, 0) AND {c.id IN customers}
        LIMIT 100
    """,
    # The balance in each currency (invoice_credit_balance) = Σ the customer's balance
    # transactions in that currency, and a currency with transactions has a balance.
    "currency_balance_is_sum_of_its_transactions": """
        SELECT coalesce(b.customer, t.customer) AS id,
               format('%s balance=%s, transactions sum to %s', coalesce(b.currency, t.currency),
                      b.balance, t.total) AS detail
        FROM (SELECT * FROM customer_balances WHERE {customer IN customers}) b
        FULL JOIN (SELECT customer, currency, sum(amount) AS total
                   FROM customer_balance_transactions
                   WHERE {customer IN customers}
                   GROUP BY customer, currency) t
            ON t.customer = b.customer AND t.currency = b.currency
        WHERE b.balance IS DISTINCT FROM t.total
        LIMIT 100
    """,
    # Each transaction's ending_balance is its currency's balance after it, in the order
    # written.
    "balance_transactions_chain": """
        SELECT id, format('ending_balance=%s, but the transactions up to it sum to %s',
                          ending_balance, running) AS detail
        FROM (SELECT id, ending_balance,
                     sum(amount) OVER (PARTITION BY customer, currency ORDER BY seq) AS running
              FROM customer_balance_transactions WHERE {customer IN customers}) t
        WHERE ending_balance <> running
        LIMIT 100
    """,
    # Each overpaid cent is in the balance ledger once, in any currency: an invoice's
    # invoice_overpaid transactions credit its amount_overpaid, in its currency.
    "overpaid_is_in_the_balance_ledger": """
        SELECT i.id, format('amount_overpaid=%s, invoice_overpaid transactions credit %s %s',
                            i.overpaid, coalesce(t.credited, 0), i.currency) AS detail
        FROM (SELECT id, currency,
                     greatest(amount_paid - greatest(total + coalesce(starting_balance, 0), 0),
                              0) AS overpaid
              FROM invoices WHERE {id IN invoices}) i
        LEFT JOIN (SELECT invoice, currency, -sum(amount) AS credited
                   FROM customer_balance_transactions
                   WHERE type = 'invoice_overpaid' AND {invoice IN invoices}
                   GROUP BY invoice, currency) t
            ON t.invoice = i.id AND t.currency = i.currency
        WHERE coalesce(t.credited, 0) <> i.overpaid
        LIMIT 100
    """,
    # A finalized invoice left in the balance what its total did not use: its credit
    # beyond 0 (a negative total, or a credit larger than the total) stays there, and a
    # debit went into amount_due. ending_balance = min(total + starting_balance, 0).
    "ending_balance_is_what_the_total_left": """
        SELECT id, format('total=%s, starting_balance=%s, ending_balance=%s',
                          total, starting_balance, ending_balance) AS detail
        FROM invoices
        WHERE finalized_at IS NOT NULL
          AND ending_balance <> least(total + starting_balance, 0) AND {id IN invoices}
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
                     AND {invoice IN invoices}
                   GROUP BY invoice) t ON t.invoice = i.id
        WHERE i.finalized_at IS NOT NULL AND {i.id IN invoices}
          AND coalesce(t.moved, 0) <> CASE WHEN i.status = 'void' THEN 0
                                           ELSE i.ending_balance - i.starting_balance END
        LIMIT 100
    """,
}


_SCOPE = re.compile(r"\{([\w.]+) IN (\w+)\}")

# What changed since a time, from the events written with every ledger change (in
# the same transaction): the objects they carry, and what those belong to.
_CHANGED = """
    WITH changed AS (
        SELECT split_part(type, '.', 1) AS kind, data->'object' AS o
        FROM events WHERE created >= %(since)s
    ),
    changed_invoices AS (
        SELECT o->>'id' AS id FROM changed WHERE kind = 'invoice'
        UNION SELECT o->>'invoice' FROM changed WHERE kind IN ('invoice_payment', 'invoiceitem')
    ),
    changed_payments AS (
        SELECT o->>'id' AS id FROM changed WHERE kind = 'invoice_payment'
        UNION SELECT id FROM invoice_payments
        WHERE invoice IN (SELECT id FROM changed_invoices)
    )
    SELECT
        ARRAY(SELECT id FROM changed_invoices WHERE id IS NOT NULL) AS invoices,
        ARRAY(SELECT id FROM changed_payments WHERE id IS NOT NULL) AS invoice_payments,
        ARRAY(SELECT payment_record FROM invoice_payments
              WHERE id IN (SELECT id FROM changed_payments) AND payment_record IS NOT NULL)
            AS payment_records,
        ARRAY(SELECT o->>'id' FROM changed WHERE kind = 'customer'
              UNION SELECT customer FROM invoices
              WHERE id IN (SELECT id FROM changed_invoices)) AS customers
"""


def breaches(conn: Conn, *, since: int | None = None) -> list[dict[str, Any]]:
    """Every breach found, as {check, id, detail}: among everything (a full check), or
    among what events created at `since` (Unix seconds) or later changed, so that the
    check's cost follows the traffic, not the history. A change that wrote no event,
    which no code path makes, is found only by a full check.

    Each check is one consistent statement (its own snapshot), so a credit committing
    meanwhile cannot look like a breach."""
    scope: dict[str, list[str]] | None = None
    if since is not None:
        scope = conn.execute(_CHANGED, {"since": since}).fetchone()
    found: list[dict[str, Any]] = []
    for name, check in _CHECKS.items():
        if scope is None:
            rows = conn.execute(_SCOPE.sub("TRUE", check)).fetchall()
        else:
            # With parameters, a literal % (format()'s) is written %%.
            query = _SCOPE.sub(r"\1 = ANY(%(\2)s)", check.replace("%", "%%"))
            rows = conn.execute(query, scope).fetchall()
        found += [{"check": name, "id": r["id"], "detail": r["detail"]} for r in rows]
    return found


def check_watermark(conn: Conn) -> int | None:
    """When the sweeper's last ledger check started (Unix seconds); None before the first."""
    row = conn.execute("SELECT checked_from FROM ledger_check_watermark").fetchone()
    return None if row is None else int(row["checked_from"])


def set_check_watermark(conn: Conn, started: int) -> None:
    conn.execute(
        "INSERT INTO ledger_check_watermark (checked_from) VALUES (%(started)s)"
        " ON CONFLICT (singleton) DO UPDATE SET checked_from = excluded.checked_from",
        {"started": started},
    )


def take_stale_open_payment_intents(
    conn: Conn, *, older_than: int, now: int, limit: int
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
