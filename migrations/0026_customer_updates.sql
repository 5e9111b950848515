-- Customers can be deleted and their invoice prefix changed (issue 22).
--
-- A deleted customer stays (its invoices keep their customer id, its balance ledger is
-- kept, and Stripe still retrieves it as {"id", "object", "deleted": true}); `deleted`
-- marks it so it is listed no more and billed no more.
ALTER TABLE customers ADD COLUMN deleted boolean NOT NULL DEFAULT false;

-- Every invoice prefix a customer has held, and holds. Numbers are PREFIX-NNNN and
-- invoices.number is unique: a prefix a customer left behind still numbers its past
-- invoices, so another customer taking it would collide with them at finalize. A prefix
-- is claimed here for good, by the first customer to hold it; that customer may take
-- it back (its own sequence only moves forward, so its numbers never repeat). Stripe
-- too keeps a deleted customer's prefix taken (stripe/stripe-java#1325: clearing it
-- "can cause real issues with businesses who want to guarantee those prefixes are
-- always unique").
CREATE TABLE invoice_prefixes (
    prefix   text PRIMARY KEY CHECK (prefix ~ '^[A-Z0-9]{3,12}$'),
    -- Claimed before the customer's row is written, so no foreign key.
    customer text NOT NULL
);
INSERT INTO invoice_prefixes (prefix, customer)
SELECT invoice_prefix, id FROM customers;
