//! HS256 access tokens. Only HS256 is accepted when decoding, so `alg: none` and
//! algorithm-confusion tokens fail like any tampered token. The header's `kid` names the
//! key; an unknown or retired kid is invalid.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Role;
use crate::keys::{KeyRing, KeyStore, KeyStoreError, LEGACY_KID, SIGNING_STALENESS_SECS};

pub const ISSUER: &str = "lessor";

/// At most one store lookup per this interval for tokens naming a kid this process does not
/// know, so random kids cannot turn into database load.
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub jti: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Signs and verifies access tokens. `Debug` never shows a key.
pub struct TokenCodec {
    ring: RwLock<Arc<KeyRing>>,
    /// Generated keys (absent when the operator supplies the secret).
    store: Option<Arc<dyn KeyStore>>,
    loaded_at: Mutex<Instant>,
    last_miss_reload: Mutex<Option<Instant>>,
    reloading: tokio::sync::Mutex<()>,
    validation: Validation,
    ttl_secs: i64,
}

impl fmt::Debug for TokenCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCodec").field("ttl_secs", &self.ttl_secs).finish_non_exhaustive()
    }
}

impl TokenCodec {
    /// One operator-supplied secret.
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        Self::with_previous(secret, None, ttl_secs)
    }

    /// The operator's secret, and the one it replaced, accepted for verification only.
    pub fn with_previous(secret: &[u8], previous: Option<&[u8]>, ttl_secs: u64) -> Self {
        Self::build(KeyRing::from_secrets(secret, previous), None, ttl_secs)
    }

    /// Keys generated and kept in `store`; the newest signs. Fails when the store has none.
    pub async fn stored(store: Arc<dyn KeyStore>, ttl_secs: u64) -> Result<Self, KeyStoreError> {
        let ttl = clamp_ttl(ttl_secs);
        let ring = KeyRing::from_stored(store.load().await?, ttl)
            .ok_or_else(|| KeyStoreError("no signing key is stored".into()))?;
        Ok(Self::build(ring, Some(store), ttl_secs))
    }

    fn build(ring: KeyRing, store: Option<Arc<dyn KeyStore>>, ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        Self {
            ring: RwLock::new(Arc::new(ring)),
            store,
            loaded_at: Mutex::new(Instant::now()),
            last_miss_reload: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
            validation,
            ttl_secs: clamp_ttl(ttl_secs),
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Claims for a new token issued at `now` (Unix seconds).
    pub fn claims_for(&self, user_id: Uuid, role: Role, now: i64) -> Claims {
        Claims { sub: user_id, role, jti: Uuid::new_v4(), iat: now, exp: now + self.ttl_secs, iss: ISSUER.into() }
    }

    fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads the stored keys; on failure keeps the ones it has (and logs why).
    async fn reload(&self) {
        let Some(store) = &self.store else { return };
        let Ok(_one_at_a_time) = self.reloading.try_lock() else { return };
        match store.load().await.map(|keys| KeyRing::from_stored(keys, self.ttl_secs)) {
            Ok(Some(ring)) => {
                *self.ring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
                *self.loaded_at.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
            }
            Ok(None) => tracing::warn!("no signing key is stored; keeping the keys in memory"),
            Err(e) => tracing::warn!(error = %e, "could not reload the signing keys; keeping the keys in memory"),
        }
    }

    /// Signs with the newest key, first looking for a newer one when this process's copy is
    /// older than a second (so a rotation reaches every replica within that).
    pub async fn encode(&self, claims: &Claims) -> Result<String, TokenError> {
        let stale = self.loaded_at.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
            >= Duration::from_secs(SIGNING_STALENESS_SECS as u64);
        if self.store.is_some() && stale {
            self.reload().await;
        }
        let ring = self.ring();
        let key = ring.current();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| TokenError::Signing(e.to_string()))
    }

    pub async fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        // A JWT for us is well under 1 KiB; refuse to parse anything absurd.
        if token.len() > 4096 {
            return Err(TokenError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let kid = header.kid.unwrap_or_else(|| LEGACY_KID.to_owned());
        let mut ring = self.ring();
        if ring.find(&kid).is_none() && self.may_reload_for_unknown_kid() {
            self.reload().await;
            ring = self.ring();
        }
        let key = ring.find(&kid).ok_or(TokenError::Invalid)?;
        if key.accepted_until.is_some_and(|until| chrono::Utc::now().timestamp_millis() >= until) {
            return Err(TokenError::Invalid);
        }
        match jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(TokenError::Expired),
            Err(_) => Err(TokenError::Invalid),
        }
    }

    fn may_reload_for_unknown_kid(&self) -> bool {
        if self.store.is_none() {
            return false;
        }
        let mut last = self.last_miss_reload.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KID_RELOAD) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

fn clamp_ttl(ttl_secs: u64) -> i64 {
    i64::try_from(ttl_secs).unwrap_or(i64::MAX / 4).min(i64::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::kid_of_secret;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn codec() -> TokenCodec {
        TokenCodec::new(KEY, 3600)
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[tokio::test]
    async fn round_trip_names_the_key() {
        let c = codec();
        let claims = c.claims_for(Uuid::new_v4(), Role::Operator, now());
        let token = c.encode(&claims).await.unwrap();
        assert_eq!(c.decode(&token).await.unwrap(), claims);
        assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid, Some(kid_of_secret(KEY)));
    }

    #[tokio::test]
    async fn expired_is_told_apart() {
        let c = codec();
        let claims = c.claims_for(Uuid::new_v4(), Role::Customer, now() - 7200);
        assert_eq!(c.decode(&c.encode(&claims).await.unwrap()).await, Err(TokenError::Expired));
    }

    #[tokio::test]
    async fn other_key_and_alg_none_are_invalid() {
        let c = codec();
        let claims = c.claims_for(Uuid::new_v4(), Role::Admin, now());
        let foreign = TokenCodec::new(b"another key another key another k", 3600).encode(&claims).await.unwrap();
        assert_eq!(c.decode(&foreign).await, Err(TokenError::Invalid));

        let token = c.encode(&claims).await.unwrap();
        let payload = token.split('.').nth(1).unwrap();
        // {"alg":"none","typ":"JWT"}
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(c.decode(&none).await, Err(TokenError::Invalid));
        assert_eq!(c.decode("garbage").await, Err(TokenError::Invalid));
    }

    #[tokio::test]
    async fn the_previous_secret_still_verifies_but_never_signs() {
        let old = TokenCodec::new(b"the old secret, thirty-two bytes!", 3600);
        let claims = old.claims_for(Uuid::new_v4(), Role::Customer, now());
        let before = old.encode(&claims).await.unwrap();
        let new = TokenCodec::with_previous(KEY, Some(b"the old secret, thirty-two bytes!"), 3600);
        assert_eq!(new.decode(&before).await.unwrap(), claims);
        let after = new.encode(&claims).await.unwrap();
        assert_eq!(jsonwebtoken::decode_header(&after).unwrap().kid, Some(kid_of_secret(KEY)));
        assert_eq!(TokenCodec::new(KEY, 3600).decode(&before).await, Err(TokenError::Invalid));
    }
}
