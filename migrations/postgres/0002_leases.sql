-- Leases, their installment schedules, and the outbox that feeds the search index.
CREATE TABLE leases (
    id             UUID PRIMARY KEY,
    owner_id       UUID NOT NULL REFERENCES users (id),
    status         TEXT NOT NULL CHECK (status IN ('draft', 'active', 'completed', 'terminated')),
    vin            TEXT NOT NULL,
    make           TEXT NOT NULL,
    model          TEXT NOT NULL,
    model_year     INTEGER NOT NULL,
    category       TEXT NOT NULL,
    start_date     DATE NOT NULL,
    term_months    INTEGER NOT NULL CHECK (term_months BETWEEN 1 AND 120),
    monthly_amount BIGINT NOT NULL CHECK (monthly_amount > 0),
    deposit        BIGINT NOT NULL CHECK (deposit >= 0),
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
-- Keyset pagination, newest first, overall and per owner.
CREATE INDEX leases_created_idx ON leases (created_at DESC, id DESC);
CREATE INDEX leases_owner_created_idx ON leases (owner_id, created_at DESC, id DESC);

CREATE TABLE installments (
    id        UUID PRIMARY KEY,
    lease_id  UUID NOT NULL REFERENCES leases (id) ON DELETE CASCADE,
    number    INTEGER NOT NULL CHECK (number >= 1),
    due_date  DATE NOT NULL,
    amount    BIGINT NOT NULL CHECK (amount > 0),
    currency  TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('due', 'paid', 'overdue')),
    CONSTRAINT installments_lease_number_key UNIQUE (lease_id, number)
);
CREATE INDEX installments_due_idx ON installments (due_date) WHERE status <> 'paid';

-- "Lease X changed": written in the same transaction as the change, deleted once the search
-- index holds the lease's current state. available_at is a visibility timeout (Unix ms):
-- a worker that claims a row pushes it forward, so a crashed worker's rows come back.
CREATE TABLE search_outbox (
    id           BIGSERIAL PRIMARY KEY,
    lease_id     UUID NOT NULL,
    enqueued_at  BIGINT NOT NULL,
    available_at BIGINT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX search_outbox_available_idx ON search_outbox (available_at, id);
