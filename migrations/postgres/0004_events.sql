-- Domain events: the outbox written in the same transaction as the change it reports, the
-- relay's per-stream counter and lease, the in-process bus's consumer cursors, and the
-- handled-event marks that make at-least-once delivery give exactly-once effects.
-- Times are Unix milliseconds (BIGINT) so both engines compare them the same way.
-- See services/events/README.md.

-- One row per stream. last_seq is the highest sequence handed out: the relay assigns
-- sequences under this row's lock, so they follow commit order and are never reused (even
-- after old outbox rows are pruned). relay_holder/relay_expires_at is the relay's lease.
CREATE TABLE event_streams (
    stream           TEXT PRIMARY KEY,
    last_seq         BIGINT NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    relay_holder     TEXT,
    relay_expires_at BIGINT NOT NULL DEFAULT 0
);

-- payload is the event envelope exactly as published (JSON text). seq is NULL until the relay
-- sequences the row; the Redis Stream entry id is "<seq>-0". published_at is set once the
-- entry is in the stream (or handed to the in-process bus).
CREATE TABLE event_outbox (
    id           BIGSERIAL PRIMARY KEY,
    stream       TEXT NOT NULL,
    event_id     UUID NOT NULL,
    event_type   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    seq          BIGINT CHECK (seq > 0),
    published_at BIGINT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    CONSTRAINT event_outbox_event_id_key UNIQUE (event_id),
    CONSTRAINT event_outbox_stream_seq_key UNIQUE (stream, seq),
    CONSTRAINT event_outbox_published_sequenced CHECK (published_at IS NULL OR seq IS NOT NULL)
);
CREATE INDEX event_outbox_unsequenced_idx ON event_outbox (stream, id) WHERE seq IS NULL;
CREATE INDEX event_outbox_unpublished_idx ON event_outbox (stream, seq) WHERE seq IS NOT NULL AND published_at IS NULL;

-- In-process bus: one cursor per consumer group and stream (the last acknowledged seq), and
-- the lease of the one consumer of the group that reads at a time.
CREATE TABLE event_consumer_offsets (
    group_name       TEXT NOT NULL,
    stream           TEXT NOT NULL,
    last_seq         BIGINT NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    holder           TEXT,
    lease_expires_at BIGINT NOT NULL DEFAULT 0,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (group_name, stream)
);

-- Events a consumer group has handled: checked before a handler runs, written after it
-- succeeded (or by the handler itself, in its own transaction).
CREATE TABLE event_handled (
    group_name TEXT NOT NULL,
    event_id   UUID NOT NULL,
    handled_at BIGINT NOT NULL,
    PRIMARY KEY (group_name, event_id)
);
CREATE INDEX event_handled_at_idx ON event_handled (handled_at);
