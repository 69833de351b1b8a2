-- Domain events: outbox, relay counter and lease, in-process cursors, handled marks
-- (see migrations/postgres and services/events/README.md).
CREATE TABLE event_streams (
    stream           TEXT PRIMARY KEY,
    last_seq         INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    relay_holder     TEXT,
    relay_expires_at INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE event_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    stream       TEXT NOT NULL,
    event_id     BLOB NOT NULL,
    event_type   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    seq          INTEGER CHECK (seq > 0),
    published_at INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    CONSTRAINT event_outbox_event_id_key UNIQUE (event_id),
    CONSTRAINT event_outbox_stream_seq_key UNIQUE (stream, seq),
    CONSTRAINT event_outbox_published_sequenced CHECK (published_at IS NULL OR seq IS NOT NULL)
);
CREATE INDEX event_outbox_unsequenced_idx ON event_outbox (stream, id) WHERE seq IS NULL;
CREATE INDEX event_outbox_unpublished_idx ON event_outbox (stream, seq) WHERE seq IS NOT NULL AND published_at IS NULL;

CREATE TABLE event_consumer_offsets (
    group_name       TEXT NOT NULL,
    stream           TEXT NOT NULL,
    last_seq         INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    holder           TEXT,
    lease_expires_at INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (group_name, stream)
);

CREATE TABLE event_handled (
    group_name TEXT NOT NULL,
    event_id   BLOB NOT NULL,
    handled_at INTEGER NOT NULL,
    PRIMARY KEY (group_name, event_id)
);
CREATE INDEX event_handled_at_idx ON event_handled (handled_at);
