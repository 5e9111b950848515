-- The queue of events not yet published, apart from the events themselves.
-- Marking a wide events row published rewrote it (its JSON snapshot included) and
-- all four of its indexes, once per event, on the crediting hot path; inserting
-- and deleting a narrow row is a fraction of that.

CREATE TABLE event_outbox (
    -- The event's seq: publishing follows it, so the stream keeps the outbox's order.
    seq      bigint PRIMARY KEY,
    event_id text NOT NULL UNIQUE REFERENCES events (id)
);

INSERT INTO event_outbox (seq, event_id)
SELECT seq, id FROM events WHERE published_at IS NULL;

DROP INDEX events_unpublished_idx;
ALTER TABLE events DROP COLUMN published_at;
