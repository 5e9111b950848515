-- The Request-Id of the request that produced a stored idempotent response, so a
-- replay can name it (Stripe's Original-Request header).
ALTER TABLE idempotency_keys ADD COLUMN request_id text;
