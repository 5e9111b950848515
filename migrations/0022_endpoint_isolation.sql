-- tally:no-transaction
-- Deliveries isolated per endpoint (service/operations/deliver.py says how these are
-- used). sending_until: a batch holds the endpoint until then (at most one batch in
-- flight); in microseconds it is the token its deliveries' lease carries.
-- consecutive_failures, failing_since: POSTs in a row that got no answer (timed out,
-- could not connect), and since when; circuit_open_until: no batch before then, then
-- one delivery at a time until one is answered.
-- Statement by statement, each safe to run again: a failed run is retried whole.
ALTER TABLE webhook_endpoints
    ADD COLUMN IF NOT EXISTS sending_until timestamptz,
    ADD COLUMN IF NOT EXISTS consecutive_failures bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS failing_since timestamptz,
    ADD COLUMN IF NOT EXISTS circuit_open_until timestamptz;

-- Dispatch goes endpoint by endpoint: each one's due deliveries, oldest first, without
-- reading those of endpoints that are busy or whose circuit is open. Built
-- concurrently, since publishing keeps writing deliveries.
DROP INDEX CONCURRENTLY IF EXISTS webhook_deliveries_endpoint_due_idx;
CREATE INDEX CONCURRENTLY IF NOT EXISTS webhook_deliveries_endpoint_due_idx
    ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
