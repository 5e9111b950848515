-- A payment record is money received only once its attempt is guaranteed. Stripe:
-- "You may report a Payment Record as it is initialized and later report updates
-- through the other report_* methods". `outcome` is that of the record's latest
-- payment attempt: NULL while it is initiated, then guaranteed, failed or canceled
-- (Stripe's 2026-09-30.endive added `canceled`). Existing rows are all terminal.
-- Both drops widen what a row may hold (older code writes only what it wrote before).
-- squawk-ignore ban-drop-constraint
ALTER TABLE payment_records DROP CONSTRAINT payment_records_outcome_check;
-- squawk-ignore ban-drop-not-null
ALTER TABLE payment_records ALTER COLUMN outcome DROP NOT NULL;
-- NOT VALID: no scan under the lock. Every existing row passed the stricter check
-- this replaces, so there is nothing to validate; new and updated rows are checked.
ALTER TABLE payment_records ADD CONSTRAINT payment_records_outcome_check
    CHECK (outcome IN ('guaranteed', 'failed', 'canceled')) NOT VALID;
ALTER TABLE payment_records ADD COLUMN canceled_at bigint;

-- Refunds reported on a guaranteed record (report_refund). They are recorded on the
-- record (amount_refunded) and move nothing on its invoice: in Stripe a refund does
-- not reopen a paid invoice. Stripe: refund_reference "must be unique across all
-- refunds".
CREATE TABLE payment_record_refunds (
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    payment_record   text NOT NULL REFERENCES payment_records (id),
    livemode         boolean NOT NULL,
    amount           bigint NOT NULL CHECK (amount > 0),
    currency         text NOT NULL,
    refund_reference text,
    initiated_at     bigint,
    refunded_at      bigint NOT NULL,
    created          bigint NOT NULL,
    CONSTRAINT payment_record_refunds_reference_key UNIQUE (livemode, refund_reference)
);
CREATE INDEX payment_record_refunds_record_idx ON payment_record_refunds (payment_record);
