-- Each published event's position on the Redis stream: a number counting published
-- events one by one, in the order they went onto the stream, with no gaps. The
-- publisher assigns them while holding its lock (service/store/outbox.py), so a
-- stream consumer that sees N + 2 after N knows it missed N + 1 and can ask for it
-- again (`tally events republish --from N+1`). A narrow table of its own, as
-- event_outbox is: a column on `events` would rewrite the wide row on the publishing
-- path. Events published before this migration have no position.
CREATE TABLE event_positions (
    position bigint PRIMARY KEY,
    event_id text NOT NULL UNIQUE
);
