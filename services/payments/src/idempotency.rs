//! Idempotency keys of API requests (table `idempotency_keys`), on either engine.
//!
//! A client sends `Idempotency-Key: <key>` with a request; the host calls [`IdempotencyStore::begin`]
//! with the caller's [`Scope`] (user and operation), the key and the request's [`Fingerprint`]:
//!
//! | stored for (scope, key) | answer |
//! |---|---|
//! | nothing, or an expired row | [`Begin::New`]: go ahead, holding the [`Claim`] |
//! | another fingerprint | [`Begin::Mismatch`] (a 422: the key was used for another request) |
//! | completed | [`Begin::Replay`] with the stored status and body |
//! | in flight, lock not expired | [`Begin::InFlight`] (a 409: retry later) |
//! | in flight, lock expired (the first request's process died) | [`Begin::New`], the claim taken over; [`Claim::recovered`] names the payment the first request had created, if any, which is then left to reconciliation rather than created again |
//!
//! Exactly one of any number of concurrent first requests gets `New`: the row is created by
//! `INSERT … ON CONFLICT DO NOTHING` under the primary key, and every later change of an
//! existing row is a compare-and-set on its `lock_token`.
//!
//! After the work, the host calls [`IdempotencyStore::complete`] with the response to replay,
//! or [`IdempotencyStore::release`] when the request failed before anything was created (the
//! key is forgotten so a retry goes on). A key is kept at least 24 hours after its response;
//! [`IdempotencyStore::prune`] deletes expired keys.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lessor_store::{Db, on_db};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Operation name of `POST /payments`.
pub const CREATE_PAYMENT: &str = "payments.create";
/// Operation name of `POST /payments/{id}/refunds`.
pub const REFUND_PAYMENT: &str = "payments.refund";

/// A client's idempotency key: 1–255 visible ASCII characters (`!` to `~`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an idempotency key must be 1-255 visible ASCII characters")]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, IdempotencyKeyError> {
        if (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdempotencyKeyError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose keys and for what: keys of different users, or of different operations, never meet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(String);

impl Scope {
    /// `user:<user id>:<operation>`, e.g. for [`CREATE_PAYMENT`].
    pub fn user(user_id: Uuid, operation: &str) -> Self {
        Self(format!("user:{user_id}:{operation}"))
    }

    /// `system:<operation>`, for work the server does on its own.
    pub fn system(operation: &str) -> Self {
        Self(format!("system:{operation}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The SHA-256 (hex) of a request's canonical form: a key reused with another request is
/// told apart from a retry. Include path parameters in what is fingerprinted (e.g.
/// `{"payment_id": …, "body": …}` for a refund).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Of a JSON value in canonical form: object keys sorted, no whitespace, so key order and
    /// formatting of the same request do not matter.
    pub fn of_json(value: &Value) -> Self {
        Self::of_bytes(canonical_json(value).as_bytes())
    }

    pub fn of_bytes(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `value` with object keys sorted at every level and no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The right to run the request under a key, until completed or released.
#[derive(Clone, PartialEq, Eq)]
pub struct Claim {
    pub(crate) scope: Scope,
    pub(crate) key: IdempotencyKey,
    pub(crate) token: Uuid,
    recovered: Option<Uuid>,
}

impl Claim {
    /// What an earlier request under this key had created before its lock expired (a payment
    /// or refund id). The service returns that resource as it stands instead of creating
    /// another; it is left to reconciliation.
    pub fn recovered(&self) -> Option<Uuid> {
        self.recovered
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn key(&self) -> &IdempotencyKey {
        &self.key
    }
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim").field("scope", &self.scope.0).field("recovered", &self.recovered).finish()
    }
}

/// The times of a key's row written by the caller (see [`IdempotencyStore::fresh_claim`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClaimTimes {
    pub locked_until: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What [`IdempotencyStore::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Run the request; then `complete` or `release` the claim.
    New(Claim),
    /// The request ran before: answer with this.
    Replay { status: u16, body: String },
    /// The same request is running now.
    InFlight,
    /// The key was used with another request.
    Mismatch,
}

/// What [`IdempotencyStore::release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The key is forgotten: a retry starts afresh.
    Forgotten,
    /// The request had created something (its claim is linked to it), so the key is kept but
    /// unlocked: a retry takes it over at once and gets that resource back.
    Unlocked,
    /// The claim was no longer held (completed, or taken over after its lock expired).
    NotHeld,
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The claim's lock expired and another request took the key over.
    #[error("the idempotency key was taken over by another request")]
    LostClaim,
    #[error("storage failed: {0}")]
    Store(#[from] sqlx::Error),
}

/// How long keys live and how long an in-flight key is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyConfig {
    ttl: Duration,
    lock_timeout: Duration,
}

/// Keys are kept at least this long.
pub const MIN_KEY_TTL: Duration = Duration::from_secs(24 * 3600);

impl IdempotencyConfig {
    /// `ttl` is raised to 24 hours when shorter. `lock_timeout` must outlast a request
    /// (a provider call included); after it, a crashed request's key can be taken over.
    pub fn new(ttl: Duration, lock_timeout: Duration) -> Self {
        Self { ttl: ttl.max(MIN_KEY_TTL), lock_timeout }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }
}

impl Default for IdempotencyConfig {
    /// 24 hours; a 2-minute lock.
    fn default() -> Self {
        Self::new(MIN_KEY_TTL, Duration::from_secs(120))
    }
}

/// The `idempotency_keys` table.
#[derive(Clone, Debug)]
pub struct IdempotencyStore {
    db: Db,
    config: IdempotencyConfig,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    fingerprint: String,
    state: String,
    lock_token: Uuid,
    locked_until: i64,
    resource_id: Option<Uuid>,
    response_status: Option<i32>,
    response_body: Option<String>,
    expires_at: i64,
}

const INSERT: &str = "INSERT INTO idempotency_keys \
     (scope, idempotency_key, fingerprint, state, lock_token, locked_until, created_at, expires_at) \
     VALUES ($1, $2, $3, 'in_flight', $4, $5, $6, $7) ON CONFLICT (scope, idempotency_key) DO NOTHING";
const SELECT: &str = "SELECT fingerprint, state, lock_token, locked_until, resource_id, response_status, \
     response_body, expires_at FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2";
const RENEW_EXPIRED: &str = "UPDATE idempotency_keys SET fingerprint = $3, state = 'in_flight', lock_token = $4, \
     locked_until = $5, resource_id = NULL, response_status = NULL, response_body = NULL, created_at = $6, \
     expires_at = $7 WHERE scope = $1 AND idempotency_key = $2 AND lock_token = $8 AND expires_at <= $6";
const TAKE_OVER: &str = "UPDATE idempotency_keys SET lock_token = $3, locked_until = $4 \
     WHERE scope = $1 AND idempotency_key = $2 AND lock_token = $5 AND state = 'in_flight'";
const COMPLETE: &str = "UPDATE idempotency_keys SET state = 'completed', response_status = $4, response_body = $5, \
     expires_at = $6 WHERE scope = $1 AND idempotency_key = $2 AND lock_token = $3 AND state = 'in_flight'";
const FORGET: &str = "DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2 AND lock_token = $3 \
     AND state = 'in_flight' AND resource_id IS NULL";
const UNLOCK: &str = "UPDATE idempotency_keys SET locked_until = $4 \
     WHERE scope = $1 AND idempotency_key = $2 AND lock_token = $3 AND state = 'in_flight'";
/// Stores the answer of a claim from [`IdempotencyStore::fresh_claim`], whose expiry was set
/// for good when it was claimed (SQLite; PostgreSQL writes the same in `repo/keyed.rs`' CTE).
pub(crate) const ANSWER_FRESH_CLAIM: &str = "UPDATE idempotency_keys SET state = 'completed', \
     response_status = $1, response_body = $2 \
     WHERE scope = $3 AND idempotency_key = $4 AND lock_token = $5 AND state = 'in_flight'";
/// Links the resource a request created to its claim, in the transaction that creates it.
pub(crate) const LINK_RESOURCE: &str = "UPDATE idempotency_keys SET resource_id = $4 \
     WHERE scope = $1 AND idempotency_key = $2 AND lock_token = $3 AND state = 'in_flight'";

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl IdempotencyStore {
    pub fn new(db: Db, config: IdempotencyConfig) -> Self {
        Self { db, config }
    }

    pub fn config(&self) -> IdempotencyConfig {
        self.config
    }

    /// See the module documentation.
    pub async fn begin(
        &self,
        scope: &Scope,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
    ) -> Result<Begin, IdempotencyError> {
        self.begin_at(scope, key, fingerprint, Utc::now()).await
    }

    /// [`Self::begin`] at a given time.
    pub async fn begin_at(
        &self,
        scope: &Scope,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        now: DateTime<Utc>,
    ) -> Result<Begin, IdempotencyError> {
        let now_ms = now.timestamp_millis();
        let locked_until = now_ms.saturating_add(millis(self.config.lock_timeout));
        let expires_at = now_ms.saturating_add(millis(self.config.ttl));
        let (s, k, f) = (scope.as_str(), key.as_str(), fingerprint.as_str());
        let claim = |token, recovered| Claim { scope: scope.clone(), key: key.clone(), token, recovered };
        // Each round either decides or lost a race to another writer and looks again.
        for _ in 0..8 {
            let token = Uuid::new_v4();
            let inserted = on_db!(&self.db, pool => sqlx::query(INSERT)
                .bind(s).bind(k).bind(f).bind(token).bind(locked_until).bind(now_ms).bind(expires_at)
                .execute(pool).await.map(|r| r.rows_affected()))?;
            if inserted == 1 {
                return Ok(Begin::New(claim(token, None)));
            }
            let row: Option<KeyRow> =
                on_db!(&self.db, pool => sqlx::query_as(SELECT).bind(s).bind(k).fetch_optional(pool).await)?;
            let Some(row) = row else { continue };
            if row.expires_at <= now_ms {
                let renewed = on_db!(&self.db, pool => sqlx::query(RENEW_EXPIRED)
                    .bind(s).bind(k).bind(f).bind(token).bind(locked_until).bind(now_ms).bind(expires_at)
                    .bind(row.lock_token)
                    .execute(pool).await.map(|r| r.rows_affected()))?;
                if renewed == 1 {
                    return Ok(Begin::New(claim(token, None)));
                }
                continue;
            }
            if row.fingerprint != f {
                return Ok(Begin::Mismatch);
            }
            if row.state == "completed" {
                let status = row.response_status.and_then(|s| u16::try_from(s).ok()).unwrap_or(500);
                return Ok(Begin::Replay { status, body: row.response_body.unwrap_or_default() });
            }
            if row.locked_until > now_ms {
                return Ok(Begin::InFlight);
            }
            let taken = on_db!(&self.db, pool => sqlx::query(TAKE_OVER)
                .bind(s).bind(k).bind(token).bind(locked_until).bind(row.lock_token)
                .execute(pool).await.map(|r| r.rows_affected()))?;
            if taken == 1 {
                tracing::warn!(scope = s, recovered = ?row.resource_id, "idempotency key taken over after its lock expired");
                return Ok(Begin::New(claim(token, row.resource_id)));
            }
        }
        Ok(Begin::InFlight)
    }

    /// A claim of a key that is not stored yet, for a caller that writes the key's row itself
    /// in the transaction of its work (`in_flight`, with the returned lock and times, in
    /// epoch milliseconds), as [`Self::begin`] would have. Its expiry is set for good: the
    /// TTL counted from the end of the lock, so a key answered while its claim holds is kept
    /// at least the TTL after its answer without another write of the index on `expires_at`.
    pub(crate) fn fresh_claim(&self, scope: &Scope, key: &IdempotencyKey, now: DateTime<Utc>) -> (Claim, ClaimTimes) {
        let now_ms = now.timestamp_millis();
        let locked_until = now_ms.saturating_add(millis(self.config.lock_timeout));
        let times = ClaimTimes {
            locked_until,
            created_at: now_ms,
            expires_at: locked_until.saturating_add(millis(self.config.ttl)),
        };
        (Claim { scope: scope.clone(), key: key.clone(), token: Uuid::new_v4(), recovered: None }, times)
    }

    /// Stores the response to replay. [`IdempotencyError::LostClaim`] when the claim was
    /// taken over meanwhile (the other request answers for the key).
    pub async fn complete(&self, claim: &Claim, status: u16, body: &str) -> Result<(), IdempotencyError> {
        self.complete_at(claim, status, body, Utc::now()).await
    }

    pub async fn complete_at(
        &self,
        claim: &Claim,
        status: u16,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<(), IdempotencyError> {
        let expires_at = now.timestamp_millis().saturating_add(millis(self.config.ttl));
        let done = on_db!(&self.db, pool => sqlx::query(COMPLETE)
            .bind(claim.scope.as_str()).bind(claim.key.as_str()).bind(claim.token)
            .bind(i32::from(status)).bind(body).bind(expires_at)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if done == 1 { Ok(()) } else { Err(IdempotencyError::LostClaim) }
    }

    /// Gives the key up after a request that failed before it did anything, so that a retry
    /// can go on; see [`Released`].
    pub async fn release(&self, claim: &Claim) -> Result<Released, IdempotencyError> {
        self.release_at(claim, Utc::now()).await
    }

    pub async fn release_at(&self, claim: &Claim, now: DateTime<Utc>) -> Result<Released, IdempotencyError> {
        let (s, k) = (claim.scope.as_str(), claim.key.as_str());
        let forgotten = on_db!(&self.db, pool => sqlx::query(FORGET)
            .bind(s).bind(k).bind(claim.token).execute(pool).await.map(|r| r.rows_affected()))?;
        if forgotten == 1 {
            return Ok(Released::Forgotten);
        }
        let unlocked = on_db!(&self.db, pool => sqlx::query(UNLOCK)
            .bind(s).bind(k).bind(claim.token).bind(now.timestamp_millis())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(if unlocked == 1 { Released::Unlocked } else { Released::NotHeld })
    }

    /// Deletes keys expired at `now`; returns how many.
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<u64, IdempotencyError> {
        let sql = "DELETE FROM idempotency_keys WHERE expires_at <= $1";
        Ok(on_db!(&self.db, pool => sqlx::query(sql)
            .bind(now.timestamp_millis()).execute(pool).await.map(|r| r.rows_affected()))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("order-42/retry:1").is_ok());
        for bad in ["", "with space", "tab\t", "é", &"k".repeat(256)] {
            assert_eq!(IdempotencyKey::parse(bad), Err(IdempotencyKeyError), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_ignore_key_order_and_whitespace() {
        let a: Value = serde_json::from_str(r#"{"b": [1, {"y": 2, "x": 1}], "a": "é"}"#).unwrap();
        let b = json!({"a": "é", "b": [1, {"x": 1, "y": 2}]});
        assert_eq!(canonical_json(&a), r#"{"a":"é","b":[1,{"x":1,"y":2}]}"#);
        assert_eq!(Fingerprint::of_json(&a), Fingerprint::of_json(&b));
        assert_ne!(Fingerprint::of_json(&a), Fingerprint::of_json(&json!({"a": "é", "b": [1]})));
        assert_eq!(Fingerprint::of_bytes(b"").as_str().len(), 64);
        assert_eq!(
            Fingerprint::of_bytes(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn scopes_keep_users_and_operations_apart() {
        let user = Uuid::nil();
        assert_ne!(Scope::user(user, CREATE_PAYMENT), Scope::user(user, REFUND_PAYMENT));
        assert_eq!(Scope::user(user, CREATE_PAYMENT).as_str(), format!("user:{user}:payments.create"));
        assert_eq!(Scope::system("collection").as_str(), "system:collection");
    }

    #[test]
    fn ttl_is_at_least_a_day() {
        let config = IdempotencyConfig::new(Duration::from_secs(60), Duration::from_secs(5));
        assert_eq!(config.ttl(), MIN_KEY_TTL);
        assert_eq!(config.lock_timeout(), Duration::from_secs(5));
    }
}
