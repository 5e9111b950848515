-- Invoice numbers unique by construction. The prefix was 8 hex characters of a hash
-- of the customer id, and `number` is globally unique: past ~77,000 customers two
-- customers' first invoices collided and finalize answered a 500. Now each customer
-- stores its own `invoice_prefix`, unique across customers, and the next number of
-- its sequence (Stripe's customer has both): a number is PREFIX-0001, never another
-- customer's.

ALTER TABLE customers
    ADD COLUMN invoice_prefix text,
    ADD COLUMN next_invoice_sequence integer NOT NULL DEFAULT 1
        CHECK (next_invoice_sequence >= 1);

-- Existing customers keep the prefix their numbers already carry and continue their
-- sequence. Where two shared a hash prefix (at most one of them can have numbered
-- invoices), the others get a suffix no 8-hex prefix has: 'X' and their rank.
UPDATE customers c
SET invoice_prefix = CASE WHEN r.rank = 1 THEN r.prefix ELSE r.prefix || 'X' || r.rank END,
    next_invoice_sequence = r.numbered + 1
FROM (
    SELECT id, prefix, numbered,
           row_number() OVER (PARTITION BY prefix ORDER BY numbered DESC, seq) AS rank
    FROM (
        SELECT c2.id, c2.seq,
               upper(left(encode(sha256(convert_to(c2.id, 'UTF8')), 'hex'), 8)) AS prefix,
               (SELECT count(*) FROM invoices i
                WHERE i.customer = c2.id AND i.number IS NOT NULL) AS numbered
        FROM customers c2
    ) hashed
) r
WHERE c.id = r.id;

-- The default serves the previous version's inserts during a rolling deploy (it does
-- not name a prefix); this version always does, retrying on a clash. Drop it later.
ALTER TABLE customers
    ALTER COLUMN invoice_prefix SET DEFAULT upper(left(md5(random()::text), 8)),
    ALTER COLUMN invoice_prefix SET NOT NULL,
    ADD CONSTRAINT customers_invoice_prefix_key UNIQUE (invoice_prefix),
    ADD CONSTRAINT customers_invoice_prefix_check CHECK (invoice_prefix ~ '^[A-Z0-9]{3,12}$');
