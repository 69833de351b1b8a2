-- Installed plugin packages (plugin-registry): one row per (provider, version).
-- `enabled` is the provider's switch, kept equal on all its rows; `active` marks the version
-- payments use, at most one per provider. `activated_revision` is the registry revision at
-- which the row last became active (a rollback target while it is not active); a rollback
-- clears it on the version it leaves, so rolling back again goes further back.
CREATE TABLE plugins (
    provider           TEXT NOT NULL,
    version            TEXT NOT NULL,
    name               TEXT NOT NULL,
    wit                TEXT NOT NULL,
    digest             TEXT NOT NULL,   -- sha256:<hex> of the component
    manifest_digest    TEXT NOT NULL,   -- sha256:<hex> of plugin.toml
    manifest           TEXT NOT NULL,   -- plugin.toml as installed
    signature          TEXT,            -- plugin.sig as installed
    signed_by          TEXT,            -- the trusted key that verified it
    grants             TEXT NOT NULL,   -- JSON array of the origin patterns the operator granted
    enabled            BOOLEAN NOT NULL,
    active             BOOLEAN NOT NULL,
    installed_revision BIGINT NOT NULL,
    activated_revision BIGINT,
    installed_at       TIMESTAMPTZ NOT NULL,
    activated_at       TIMESTAMPTZ,
    CONSTRAINT plugins_pkey PRIMARY KEY (provider, version)
);
CREATE UNIQUE INDEX plugins_one_active_idx ON plugins (provider) WHERE active;
CREATE INDEX plugins_digest_idx ON plugins (digest);

-- Component bytes by digest, so every replica can load what any replica installed.
CREATE TABLE plugin_components (
    digest     TEXT PRIMARY KEY,
    component  BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- One row; every change to `plugins` bumps `revision` in the same transaction (which also
-- serialises registry changes). Replicas poll it to notice changes cheaply.
CREATE TABLE plugin_registry_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO plugin_registry_state (id, revision) VALUES (1, 0);
