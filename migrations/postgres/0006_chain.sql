-- Chain worker (services/chain): one on-chain receipt transfer per completed payment.
-- Times are Unix milliseconds (BIGINT) like the event tables; valid_until is Unix seconds,
-- the chain's unit. Hashes are lowercase hex; the BOC is base64. See services/chain/README.md.

-- One row per operator wallet: the lease of the one worker that signs, sends and polls for
-- it (seqnos are used one at a time, so sends from one wallet are serialised).
CREATE TABLE blockchain_wallets (
    address          TEXT PRIMARY KEY,
    holder           TEXT,
    lease_expires_at BIGINT NOT NULL DEFAULT 0,
    updated_at       BIGINT NOT NULL
);

-- One row per payment, whatever happens: pending (stored from the payment.completed event)
-- -> signed (message stored, before it is sent) -> submitted -> confirmed; a message not
-- included by valid_until goes to expired and is signed again (fresh seqno, same row);
-- failed after too many attempts. The current message is seqno/valid_until/message_hash/boc;
-- every message ever signed for the payment is in blockchain_messages.
CREATE TABLE blockchain_transactions (
    id                BIGSERIAL PRIMARY KEY,
    payment_id        UUID NOT NULL,
    lease_id          UUID NOT NULL,
    event_id          UUID NOT NULL,
    wallet_address    TEXT NOT NULL,
    recipient         TEXT NOT NULL,
    amount_nanoton    BIGINT NOT NULL CHECK (amount_nanoton >= 0),
    bounce            BOOLEAN NOT NULL,
    comment           TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'signed', 'submitted', 'confirmed', 'expired', 'failed')),
    seqno             BIGINT,
    valid_until       BIGINT,
    message_hash      TEXT,
    message_hash_norm TEXT,
    boc               TEXT,
    scan_from_lt      BIGINT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    sends             INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    tx_hash           TEXT,
    tx_lt             BIGINT,
    tx_utime          BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    submitted_at      BIGINT,
    last_sent_at      BIGINT,
    confirmed_at      BIGINT,
    CONSTRAINT blockchain_transactions_payment_id_key UNIQUE (payment_id),
    CONSTRAINT blockchain_transactions_signed_has_message
        CHECK (status IN ('pending', 'failed') OR (seqno IS NOT NULL AND message_hash IS NOT NULL AND boc IS NOT NULL))
);
-- At most one message in flight per wallet: its seqno is the only one in use.
CREATE UNIQUE INDEX blockchain_transactions_in_flight_idx ON blockchain_transactions (wallet_address)
    WHERE status IN ('signed', 'submitted');
-- The queue of payments waiting for a (new) message, oldest first.
CREATE INDEX blockchain_transactions_queue_idx ON blockchain_transactions (wallet_address, id)
    WHERE status IN ('pending', 'expired');
CREATE INDEX blockchain_transactions_lease_idx ON blockchain_transactions (lease_id);

-- Every message signed for a payment (attempt 1, 2, …): the poller matches a wallet
-- transaction against all of them, so a message re-sent after expiry is never missed.
-- outcome: NULL while it may still be included, 'included', 'expired', 'no_transfer'
-- (included, but the wallet sent nothing, e.g. for want of balance).
CREATE TABLE blockchain_messages (
    payment_id        UUID NOT NULL REFERENCES blockchain_transactions (payment_id),
    attempt           INTEGER NOT NULL CHECK (attempt > 0),
    seqno             BIGINT NOT NULL,
    valid_until       BIGINT NOT NULL,
    message_hash      TEXT NOT NULL,
    message_hash_norm TEXT NOT NULL,
    boc               TEXT NOT NULL,
    outcome           TEXT CHECK (outcome IN ('included', 'expired', 'no_transfer')),
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (payment_id, attempt)
);
CREATE INDEX blockchain_messages_hash_idx ON blockchain_messages (message_hash);
