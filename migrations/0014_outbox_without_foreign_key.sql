-- The outbox row is written by the same statement as its event (store/events.py) and
-- deleted once published, so the foreign key proved nothing, and it cost every event
-- a lookup and a row lock on `events` inside the crediting transaction. Profiled on
-- a backlog it was the largest single cost of a credit: a third of its time, worse
-- while `events` was new and its cached check plan a sequential scan.
ALTER TABLE event_outbox DROP CONSTRAINT event_outbox_event_id_fkey;
