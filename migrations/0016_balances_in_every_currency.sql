-- Negative invoice items are credits (Stripe: "Passing in a negative amount will reduce
-- the amount_due on the invoice"), so an invoice's total may be below zero: the guarantee
-- this constraint gave is the one being withdrawn (amount_due stays >= 0, computed).
-- squawk-ignore ban-drop-constraint
ALTER TABLE invoices DROP CONSTRAINT invoices_total_check;

-- The customer balance holds every currency, as Stripe's invoice_credit_balance does:
-- one row per currency the customer has balance transactions in, each the sum of those
-- transactions (negative = credit). customers.balance stays the balance in the
-- customer's default currency (customers.currency, set by its first transaction),
-- written by the same statement as this row (store/balance_transactions.add).
CREATE TABLE customer_balances (
    customer text   NOT NULL REFERENCES customers (id),
    currency text   NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    balance  bigint NOT NULL,
    PRIMARY KEY (customer, currency)
);

-- A one-currency balance (0011) could not take an overpayment in another currency; it
-- stayed on the invoice only. Credit those cents to their own currency now, so every
-- overpaid cent is in the ledger once, chained after the currency's transactions so far.
WITH uncredited AS (
    SELECT i.id AS invoice, i.livemode, i.customer, i.currency, i.seq,
           coalesce(i.paid_at, i.created) AS created,
           greatest(i.amount_paid - greatest(i.total + coalesce(i.starting_balance, 0), 0), 0)
               - coalesce(t.credited, 0) AS credit
    FROM invoices i
    LEFT JOIN (SELECT invoice, -sum(amount) AS credited FROM customer_balance_transactions
               WHERE type = 'invoice_overpaid' GROUP BY invoice) t ON t.invoice = i.id
), credited AS (
    SELECT u.*,
           coalesce((SELECT sum(amount) FROM customer_balance_transactions b
                     WHERE b.customer = u.customer AND b.currency = u.currency), 0)
           - sum(u.credit) OVER (PARTITION BY u.customer, u.currency ORDER BY u.seq)
               AS ending_balance
    FROM uncredited u
    WHERE u.credit > 0
)
INSERT INTO customer_balance_transactions (id, livemode, customer, type, amount, currency,
    ending_balance, invoice, created)
SELECT 'cbtxn_' || replace(gen_random_uuid()::text, '-', ''), livemode, customer,
       'invoice_overpaid', -credit, currency, ending_balance, invoice, created
FROM credited
ORDER BY customer, currency, seq;  -- so each currency's transactions chain in seq order

-- A customer whose first transaction is one of those takes its currency, and its
-- balance in it.
UPDATE customers SET currency = first.currency,
    balance = (SELECT sum(amount) FROM customer_balance_transactions t
               WHERE t.customer = customers.id AND t.currency = first.currency)
FROM (SELECT DISTINCT ON (customer) customer, currency FROM customer_balance_transactions
      ORDER BY customer, seq) first
WHERE customers.id = first.customer AND customers.currency IS NULL;

INSERT INTO customer_balances (customer, currency, balance)
SELECT customer, currency, sum(amount) FROM customer_balance_transactions
GROUP BY customer, currency;
