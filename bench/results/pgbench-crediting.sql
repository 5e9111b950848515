\set now 1796609330
SELECT nextval('bench_batches') AS b \gset
\set lo :b * 50 + 1
\set hi :lo + 49
BEGIN;
SELECT id, type, payload, attempts
FROM inbound_events
WHERE status = 'pending' AND next_attempt_at <= now() AND seq BETWEEN :lo::bigint AND :hi::bigint
ORDER BY seq
LIMIT 50
FOR UPDATE SKIP LOCKED;
SELECT id FROM payment_intents WHERE id = ANY(ARRAY(SELECT 'pi_G' || g FROM generate_series(:lo::int, :hi::int) AS g)) ORDER BY id FOR UPDATE;
SELECT i.id FROM invoices i
WHERE i.id IN (SELECT ip.invoice FROM invoice_payments ip
               WHERE ip.payment_intent = ANY(ARRAY(SELECT 'pi_G' || g FROM generate_series(:lo::int, :hi::int) AS g)) AND ip.status = 'open')
ORDER BY i.id
FOR UPDATE OF i;
SAVEPOINT batch;
\set k :lo + 0

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 1

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 2

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 3

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 4

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 5

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 6

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 7

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 8

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 9

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 10

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 11

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 12

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 13

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 14

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 15

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 16

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 17

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 18

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 19

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 20

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 21

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 22

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 23

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 24

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 25

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 26

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 27

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 28

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 29

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 30

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 31

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 32

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 33

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 34

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 35

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 36

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 37

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 38

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 39

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 40

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 41

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 42

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 43

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 44

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 45

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 46

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 47

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 48

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
\set k :lo + 49

INSERT INTO payment_intents (id, livemode, amount, amount_received, currency, customer,
    description, status, cancellation_reason, canceled_at, metadata, created)
VALUES ('pi_G' || :k::int, false, 1299, 1299, 'usd', 'cus_G' || :k::int, NULL, 'succeeded',
    NULL, NULL, '{}'::jsonb, :now::bigint)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, amount = EXCLUDED.amount,
    amount_received = EXCLUDED.amount_received,
    cancellation_reason = EXCLUDED.cancellation_reason, canceled_at = EXCLUDED.canceled_at
WHERE payment_intents.status <> ALL('{succeeded,canceled}')
  AND payment_intents.livemode = EXCLUDED.livemode
RETURNING id, livemode, amount, amount_received, currency, customer, description,
    status, cancellation_reason, canceled_at, metadata, created;
SELECT id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance,
    (SELECT coalesce(json_agg(item ORDER BY item.seq DESC), '[]')
     FROM (SELECT seq, id, line_id, livemode, customer, invoice, amount, unit_amount, quantity,
    currency, description, metadata, created
           FROM invoice_items WHERE invoice = invoices.id
           ORDER BY seq DESC LIMIT 11) item) AS line_rows,
    p.*
FROM (SELECT id, livemode, invoice, payment_intent, payment_record, currency,
    amount_requested, amount_paid, status, paid_at, canceled_at, created FROM invoice_payments
      WHERE payment_intent = 'pi_G' || :k::int AND status = 'open') p (p_id, p_livemode,
      p_invoice, p_payment_intent, p_payment_record, p_currency, p_amount_requested,
      p_amount_paid, p_status, p_paid_at, p_canceled_at, p_created)
JOIN invoices ON invoices.id = p.p_invoice AND invoices.livemode = p.p_livemode
FOR UPDATE OF invoices;
WITH paid AS (
    UPDATE invoice_payments
    SET status = 'paid', amount_paid = 1299, paid_at = :now::bigint
    WHERE id = 'inpay_G' || :k::int AND invoice = 'in_G' || :k::int AND status = 'open'
    RETURNING invoice, amount_paid AS credited
)
UPDATE invoices
SET amount_paid = invoices.amount_paid + paid.credited,
    status = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN 'paid' ELSE invoices.status END,
    paid_at = CASE
        WHEN invoices.status = ANY('{open,uncollectible}')
            AND invoices.amount_paid + paid.credited
                >= greatest(invoices.total + invoices.starting_balance, 0)
        THEN :now::bigint ELSE invoices.paid_at END,
    paid_out_of_band = invoices.paid_out_of_band OR false
FROM paid
WHERE invoices.id = paid.invoice
RETURNING id, livemode, customer, status, currency, number, description, footer,
    metadata, auto_advance, collection_method, due_date, customer_email, customer_name,
    total, amount_paid, paid_out_of_band, finalized_at, paid_at, voided_at,
    marked_uncollectible_at, created, ending_balance, starting_balance;
WITH event AS (
    INSERT INTO events (id, livemode, type, api_version, created, data,
                        request_id, idempotency_key)
    SELECT 'evt_G' || :lo::int + i || '_' || n, false, type, '2026-10-28.endive',
           :now::bigint, data::json, NULL, NULL
    FROM generate_series(0, 49) AS i, (VALUES (1, 'invoice_payment.paid', :data1), (2, 'invoice.updated', :data2), (3, 'invoice.paid', :data3), (4, 'invoice.payment_succeeded', :data4)) AS t (n, type, data)
    ORDER BY i, n
    RETURNING seq, id, livemode, type
),
queued AS (
    INSERT INTO event_outbox (seq, event_id) SELECT seq, id FROM event
)
INSERT INTO webhook_deliveries (event_id, endpoint_id)
SELECT event.id, e.id
FROM event
JOIN webhook_endpoints e ON e.livemode = event.livemode
WHERE e.status = 'enabled' AND NOT e.deleted
  AND e.enabled_events && ARRAY['*', event.type];
RELEASE SAVEPOINT batch;
UPDATE inbound_events e
SET status = v.status,
    attempts = e.attempts + 1,
    last_error = v.error,
    processed_at = CASE WHEN v.status = 'pending' THEN NULL ELSE now() END,
    next_attempt_at = CASE WHEN v.status = 'pending'
        THEN now() + make_interval(secs => v.retry_in) ELSE e.next_attempt_at END
FROM unnest(ARRAY(SELECT 'evt_G' || g FROM generate_series(:lo::int, :hi::int) AS g), array_fill('processed'::text, ARRAY[50]),
            array_fill(NULL::text, ARRAY[50]), array_fill(0::float8, ARRAY[50]))
     AS v (id, status, error, retry_in)
WHERE e.id = v.id;
COMMIT;
