-- Where the sweeper's ledger check got to: it checks what events created since then
-- (less a margin) changed, so its cost follows the traffic, not the whole history
-- (service/store/reconciliation.py). One row.
CREATE TABLE ledger_check_watermark (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    checked_from bigint NOT NULL
);
