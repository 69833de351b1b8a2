-- Leases, their installment schedules, and the search outbox (see migrations/postgres).
CREATE TABLE leases (
    id             BLOB PRIMARY KEY,
    owner_id       BLOB NOT NULL REFERENCES users (id),
    status         TEXT NOT NULL CHECK (status IN ('draft', 'active', 'completed', 'terminated')),
    vin            TEXT NOT NULL,
    make           TEXT NOT NULL,
    model          TEXT NOT NULL,
    model_year     INTEGER NOT NULL,
    category       TEXT NOT NULL,
    start_date     TEXT NOT NULL,
    term_months    INTEGER NOT NULL CHECK (term_months BETWEEN 1 AND 120),
    monthly_amount INTEGER NOT NULL CHECK (monthly_amount > 0),
    deposit        INTEGER NOT NULL CHECK (deposit >= 0),
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX leases_created_idx ON leases (created_at DESC, id DESC);
CREATE INDEX leases_owner_created_idx ON leases (owner_id, created_at DESC, id DESC);

CREATE TABLE installments (
    id        BLOB PRIMARY KEY,
    lease_id  BLOB NOT NULL REFERENCES leases (id) ON DELETE CASCADE,
    number    INTEGER NOT NULL CHECK (number >= 1),
    due_date  TEXT NOT NULL,
    amount    INTEGER NOT NULL CHECK (amount > 0),
    currency  TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('due', 'paid', 'overdue')),
    CONSTRAINT installments_lease_number_key UNIQUE (lease_id, number)
);
CREATE INDEX installments_due_idx ON installments (due_date) WHERE status <> 'paid';

CREATE TABLE search_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    lease_id     BLOB NOT NULL,
    enqueued_at  INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX search_outbox_available_idx ON search_outbox (available_at, id);
