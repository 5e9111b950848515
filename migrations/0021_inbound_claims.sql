-- How many times a pending inbound event was claimed since it last settled. A worker
-- adds one, and commits it, before the batch runs; settling resets it. An event whose
-- processing kills its worker (the process, not the transaction: nothing else would
-- count it) is claimed again and again without settling, so after a few claims it is
-- quarantined as `failed` instead of ending one more worker (operations/process_inbound.py).
-- A constant default: no table rewrite (PostgreSQL 11+).
ALTER TABLE inbound_events ADD COLUMN claims integer NOT NULL DEFAULT 0;
