-- The event pipeline's bookkeeping: when a pending inbound event may be tried
-- again (backoff after transient errors), and the indexes the sweeper, the
-- metrics and the endpoint-disabling rule read.

ALTER TABLE inbound_events
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();

-- Failed events are rare; counting and listing them must not scan the table.
CREATE INDEX inbound_events_failed_idx ON inbound_events (seq) WHERE status = 'failed';

-- "Has this endpoint had any success since …": disabling an endpoint that has
-- failed for the whole retry schedule.
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, delivered_at);
