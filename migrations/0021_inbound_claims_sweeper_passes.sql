-- How many times a pending inbound event was claimed since it last settled. A worker
-- adds one, and commits it, before the batch runs; settling resets it. An event whose
-- processing kills its worker (the process, not the transaction: nothing else would
-- count it) is claimed again and again without settling, so after a few claims it is
-- quarantined as `failed` instead of ending one more worker (operations/process_inbound.py).
-- A constant default: no table rewrite (PostgreSQL 11+).
ALTER TABLE inbound_events ADD COLUMN claims bigint NOT NULL DEFAULT 0;

-- When the sweeper last completed a pass (one row). The pass runs in whichever worker
-- took beat's task, so it is kept here, where /metrics (web) and beat's health check
-- read it: a beat that stopped scheduling, or workers that stopped running its task,
-- show as a pass growing old.
CREATE TABLE sweeper_passes (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    completed_at timestamptz NOT NULL
);
