-- Sessions record their token's role; generated signing keys (see migrations/postgres).
ALTER TABLE sessions ADD COLUMN role TEXT NOT NULL DEFAULT '';
UPDATE sessions SET role = COALESCE((SELECT role FROM users WHERE users.id = sessions.user_id), '');

CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

INSERT INTO signing_keys (kid, secret, created_at)
SELECT 'legacy', value, COALESCE(CAST(strftime('%s', created_at) AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)) * 1000
FROM server_secrets WHERE name = 'jwt_hs256_key';
DELETE FROM server_secrets WHERE name = 'jwt_hs256_key';
