-- Customer credit balance, as Stripe keeps it: an immutable ledger of
-- customer_balance_transactions (negative = credit to the customer) whose sum is
-- customers.balance, in the customer's one currency (set by its first transaction).
-- Invoices freeze at finalize the balance they started from and what it ended at.

ALTER TABLE customers
    ADD COLUMN balance bigint NOT NULL DEFAULT 0,
    ADD COLUMN currency text CHECK (currency ~ '^[a-z]{3}$'),
    ADD CONSTRAINT customers_balance_has_currency CHECK (balance = 0 OR currency IS NOT NULL);

CREATE TABLE customer_balance_transactions (
    seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id             text PRIMARY KEY CHECK (id LIKE 'cbtxn\_%'),
    livemode       boolean NOT NULL,
    customer       text NOT NULL REFERENCES customers (id),
    type           text NOT NULL CHECK (type IN ('adjustment', 'initial', 'invoice_overpaid',
                                                 'applied_to_invoice', 'unapplied_from_invoice')),
    amount         bigint NOT NULL CHECK (amount <> 0),
    currency       text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    -- The customer's balance once this transaction is added.
    ending_balance bigint NOT NULL,
    invoice        text REFERENCES invoices (id),
    description    text,
    metadata       jsonb NOT NULL DEFAULT '{}',
    created        bigint NOT NULL,
    CHECK ((invoice IS NULL) = (type IN ('adjustment', 'initial')))
);
CREATE INDEX customer_balance_transactions_customer_idx
    ON customer_balance_transactions (customer, seq);
-- An invoice takes from the balance once (finalize) and gives back once (void).
CREATE UNIQUE INDEX customer_balance_transactions_invoice_move_key
    ON customer_balance_transactions (invoice, type)
    WHERE type IN ('applied_to_invoice', 'unapplied_from_invoice');

-- The ledger is only appended to: a transaction's notes (description, metadata) may
-- change, nothing else, and none is ever deleted.
CREATE FUNCTION customer_balance_transactions_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
        OR (NEW.id, NEW.livemode, NEW.customer, NEW.type, NEW.amount, NEW.currency,
            NEW.ending_balance, NEW.invoice, NEW.created)
        IS DISTINCT FROM (OLD.id, OLD.livemode, OLD.customer, OLD.type, OLD.amount,
            OLD.currency, OLD.ending_balance, OLD.invoice, OLD.created)
    THEN
        RAISE EXCEPTION 'customer balance transaction % is immutable', OLD.id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER customer_balance_transactions_immutable
    BEFORE UPDATE OR DELETE ON customer_balance_transactions
    FOR EACH ROW EXECUTE FUNCTION customer_balance_transactions_immutable();

-- Null until finalize; invoices finalized before balances existed applied none.
ALTER TABLE invoices
    ADD COLUMN starting_balance bigint,
    ADD COLUMN ending_balance bigint;
UPDATE invoices SET starting_balance = 0, ending_balance = 0 WHERE finalized_at IS NOT NULL;
ALTER TABLE invoices ADD CONSTRAINT invoices_balance_frozen_at_finalize CHECK (
    (starting_balance IS NULL) = (finalized_at IS NULL)
    AND (ending_balance IS NULL) = (finalized_at IS NULL));

-- Overpayments made before this migration go to the balance too, so every overpaid
-- cent is in the ledger once. A customer's currency is that of its first overpaid
-- invoice; an overpayment in another currency has no place in a one-currency balance
-- (as from now on).
WITH overpaid AS (
    SELECT id AS invoice, livemode, customer, currency, amount_paid - total AS credit,
           coalesce(paid_at, created) AS created, seq,
           first_value(currency) OVER (PARTITION BY customer ORDER BY seq) AS customer_currency
    FROM invoices
    WHERE amount_paid > total
), credited AS (
    SELECT *, -sum(credit) OVER (PARTITION BY customer ORDER BY seq) AS ending_balance
    FROM overpaid
    WHERE currency = customer_currency
), written AS (
    INSERT INTO customer_balance_transactions (id, livemode, customer, type, amount, currency,
        ending_balance, invoice, created)
    SELECT 'cbtxn_' || replace(gen_random_uuid()::text, '-', ''), livemode, customer,
           'invoice_overpaid', -credit, currency, ending_balance, invoice, created
    FROM credited
    ORDER BY customer, seq  -- so each customer's transactions chain in seq order
)
UPDATE customers SET balance = totals.balance, currency = totals.currency
FROM (SELECT customer, min(currency) AS currency, -sum(credit) AS balance
      FROM credited GROUP BY customer) totals
WHERE customers.id = totals.customer;
