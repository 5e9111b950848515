-- Stripe's 2025-03-31.basil API counts out-of-band payments in amount_paid, and
-- so does Tally now: /pay records what remains as a guaranteed payment record,
-- attached and paid. Invoices marked paid out of band before that get the same
-- record here, so amount_paid = amount_due and amount_paid = Σ paid invoice
-- payments hold for every invoice (the sweeper checks them without exceptions).
-- No events: these invoices announced invoice.paid when they were marked.
WITH owed AS (
    SELECT id AS invoice, livemode, customer, currency, total - amount_paid AS amount,
           coalesce(paid_at, created) AS paid_at,
           'pr_' || replace(gen_random_uuid()::text, '-', '') AS record,
           'inpay_' || replace(gen_random_uuid()::text, '-', '') AS payment
    FROM invoices
    WHERE paid_out_of_band AND status = 'paid' AND amount_paid < total
), records AS (
    INSERT INTO payment_records (id, livemode, amount, currency, customer, outcome,
        payment_method_type, description, initiated_at, guaranteed_at, created)
    SELECT record, livemode, amount, currency, customer, 'guaranteed', 'custom',
           'Invoice ' || invoice || ' paid out of band', paid_at, paid_at, paid_at
    FROM owed
), payments AS (
    INSERT INTO invoice_payments (id, livemode, invoice, payment_record, currency,
        amount_requested, amount_paid, status, paid_at, created)
    SELECT payment, livemode, invoice, record, currency, amount, amount, 'paid', paid_at,
           paid_at
    FROM owed
)
UPDATE invoices SET amount_paid = invoices.total
FROM owed
WHERE invoices.id = owed.invoice;
