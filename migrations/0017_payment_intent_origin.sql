-- Who owns the real PaymentIntent behind each copy. 'tally': created by
-- POST /v1/payment_intents, Tally's alone, so a cancel is Tally's to make. 'stripe':
-- first seen in a Stripe event or fetched from upstream Stripe, which can still collect
-- it, so with upstream configured a cancel must reach Stripe first. Rows older than
-- this column cannot be told apart and count as Stripe's: if one was Tally's, Stripe
-- refuses its cancel (no such PaymentIntent) where the caller sees it, while the other
-- guess would leave a real one free to collect unseen.
ALTER TABLE payment_intents
    ADD COLUMN origin text NOT NULL DEFAULT 'stripe' CHECK (origin IN ('tally', 'stripe'));

-- A payment_intent.succeeded for a copy Tally shows as canceled: a canceled
-- PaymentIntent cannot succeed at Stripe, so Tally's cancel never reached Stripe and
-- the money arrived. The copy moves to succeeded (Stripe's truth) and keeps here the
-- canceled_at it had; its canceled invoice payment is not credited, and the ledger
-- check reports it until its money is on an invoice (such rows are rare, hence the
-- partial index of 0030, built concurrently).
ALTER TABLE payment_intents ADD COLUMN superseded_canceled_at bigint;

-- Why a settled inbound event did what it did, when that needs an operator's eye
-- (`tally inbound list` shows it); null for the ordinary outcome of its status.
ALTER TABLE inbound_events ADD COLUMN outcome text;
