-- Sessions record the role their token was issued with: a token claiming another user or
-- role than its session is refused. Sessions from before this migration take their user's
-- role ('' would mean: compare with the user's current role).
ALTER TABLE sessions ADD COLUMN role TEXT NOT NULL DEFAULT '';
UPDATE sessions SET role = users.role FROM users WHERE users.id = sessions.user_id;

-- Token signing keys the host generates (when LESSOR_JWT_SECRET is not set). The newest
-- signs; an older one verifies tokens until one token lifetime after its successor was made.
-- `host auth rotate-key` adds one. Anyone who can read this table can forge tokens.
CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    secret     BYTEA NOT NULL,
    -- Unix milliseconds, strictly increasing: the newest key signs.
    created_at BIGINT NOT NULL
);

-- The key generated before keys had ids signs on (tokens without a `kid` name it).
INSERT INTO signing_keys (kid, secret, created_at)
SELECT 'legacy', value, CAST(EXTRACT(EPOCH FROM created_at) * 1000 AS BIGINT)
FROM server_secrets WHERE name = 'jwt_hs256_key';
DELETE FROM server_secrets WHERE name = 'jwt_hs256_key';
