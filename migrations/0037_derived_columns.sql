-- The columns Tally derives rather than stores, each defined here once (issue 23).
-- The store reads (and, where a view is simply updatable, writes) through these views;
-- a column no query names is never computed, and a scalar subquery runs only for the
-- rows a query returns.

-- An invoice's starting_balance: frozen at finalize (0011); until then a draft shows
-- the customer's balance now, in the invoice's currency, as Stripe does. COALESCE
-- evaluates the subquery only for drafts.
CREATE VIEW invoice_rows AS
SELECT seq, id, livemode, customer, status, currency, number, description, footer, metadata,
    auto_advance, collection_method, due_date, customer_email, customer_name, total,
    amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at, marked_uncollectible_at,
    created, ending_balance,
    coalesce(starting_balance,
             (SELECT b.balance FROM customer_balances b
              WHERE b.customer = invoices.customer AND b.currency = invoices.currency),
             0) AS starting_balance
FROM invoices;

-- An event's pending_webhooks: how many of its deliveries are still pending.
CREATE VIEW event_rows AS
SELECT seq, id, livemode, type, api_version, created, data, request_id, idempotency_key,
    (SELECT count(*) FROM webhook_deliveries d
     WHERE d.event_id = events.id AND d.status = 'pending') AS pending_webhooks
FROM events;

-- A payment record's amount_refunded: the sum of the refunds reported on it.
CREATE VIEW payment_record_rows AS
SELECT seq, id, livemode, amount, currency, customer, outcome, payment_method_type,
    payment_reference, description, initiated_at, guaranteed_at, failed_at, canceled_at,
    metadata, created,
    (SELECT coalesce(sum(f.amount), 0)::bigint FROM payment_record_refunds f
     WHERE f.payment_record = payment_records.id) AS amount_refunded
FROM payment_records;
