-- Deliveries isolated per endpoint (service/operations/deliver.py says how these are used).
-- sending_until: a batch holds the endpoint until then (at most one batch in flight);
-- its value, in microseconds, is the same token its deliveries' lease carries.
-- consecutive_failures, failing_since: POSTs in a row that got no answer (timed out,
-- could not connect), and since when; circuit_open_until: no batch before then, then
-- one delivery at a time until one is answered.
ALTER TABLE webhook_endpoints
    ADD COLUMN sending_until timestamptz,
    ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN failing_since timestamptz,
    ADD COLUMN circuit_open_until timestamptz;

-- Dispatch goes endpoint by endpoint: each one's due deliveries, oldest first, without
-- reading those of endpoints that are busy or whose circuit is open.
CREATE INDEX webhook_deliveries_endpoint_due_idx ON webhook_deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending';
