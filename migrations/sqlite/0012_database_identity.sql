-- The database's identity, tied to its event streams (issue 12, item 4).
-- database_id is a random id written once, at the first start (see
-- services/events/src/identity.rs); a pg_dump/restore or a template copy keeps it, a fresh
-- database gets a new one. The relay records it beside each Redis Stream
-- (`<namespace>:<stream>:owner`) and refuses a namespace that another database owns.
CREATE TABLE database_identity (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    database_id TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Redis entry id = seq + id_offset. After a restore from an older backup the stream holds
-- entries beyond what the database knows; the relay raises id_offset (the restore epoch) so
-- the next sequences continue after the stream's top instead of colliding with it.
ALTER TABLE event_streams ADD COLUMN id_offset BIGINT NOT NULL DEFAULT 0;
