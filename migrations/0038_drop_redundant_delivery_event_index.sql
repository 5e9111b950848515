-- tally:no-transaction
-- webhook_deliveries_event_idx (event_id) repeats the leading column of the unique
-- (event_id, endpoint_id) index, which serves every lookup by event (an event's
-- pending_webhooks, pruning). A delivery is inserted once and updated three times or
-- more (leased, claimed, settled), each update a new version in every index: one
-- index fewer to keep. Dropped without blocking writes.
DROP INDEX CONCURRENTLY IF EXISTS webhook_deliveries_event_idx;
