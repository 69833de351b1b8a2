//! Token signing keys. Each key has an id (`kid`, in every token's header); the newest key
//! signs, and the key it replaced is still accepted for one token lifetime after the
//! replacement, so rotating never logs anyone out.
//!
//! Keys come either from the operator (`LESSOR_JWT_SECRET`, optionally
//! `LESSOR_JWT_PREVIOUS_SECRET` for verification only) or from the `signing_keys` table,
//! where the host generates them (`host auth rotate-key` adds one).

use std::fmt;

use async_trait::async_trait;
use jsonwebtoken::{DecodingKey, EncodingKey};
use lessor_store::{Db, on_db};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The kid given to tokens issued before keys had ids (and to the key they were signed with).
pub const LEGACY_KID: &str = "legacy";
/// The kid of the key generated when a database has none.
const INITIAL_KID: &str = "initial";
/// How long after a rotation a replica may still sign with the key it replaced: replicas
/// look for a newer key when their copy is older than this (see `TokenCodec::encode`).
pub const SIGNING_STALENESS_SECS: i64 = 1;

/// One signing key as stored. `Debug` never shows the secret.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub secret: Vec<u8>,
    /// Unix milliseconds; strictly increasing from one key to the next.
    pub created_at: i64,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).field("created_at", &self.created_at).finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("signing key store unavailable: {0}")]
pub struct KeyStoreError(pub String);

/// Where generated keys live.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every stored key, in any order.
    async fn load(&self) -> Result<Vec<SigningKey>, KeyStoreError>;
}

/// Keys in the `signing_keys` table, shared by every replica on the database.
#[derive(Clone)]
pub struct SqlSigningKeys {
    db: Db,
}

fn store_error(e: sqlx::Error) -> KeyStoreError {
    KeyStoreError(e.to_string())
}

fn fresh_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

impl SqlSigningKeys {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Generates the first key (64 random bytes) unless the table has one; safe when several
    /// replicas start at once (one `initial` key wins).
    pub async fn ensure(&self) -> Result<(), KeyStoreError> {
        let sql = "INSERT INTO signing_keys (kid, secret, created_at) \
                   SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM signing_keys) ON CONFLICT (kid) DO NOTHING";
        let now = chrono::Utc::now().timestamp_millis();
        let secret = fresh_secret();
        on_db!(&self.db, pool => sqlx::query(sql).bind(INITIAL_KID).bind(&secret).bind(now).execute(pool).await.map(drop))
            .map_err(store_error)
    }

    /// Adds a new key, which signs from now on; returns its kid.
    pub async fn rotate(&self) -> Result<String, KeyStoreError> {
        let mut id = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let kid = hex(&id);
        // Later than every other key even if clocks disagree, so "newest" is never a tie.
        let sql = "INSERT INTO signing_keys (kid, secret, created_at) \
                   SELECT $1, $2, CASE WHEN MAX(created_at) >= $3 THEN MAX(created_at) + 1 ELSE $3 END FROM signing_keys";
        let now = chrono::Utc::now().timestamp_millis();
        on_db!(&self.db, pool => sqlx::query(sql).bind(&kid).bind(fresh_secret()).bind(now).execute(pool).await.map(drop))
            .map_err(store_error)?;
        Ok(kid)
    }
}

#[async_trait]
impl KeyStore for SqlSigningKeys {
    async fn load(&self) -> Result<Vec<SigningKey>, KeyStoreError> {
        let sql = "SELECT kid, secret, created_at FROM signing_keys";
        let rows: Vec<(String, Vec<u8>, i64)> =
            on_db!(&self.db, pool => sqlx::query_as(sql).fetch_all(pool).await).map_err(store_error)?;
        Ok(rows.into_iter().map(|(kid, secret, created_at)| SigningKey { kid, secret, created_at }).collect())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The kid of an operator-supplied secret: the start of its SHA-256, so a token names the
/// secret it was signed with without revealing it.
pub fn kid_of_secret(secret: &[u8]) -> String {
    hex(&Sha256::digest(secret)[..8])
}

pub(crate) struct RingKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// Unix milliseconds after which tokens signed with this key are refused; `None`: no limit.
    pub accepted_until: Option<i64>,
}

impl RingKey {
    fn new(kid: String, secret: &[u8], accepted_until: Option<i64>) -> Self {
        Self {
            kid,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            accepted_until,
        }
    }
}

/// The keys a process signs and verifies with; the last one signs.
pub(crate) struct KeyRing {
    keys: Vec<RingKey>,
}

impl KeyRing {
    /// The operator's secret, and the previous one accepted for verification only.
    pub fn from_secrets(current: &[u8], previous: Option<&[u8]>) -> Self {
        let mut keys: Vec<RingKey> = previous.map(|p| RingKey::new(kid_of_secret(p), p, None)).into_iter().collect();
        keys.push(RingKey::new(kid_of_secret(current), current, None));
        Self { keys }
    }

    /// Stored keys: the newest signs; each older one is accepted until one token lifetime
    /// (plus the signing staleness) after the key that replaced it was made. `None` when empty.
    pub fn from_stored(mut stored: Vec<SigningKey>, ttl_secs: i64) -> Option<Self> {
        stored.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        let successors: Vec<Option<i64>> =
            (0..stored.len()).map(|i| stored.get(i + 1).map(|next| next.created_at)).collect();
        let keys: Vec<RingKey> = stored
            .iter()
            .zip(successors)
            .map(|(key, next)| {
                let grace_ms = ttl_secs.saturating_add(SIGNING_STALENESS_SECS).saturating_mul(1000);
                let until = next.map(|replaced_at| replaced_at.saturating_add(grace_ms));
                RingKey::new(key.kid.clone(), &key.secret, until)
            })
            .collect();
        (!keys.is_empty()).then_some(Self { keys })
    }

    pub fn current(&self) -> &RingKey {
        self.keys.last().expect("a key ring is never empty")
    }

    pub fn find(&self, kid: &str) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, created_at: i64) -> SigningKey {
        SigningKey { kid: kid.into(), secret: kid.as_bytes().to_vec(), created_at }
    }

    #[test]
    fn newest_signs_and_each_older_key_expires_a_lifetime_after_its_successor() {
        let ring = KeyRing::from_stored(vec![key("b", 200), key("a", 100), key("c", 300)], 60).unwrap();
        assert_eq!(ring.current().kid, "c");
        assert_eq!(ring.current().accepted_until, None);
        let grace_ms = (60 + SIGNING_STALENESS_SECS) * 1000;
        assert_eq!(ring.find("b").unwrap().accepted_until, Some(300 + grace_ms));
        assert_eq!(ring.find("a").unwrap().accepted_until, Some(200 + grace_ms));
        assert!(ring.find("z").is_none());
        assert!(KeyRing::from_stored(Vec::new(), 60).is_none());
    }

    #[test]
    fn secrets_get_stable_ids_that_do_not_reveal_them() {
        let ring =
            KeyRing::from_secrets(b"new secret new secret new secret!", Some(b"old secret old secret old secret!"));
        assert_eq!(ring.current().kid, kid_of_secret(b"new secret new secret new secret!"));
        assert_eq!(ring.current().kid.len(), 16);
        assert!(ring.find(&kid_of_secret(b"old secret old secret old secret!")).is_some());
    }
}
