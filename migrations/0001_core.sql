-- Tally's core ledger: customers, invoice items, invoices, PaymentIntent
-- mirrors, payment records, invoice payments, events with their deliveries,
-- inbound webhook events and idempotency keys.
-- Money is bigint minor units; ids are prefixed text made in Python; `seq`
-- gives lists a stable newest-first order.

CREATE TABLE customers (
    seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id          text PRIMARY KEY CHECK (id LIKE 'cus\_%'),
    livemode    boolean NOT NULL,
    email       text,
    name        text,
    phone       text,
    description text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created     bigint NOT NULL
);

CREATE TABLE invoices (
    seq                     bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id                      text PRIMARY KEY CHECK (id LIKE 'in\_%'),
    livemode                boolean NOT NULL,
    customer                text NOT NULL REFERENCES customers (id),
    status                  text NOT NULL
        CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
    currency                text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    number                  text UNIQUE,
    description             text,
    footer                  text,
    metadata                jsonb NOT NULL DEFAULT '{}',
    auto_advance            boolean NOT NULL DEFAULT false,
    collection_method       text NOT NULL DEFAULT 'charge_automatically'
        CHECK (collection_method IN ('charge_automatically', 'send_invoice')),
    due_date                bigint,
    customer_email          text,
    customer_name           text,
    -- Frozen at finalization; kept current from the lines while a draft.
    total                   bigint NOT NULL DEFAULT 0 CHECK (total >= 0),
    amount_paid             bigint NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    paid_out_of_band        boolean NOT NULL DEFAULT false,
    finalized_at            bigint,
    paid_at                 bigint,
    voided_at               bigint,
    marked_uncollectible_at bigint,
    created                 bigint NOT NULL
);
CREATE INDEX invoices_customer_idx ON invoices (customer, seq);
CREATE INDEX invoices_status_idx ON invoices (status, seq);

CREATE TABLE invoice_items (
    seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id          text PRIMARY KEY CHECK (id LIKE 'ii\_%'),
    -- The line item this becomes once bound to an invoice.
    line_id     text UNIQUE CHECK (line_id LIKE 'il\_%'),
    livemode    boolean NOT NULL,
    customer    text NOT NULL REFERENCES customers (id),
    invoice     text REFERENCES invoices (id),
    amount      bigint NOT NULL,
    unit_amount bigint NOT NULL,
    quantity    bigint NOT NULL CHECK (quantity > 0),
    currency    text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    description text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created     bigint NOT NULL
);
CREATE INDEX invoice_items_pending_idx ON invoice_items (customer) WHERE invoice IS NULL;
CREATE INDEX invoice_items_invoice_idx ON invoice_items (invoice, seq);

CREATE TABLE payment_intents (
    seq                 bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id                  text PRIMARY KEY CHECK (id LIKE 'pi\_%'),
    livemode            boolean NOT NULL,
    amount              bigint NOT NULL CHECK (amount >= 0),
    amount_received     bigint NOT NULL DEFAULT 0 CHECK (amount_received >= 0),
    currency            text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    customer            text,
    description         text,
    status              text NOT NULL CHECK (status IN (
        'requires_payment_method', 'requires_confirmation', 'requires_action',
        'processing', 'requires_capture', 'canceled', 'succeeded')),
    cancellation_reason text,
    canceled_at         bigint,
    metadata            jsonb NOT NULL DEFAULT '{}',
    created             bigint NOT NULL
);

CREATE TABLE payment_records (
    seq               bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id                text PRIMARY KEY CHECK (id LIKE 'pr\_%'),
    livemode          boolean NOT NULL,
    amount            bigint NOT NULL CHECK (amount >= 0),
    currency          text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    customer          text,
    outcome           text NOT NULL CHECK (outcome IN ('guaranteed', 'failed')),
    payment_method_type text NOT NULL DEFAULT 'custom',
    payment_reference text,
    description       text,
    initiated_at      bigint NOT NULL,
    guaranteed_at     bigint,
    failed_at         bigint,
    metadata          jsonb NOT NULL DEFAULT '{}',
    created           bigint NOT NULL
);

CREATE TABLE invoice_payments (
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id               text PRIMARY KEY CHECK (id LIKE 'inpay\_%'),
    livemode         boolean NOT NULL,
    invoice          text NOT NULL REFERENCES invoices (id),
    payment_intent   text REFERENCES payment_intents (id),
    payment_record   text REFERENCES payment_records (id),
    currency         text NOT NULL,
    amount_requested bigint NOT NULL CHECK (amount_requested >= 0),
    amount_paid      bigint CHECK (amount_paid >= 0 AND amount_paid <= amount_requested),
    status           text NOT NULL CHECK (status IN ('open', 'paid', 'canceled')),
    paid_at          bigint,
    canceled_at      bigint,
    created          bigint NOT NULL,
    CHECK ((payment_intent IS NULL) <> (payment_record IS NULL)),
    CHECK ((status = 'paid') = (amount_paid IS NOT NULL)),
    -- A PaymentIntent or record is attached to at most one invoice, once.
    CONSTRAINT invoice_payments_payment_intent_key UNIQUE (payment_intent),
    CONSTRAINT invoice_payments_payment_record_key UNIQUE (payment_record)
);
CREATE INDEX invoice_payments_invoice_idx ON invoice_payments (invoice, seq);

-- The outbox: every event is written in the transaction that caused it and
-- published to the Redis stream afterwards.
CREATE TABLE events (
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id              text PRIMARY KEY CHECK (id LIKE 'evt\_%'),
    livemode        boolean NOT NULL,
    type            text NOT NULL,
    api_version     text NOT NULL,
    created         bigint NOT NULL,
    data            jsonb NOT NULL,
    request_id      text,
    idempotency_key text,
    published_at    timestamptz
);
CREATE INDEX events_type_idx ON events (type, seq);
CREATE INDEX events_unpublished_idx ON events (seq) WHERE published_at IS NULL;

CREATE TABLE webhook_endpoints (
    seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id             text PRIMARY KEY CHECK (id LIKE 'we\_%'),
    livemode       boolean NOT NULL,
    url            text NOT NULL,
    secret         text NOT NULL,
    enabled_events text[] NOT NULL,
    status         text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    description    text,
    api_version    text,
    metadata       jsonb NOT NULL DEFAULT '{}',
    deleted        boolean NOT NULL DEFAULT false,
    created        bigint NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        text NOT NULL REFERENCES events (id),
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id),
    status          text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    CONSTRAINT webhook_deliveries_event_endpoint_key UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

CREATE TABLE webhook_delivery_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at timestamptz NOT NULL DEFAULT now(),
    status_code  integer,
    latency_ms   integer NOT NULL,
    error        text
);
CREATE INDEX webhook_delivery_attempts_delivery_idx ON webhook_delivery_attempts (delivery_id);

-- Inbound Stripe events, stored before the 2xx; the event id dedupes.
CREATE TABLE inbound_events (
    seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id           text PRIMARY KEY,
    type         text NOT NULL,
    livemode     boolean NOT NULL,
    payload      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processed', 'ignored', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
);
CREATE INDEX inbound_events_pending_idx ON inbound_events (seq) WHERE status = 'pending';

-- Idempotency-Key results, scoped to the API key that sent them.
CREATE TABLE idempotency_keys (
    api_key_hash   text NOT NULL,
    key            text NOT NULL,
    request_hash   text NOT NULL,
    status_code    integer,
    response_body  bytea,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_hash, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
