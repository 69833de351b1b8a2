-- Payments, refunds, idempotency keys, webhook events, lease payment methods and collection
-- attempts (see migrations/postgres for notes). UUIDs are BLOBs, timestamps and dates TEXT,
-- compared times Unix milliseconds.
CREATE TABLE payments (
    id                    BLOB PRIMARY KEY,
    lease_id              BLOB NOT NULL REFERENCES leases (id),
    installment_id        BLOB REFERENCES installments (id),
    owner_id              BLOB NOT NULL REFERENCES users (id),
    amount                INTEGER NOT NULL CHECK (amount > 0),
    currency              TEXT NOT NULL CHECK (length(currency) = 3),
    provider              TEXT NOT NULL,
    payment_method        TEXT NOT NULL,
    idempotency_key       TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'requires_action', 'succeeded',
                                                          'failed', 'partially_refunded', 'refunded', 'returned')),
    provider_tx_id        TEXT,
    next_action_url       TEXT,
    failure_code          TEXT,
    failure_message       TEXT,
    return_reason         TEXT,
    refunded_amount       INTEGER NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    refund_pending_amount INTEGER NOT NULL DEFAULT 0 CHECK (refund_pending_amount >= 0),
    process_attempts      INTEGER NOT NULL DEFAULT 0 CHECK (process_attempts >= 0),
    reconcile_after       INTEGER,
    needs_attention       BOOLEAN NOT NULL DEFAULT FALSE,
    last_error            TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    CONSTRAINT payments_refunds_within_amount CHECK (refunded_amount + refund_pending_amount <= amount),
    CONSTRAINT payments_idempotency_key_key UNIQUE (idempotency_key)
);
CREATE INDEX payments_lease_created_idx ON payments (lease_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX payments_provider_tx_idx ON payments (provider, provider_tx_id) WHERE provider_tx_id IS NOT NULL;
CREATE UNIQUE INDEX payments_installment_open_idx ON payments (installment_id)
    WHERE installment_id IS NOT NULL AND status NOT IN ('failed', 'returned');
CREATE INDEX payments_reconcile_idx ON payments (reconcile_after) WHERE reconcile_after IS NOT NULL;

CREATE TABLE refunds (
    id                 BLOB PRIMARY KEY,
    payment_id         BLOB NOT NULL REFERENCES payments (id),
    amount             INTEGER NOT NULL CHECK (amount > 0),
    currency           TEXT NOT NULL CHECK (length(currency) = 3),
    status             TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason             TEXT,
    idempotency_key    TEXT NOT NULL,
    provider_refund_id TEXT,
    failure_code       TEXT,
    failure_message    TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    reconcile_after    INTEGER,
    needs_attention    BOOLEAN NOT NULL DEFAULT FALSE,
    last_error         TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    CONSTRAINT refunds_idempotency_key_key UNIQUE (idempotency_key)
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at);
CREATE INDEX refunds_provider_refund_idx ON refunds (provider_refund_id) WHERE provider_refund_id IS NOT NULL;
CREATE INDEX refunds_reconcile_idx ON refunds (reconcile_after) WHERE reconcile_after IS NOT NULL;

CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('in_flight', 'completed')),
    lock_token      BLOB NOT NULL,
    locked_until    INTEGER NOT NULL,
    resource_id     BLOB,
    response_status INTEGER,
    response_body   TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, idempotency_key),
    CONSTRAINT idempotency_keys_completed_response CHECK (state <> 'completed' OR response_status IS NOT NULL)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

CREATE TABLE webhook_events (
    provider       TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    provider_tx_id TEXT NOT NULL,
    payment_id     BLOB,
    refund_id      BLOB,
    outcome        TEXT NOT NULL,
    received_at    INTEGER NOT NULL,
    CONSTRAINT webhook_events_pkey PRIMARY KEY (provider, event_id)
);

CREATE TABLE lease_payment_methods (
    lease_id   BLOB PRIMARY KEY REFERENCES leases (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    method     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE collection_attempts (
    installment_id BLOB NOT NULL REFERENCES installments (id) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL CHECK (attempt >= 1),
    payment_id     BLOB REFERENCES payments (id),
    attempted_on   TEXT NOT NULL,
    failure_code   TEXT,
    created_at     TEXT NOT NULL,
    CONSTRAINT collection_attempts_pkey PRIMARY KEY (installment_id, attempt),
    CONSTRAINT collection_attempts_outcome CHECK (payment_id IS NOT NULL OR failure_code IS NOT NULL)
);
