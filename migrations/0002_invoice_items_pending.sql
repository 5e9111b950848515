-- `pending` (not yet on an invoice) as a column, so the invoice-item list can
-- filter on it with the same equality filters every list endpoint uses.
ALTER TABLE invoice_items
    ADD COLUMN pending boolean GENERATED ALWAYS AS (invoice IS NULL) STORED;
