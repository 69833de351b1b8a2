-- Installed plugin packages (see migrations/postgres for notes).
CREATE TABLE plugins (
    provider           TEXT NOT NULL,
    version            TEXT NOT NULL,
    name               TEXT NOT NULL,
    wit                TEXT NOT NULL,
    digest             TEXT NOT NULL,
    manifest_digest    TEXT NOT NULL,
    manifest           TEXT NOT NULL,
    signature          TEXT,
    signed_by          TEXT,
    grants             TEXT NOT NULL,
    enabled            BOOLEAN NOT NULL,
    active             BOOLEAN NOT NULL,
    installed_revision INTEGER NOT NULL,
    activated_revision INTEGER,
    installed_at       TEXT NOT NULL,
    activated_at       TEXT,
    CONSTRAINT plugins_pkey PRIMARY KEY (provider, version)
);
CREATE UNIQUE INDEX plugins_one_active_idx ON plugins (provider) WHERE active;
CREATE INDEX plugins_digest_idx ON plugins (digest);

CREATE TABLE plugin_components (
    digest     TEXT PRIMARY KEY,
    component  BLOB NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE plugin_registry_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO plugin_registry_state (id, revision) VALUES (1, 0);
