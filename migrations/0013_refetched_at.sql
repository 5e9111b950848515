-- When the sweeper last asked upstream Stripe about an open invoice payment's
-- PaymentIntent. The sweeper takes the least recently asked first, so PaymentIntents
-- that upstream keeps failing on (unknown there, say) go to the back of the queue
-- instead of filling every batch and starving the rest (seen in the test suite: 20
-- such PaymentIntents blocked every later one).
ALTER TABLE invoice_payments ADD COLUMN refetched_at bigint;

CREATE INDEX invoice_payments_refetch_idx ON invoice_payments (refetched_at NULLS FIRST, created)
    WHERE status = 'open' AND payment_intent IS NOT NULL;
