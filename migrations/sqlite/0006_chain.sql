-- Chain worker: wallet leases, one receipt transfer per payment, every signed message
-- (see migrations/postgres/0006_chain.sql and services/chain/README.md).
CREATE TABLE blockchain_wallets (
    address          TEXT PRIMARY KEY,
    holder           TEXT,
    lease_expires_at INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE blockchain_transactions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id        BLOB NOT NULL,
    lease_id          BLOB NOT NULL,
    event_id          BLOB NOT NULL,
    wallet_address    TEXT NOT NULL,
    recipient         TEXT NOT NULL,
    amount_nanoton    INTEGER NOT NULL CHECK (amount_nanoton >= 0),
    bounce            BOOLEAN NOT NULL,
    comment           TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'signed', 'submitted', 'confirmed', 'expired', 'failed')),
    seqno             INTEGER,
    valid_until       INTEGER,
    message_hash      TEXT,
    message_hash_norm TEXT,
    boc               TEXT,
    scan_from_lt      INTEGER,
    attempts          INTEGER NOT NULL DEFAULT 0,
    sends             INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    tx_hash           TEXT,
    tx_lt             INTEGER,
    tx_utime          INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    submitted_at      INTEGER,
    last_sent_at      INTEGER,
    confirmed_at      INTEGER,
    CONSTRAINT blockchain_transactions_payment_id_key UNIQUE (payment_id),
    CONSTRAINT blockchain_transactions_signed_has_message
        CHECK (status IN ('pending', 'failed') OR (seqno IS NOT NULL AND message_hash IS NOT NULL AND boc IS NOT NULL))
);
CREATE UNIQUE INDEX blockchain_transactions_in_flight_idx ON blockchain_transactions (wallet_address)
    WHERE status IN ('signed', 'submitted');
CREATE INDEX blockchain_transactions_queue_idx ON blockchain_transactions (wallet_address, id)
    WHERE status IN ('pending', 'expired');
CREATE INDEX blockchain_transactions_lease_idx ON blockchain_transactions (lease_id);

CREATE TABLE blockchain_messages (
    payment_id        BLOB NOT NULL REFERENCES blockchain_transactions (payment_id),
    attempt           INTEGER NOT NULL CHECK (attempt > 0),
    seqno             INTEGER NOT NULL,
    valid_until       INTEGER NOT NULL,
    message_hash      TEXT NOT NULL,
    message_hash_norm TEXT NOT NULL,
    boc               TEXT NOT NULL,
    outcome           TEXT CHECK (outcome IN ('included', 'expired', 'no_transfer')),
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (payment_id, attempt)
);
CREATE INDEX blockchain_messages_hash_idx ON blockchain_messages (message_hash);
