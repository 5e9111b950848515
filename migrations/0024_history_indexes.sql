-- tally:no-transaction
-- Pruning walks history oldest first, a bounded batch at a time
-- (service/operations/prune.py): with these indexes each batch is a range scan that
-- stops at its cutoff, so its cost follows what it deletes, not the table's size.
-- Built concurrently, since intake and crediting keep writing both tables.
DROP INDEX CONCURRENTLY IF EXISTS events_created_idx;
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_created_idx ON events (created);
DROP INDEX CONCURRENTLY IF EXISTS inbound_events_settled_idx;
CREATE INDEX CONCURRENTLY IF NOT EXISTS inbound_events_settled_idx ON inbound_events (processed_at)
    WHERE status IN ('processed', 'ignored');
