-- Event snapshots are written once and read back whole, never queried inside:
-- `json` keeps the text as given, so neither the crediting transaction (parsing)
-- nor the publisher (re-serialising) pays for jsonb's binary form.
ALTER TABLE events ALTER COLUMN data TYPE json USING data::json;
