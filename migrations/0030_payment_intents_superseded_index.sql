-- tally:no-transaction
-- The ledger check of PaymentIntents that succeeded after Tally canceled them (0017)
-- reads only such rows, which are rare: a partial index, built without blocking writes.
DROP INDEX CONCURRENTLY IF EXISTS payment_intents_superseded_cancel_idx;
CREATE INDEX CONCURRENTLY IF NOT EXISTS payment_intents_superseded_cancel_idx
    ON payment_intents (id) WHERE superseded_canceled_at IS NOT NULL;
