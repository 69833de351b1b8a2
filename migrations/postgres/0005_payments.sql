-- Payments (services/payments): payments and refunds with their state machines, the
-- idempotency keys of API requests, the provider webhook events applied, the payment method
-- each lease is collected with, and the attempts of the installment collection job.
-- Times compared in SQL (reconcile_after, locked_until, expires_at, received_at) are Unix
-- milliseconds (BIGINT) so both engines compare them the same way. See services/payments/README.md.

-- One payment of a lease (optionally settling one installment). status follows the state
-- machine in services/payments/src/status.rs; every change is compare-and-set on it.
CREATE TABLE payments (
    id                    UUID PRIMARY KEY,
    lease_id              UUID NOT NULL REFERENCES leases (id),
    installment_id        UUID REFERENCES installments (id),
    -- The lease's owner when the payment was made: who may see it besides staff.
    owner_id              UUID NOT NULL REFERENCES users (id),
    amount                BIGINT NOT NULL CHECK (amount > 0),
    currency              TEXT NOT NULL CHECK (length(currency) = 3),
    provider              TEXT NOT NULL,
    -- A provider token or a canonical SEPA mandate (JSON text). Never card data; never logged.
    payment_method        TEXT NOT NULL,
    -- Sent with every `process` call for this payment; providers deduplicate on it.
    idempotency_key       TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'requires_action', 'succeeded',
                                                          'failed', 'partially_refunded', 'refunded', 'returned')),
    provider_tx_id        TEXT,
    next_action_url       TEXT,
    failure_code          TEXT,
    failure_message       TEXT,
    return_reason         TEXT,
    -- Refunds that succeeded, and refunds asked for whose outcome is not known yet: together
    -- never more than the payment.
    refunded_amount       BIGINT NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    refund_pending_amount BIGINT NOT NULL DEFAULT 0 CHECK (refund_pending_amount >= 0),
    -- Outcome unknown: `process` calls so far, when to ask the provider again, and the flag
    -- for an operator once the attempts ran out.
    process_attempts      INTEGER NOT NULL DEFAULT 0 CHECK (process_attempts >= 0),
    reconcile_after       BIGINT,
    needs_attention       BOOLEAN NOT NULL DEFAULT FALSE,
    last_error            TEXT,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    CONSTRAINT payments_refunds_within_amount CHECK (refunded_amount + refund_pending_amount <= amount),
    CONSTRAINT payments_idempotency_key_key UNIQUE (idempotency_key)
);
CREATE INDEX payments_lease_created_idx ON payments (lease_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX payments_provider_tx_idx ON payments (provider, provider_tx_id) WHERE provider_tx_id IS NOT NULL;
-- An installment has at most one payment that is not failed or returned: it is never charged twice.
CREATE UNIQUE INDEX payments_installment_open_idx ON payments (installment_id)
    WHERE installment_id IS NOT NULL AND status NOT IN ('failed', 'returned');
CREATE INDEX payments_reconcile_idx ON payments (reconcile_after) WHERE reconcile_after IS NOT NULL;

-- Refunds of a payment: pending until the provider answered (or a webhook told).
CREATE TABLE refunds (
    id                 UUID PRIMARY KEY,
    payment_id         UUID NOT NULL REFERENCES payments (id),
    amount             BIGINT NOT NULL CHECK (amount > 0),
    currency           TEXT NOT NULL CHECK (length(currency) = 3),
    status             TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason             TEXT,
    idempotency_key    TEXT NOT NULL,
    provider_refund_id TEXT,
    failure_code       TEXT,
    failure_message    TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    reconcile_after    BIGINT,
    needs_attention    BOOLEAN NOT NULL DEFAULT FALSE,
    last_error         TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    CONSTRAINT refunds_idempotency_key_key UNIQUE (idempotency_key)
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at);
CREATE INDEX refunds_provider_refund_idx ON refunds (provider_refund_id) WHERE provider_refund_id IS NOT NULL;
CREATE INDEX refunds_reconcile_idx ON refunds (reconcile_after) WHERE reconcile_after IS NOT NULL;

-- Idempotency keys of API requests, per scope (user and operation). The INSERT ... ON
-- CONFLICT DO NOTHING of the first request decides who runs; the others replay, wait or are
-- refused. An in-flight key whose locked_until passed may be taken over (new lock_token).
CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,   -- hex SHA-256 of the canonical request
    state           TEXT NOT NULL CHECK (state IN ('in_flight', 'completed')),
    lock_token      UUID NOT NULL,
    locked_until    BIGINT NOT NULL,
    resource_id     UUID,            -- what the request created (a payment or refund id)
    response_status INTEGER,
    response_body   TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, idempotency_key),
    CONSTRAINT idempotency_keys_completed_response CHECK (state <> 'completed' OR response_status IS NOT NULL)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- Provider webhook events applied (or judged stale), written in the transaction of the change.
CREATE TABLE webhook_events (
    provider       TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    provider_tx_id TEXT NOT NULL,
    payment_id     UUID,
    refund_id      UUID,
    outcome        TEXT NOT NULL,
    received_at    BIGINT NOT NULL,
    CONSTRAINT webhook_events_pkey PRIMARY KEY (provider, event_id)
);

-- How a lease's installments are collected: a provider and its token or canonical mandate.
CREATE TABLE lease_payment_methods (
    lease_id   UUID PRIMARY KEY REFERENCES leases (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    method     TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- One row per collection attempt of an installment; the primary key makes two job runs
-- take the same attempt at most once. payment_id is NULL when the attempt was refused
-- before a payment existed (failure_code says why).
CREATE TABLE collection_attempts (
    installment_id UUID NOT NULL REFERENCES installments (id) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL CHECK (attempt >= 1),
    payment_id     UUID REFERENCES payments (id),
    attempted_on   DATE NOT NULL,
    failure_code   TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT collection_attempts_pkey PRIMARY KEY (installment_id, attempt),
    CONSTRAINT collection_attempts_outcome CHECK (payment_id IS NOT NULL OR failure_code IS NOT NULL)
);
