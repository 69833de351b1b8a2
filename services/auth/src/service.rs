//! The authentication rules: who may log in, what a token proves, how it is revoked.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use uuid::Uuid;

use crate::gate::{AuthMetrics, GateError, HashGate};
use crate::sessions::{Session, SessionStore};
use crate::throttle::{Admission, LoginThrottle, ThrottlePolicy, address_key};
use crate::tokens::{TokenCodec, TokenError};
use crate::users::{User, UserRepoError, UserRepository};
use crate::{Email, EmailError, PasswordError, PasswordHasher, Role};

/// What a valid, unrevoked access token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub role: Role,
    pub jti: Uuid,
    pub expires_at: i64,
}

/// A freshly issued access token.
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    #[error("too many failed logins; retry in {} s", retry_after.as_secs())]
    TooManyAttempts { retry_after: Duration },
    #[error("every password hashing slot is busy; retry in {} s", retry_after.as_secs())]
    Busy { retry_after: Duration },
    #[error("token expired")]
    TokenExpired,
    #[error("token invalid")]
    TokenInvalid,
    #[error("token revoked")]
    TokenRevoked,
    #[error("authentication backend unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email: {0}")]
    Email(#[from] EmailError),
    #[error("password: {0}")]
    Password(PasswordError),
    #[error("a user with this e-mail already exists")]
    DuplicateEmail,
    #[error("every password hashing slot is busy; retry in {} s", retry_after.as_secs())]
    Busy { retry_after: Duration },
    #[error("internal error: {0}")]
    Internal(String),
}

pub struct AuthService {
    users: Arc<dyn UserRepository>,
    sessions: Arc<dyn SessionStore>,
    throttle: Arc<dyn LoginThrottle>,
    policy: ThrottlePolicy,
    tokens: TokenCodec,
    hasher: PasswordHasher,
    gate: HashGate,
    /// Verified against when the account does not exist, so both cases take the same time.
    decoy_hash: String,
}

fn now() -> i64 {
    Utc::now().timestamp()
}

/// The throttle keys one login attempt is counted under.
struct AttemptKeys {
    address: String,
    /// Per (account, address); absent when the e-mail is not even well-formed.
    pair: Option<String>,
    account: Option<String>,
}

/// What the reservations said about an attempt before its password is checked.
struct Reserved {
    /// The address (or this account from it) has other attempts in the window.
    suspect: bool,
    /// Failed or in-flight attempts on the account, from anywhere, before this one.
    account_failures: u32,
}

enum Refusal {
    /// The password was checked and is wrong (or the account does not exist).
    Wrong,
    /// The attempt did not happen (busy, backend down): its reservations are given back.
    NotTried(AuthError),
}

impl AuthService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        sessions: Arc<dyn SessionStore>,
        throttle: Arc<dyn LoginThrottle>,
        policy: ThrottlePolicy,
        tokens: TokenCodec,
        gate: HashGate,
    ) -> Self {
        let hasher = PasswordHasher::default();
        let decoy_hash = hasher
            .hash_new(&SecretString::from(Uuid::new_v4().to_string()))
            .expect("hashing a fixed-size random string cannot fail");
        Self { users, sessions, throttle, policy, tokens, hasher, gate, decoy_hash }
    }

    pub fn token_ttl_secs(&self) -> i64 {
        self.tokens.ttl_secs()
    }

    /// The `lessor_auth_*` metrics, for the host's registry.
    pub fn metrics(&self) -> &AuthMetrics {
        &self.gate.metrics
    }

    /// Password verifications run since start (wrong passwords and unknown accounts included).
    pub fn password_verifications(&self) -> u64 {
        self.gate.verifications()
    }

    /// Checks the password and issues a token backed by a new session.
    ///
    /// Order matters: the attempt is counted (per address, per account and address, per
    /// account) before the password is checked, so concurrent wrong passwords cannot all be
    /// verified; a correct password takes its counts back.
    #[tracing::instrument(name = "auth.login", skip_all, fields(client = %client))]
    pub async fn login(&self, email: &str, password: SecretString, client: IpAddr) -> Result<IssuedToken, AuthError> {
        let email = Email::parse(email).ok();
        let address = address_key(client);
        let keys = AttemptKeys {
            address: format!("address:{address}"),
            pair: email.as_ref().map(|e| format!("pair:{e}:{address}")),
            account: email.as_ref().map(|e| format!("account:{e}")),
        };
        let reserved = self.reserve(&keys).await?;
        let user = match self.attempt(email.as_ref(), password, &reserved).await {
            Ok(user) => user,
            Err(Refusal::Wrong) => {
                tracing::info!("login refused");
                return Err(AuthError::InvalidCredentials);
            }
            Err(Refusal::NotTried(e)) => {
                self.give_back(&keys).await;
                return Err(e);
            }
        };
        self.forgive(&keys).await;

        let claims = self.tokens.claims_for(user.id, user.role, now());
        let access_token = self.tokens.encode(&claims).await.map_err(|e| AuthError::Internal(e.to_string()))?;
        let session = Session { jti: claims.jti, user_id: user.id, role: user.role, expires_at: claims.exp };
        self.sessions.create(&session).await.map_err(unavailable)?;
        tracing::info!(user_id = %user.id, "login");
        Ok(IssuedToken { access_token, expires_in: claims.exp - claims.iat })
    }

    /// Counts the attempt under each key, refusing (and taking back what it counted) when a
    /// limit is reached. The account itself has no limit: it is slowed down instead.
    async fn reserve(&self, keys: &AttemptKeys) -> Result<Reserved, AuthError> {
        let p = &self.policy;
        let address = self.reserve_one(&keys.address, p.max_failures_per_address).await?;
        let mut pair = 0;
        if let Some(key) = &keys.pair {
            pair = match self.reserve_one(key, p.max_failures_per_account_address).await {
                Ok(count) => count,
                Err(e) => {
                    self.release(&keys.address).await;
                    return Err(e);
                }
            };
        }
        let mut account = 0;
        if let Some(key) = &keys.account {
            account = match self.reserve_one(key, u32::MAX).await {
                Ok(count) => count,
                Err(e) => {
                    self.release(&keys.address).await;
                    if let Some(pair) = &keys.pair {
                        self.release(pair).await;
                    }
                    return Err(e);
                }
            };
        }
        Ok(Reserved { suspect: address > 1 || pair > 1, account_failures: account.saturating_sub(1) })
    }

    async fn reserve_one(&self, key: &str, limit: u32) -> Result<u32, AuthError> {
        match self.throttle.reserve(key, limit, self.policy.window).await.map_err(unavailable)? {
            Admission::Admitted { count } => Ok(count),
            Admission::Refused { retry_after } => {
                self.gate.metrics.throttled.inc();
                Err(AuthError::TooManyAttempts { retry_after: retry_after.max(Duration::from_secs(1)) })
            }
        }
    }

    /// Slows the account down, waits for a hashing slot, verifies.
    async fn attempt(&self, email: Option<&Email>, password: SecretString, r: &Reserved) -> Result<User, Refusal> {
        let delay = self.policy.account_delay(r.account_failures);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let stored = match email {
            Some(e) => self.users.by_email(e).await.map_err(|e| Refusal::NotTried(internal(e)))?,
            None => None,
        };
        let hash = stored.as_ref().map_or(self.decoy_hash.clone(), |s| s.password_hash.clone());
        let hasher = self.hasher.clone();
        let count = self.gate.verification_counter();
        let verify = move || {
            count();
            hasher.verify(&password, &hash)
        };
        let matches = self.gate.run(r.suspect, verify).await.map_err(|e| Refusal::NotTried(gate_error(e)))?;
        match stored {
            Some(s) if matches => Ok(s.user),
            _ => Err(Refusal::Wrong),
        }
    }

    /// A correct password: the address is forgiven this attempt, the (account, address) pair
    /// all its failures, and the account this attempt (its other failures keep slowing it).
    async fn forgive(&self, keys: &AttemptKeys) {
        if let Some(pair) = &keys.pair
            && let Err(e) = self.throttle.clear(pair).await
        {
            tracing::warn!(error = %e, "could not clear login failures");
        }
        self.give_back_account_and_address(keys).await;
    }

    /// The attempt did not happen: every count it made is taken back.
    async fn give_back(&self, keys: &AttemptKeys) {
        if let Some(pair) = &keys.pair {
            self.release(pair).await;
        }
        self.give_back_account_and_address(keys).await;
    }

    async fn give_back_account_and_address(&self, keys: &AttemptKeys) {
        self.release(&keys.address).await;
        if let Some(account) = &keys.account {
            self.release(account).await;
        }
    }

    async fn release(&self, key: &str) {
        if let Err(e) = self.throttle.release(key).await {
            tracing::warn!(error = %e, "could not take back a login attempt count");
        }
    }

    /// Verifies a bearer token, that its session has not been revoked, and that the token
    /// claims the user and role its session recorded (a re-signed token cannot change them).
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.tokens.decode(token).await.map_err(|e| match e {
            TokenError::Expired => AuthError::TokenExpired,
            _ => AuthError::TokenInvalid,
        })?;
        let Some(session) = self.sessions.active(claims.jti, now()).await.map_err(unavailable)? else {
            return Err(AuthError::TokenRevoked);
        };
        let recorded_role = match session.role {
            Some(role) => Some(role),
            None => self.users.by_id(session.user_id).await.map_err(internal)?.map(|u| u.role),
        };
        if session.user_id != claims.sub || recorded_role != Some(claims.role) {
            tracing::warn!(jti = %claims.jti, "token claims differ from its session; refused");
            return Err(AuthError::TokenInvalid);
        }
        Ok(Principal { user_id: claims.sub, role: claims.role, jti: claims.jti, expires_at: claims.exp })
    }

    /// Revokes the session behind the caller's token; the token stops working at once.
    pub async fn logout(&self, principal: &Principal) -> Result<(), AuthError> {
        self.sessions.revoke(principal.jti).await.map_err(unavailable)?;
        tracing::info!(user_id = %principal.user_id, "logout");
        Ok(())
    }

    pub async fn create_user(&self, email: &str, password: SecretString, role: Role) -> Result<User, CreateUserError> {
        let email = Email::parse(email)?;
        let hasher = self.hasher.clone();
        let hash = self.gate.run(false, move || hasher.hash_new(&password)).await.map_err(|e| match e {
            GateError::Busy(busy) => CreateUserError::Busy { retry_after: busy.retry_after },
            GateError::Failed => CreateUserError::Internal("password hashing failed".into()),
        })?;
        self.gate.metrics.hashes.inc();
        let hash = hash.map_err(CreateUserError::Password)?;
        let user = User { id: Uuid::new_v4(), email, role, created_at: Utc::now() };
        match self.users.insert(&user, &hash).await {
            Ok(()) => Ok(user),
            Err(UserRepoError::DuplicateEmail) => Err(CreateUserError::DuplicateEmail),
            Err(e) => Err(CreateUserError::Internal(e.to_string())),
        }
    }

    pub async fn user(&self, id: Uuid) -> Result<Option<User>, AuthError> {
        self.users.by_id(id).await.map_err(internal)
    }

    /// Drops expired sessions from stores that do not expire them themselves.
    pub async fn purge_expired_sessions(&self) -> Result<u64, AuthError> {
        self.sessions.purge_expired(now()).await.map_err(unavailable)
    }
}

fn internal(e: UserRepoError) -> AuthError {
    match e {
        UserRepoError::Store(e) => AuthError::Unavailable(e.to_string()),
        other => AuthError::Internal(other.to_string()),
    }
}

fn gate_error(e: GateError) -> AuthError {
    match e {
        GateError::Busy(busy) => AuthError::Busy { retry_after: busy.retry_after },
        GateError::Failed => AuthError::Internal("password verification failed".into()),
    }
}

fn unavailable(e: impl std::fmt::Display) -> AuthError {
    AuthError::Unavailable(e.to_string())
}
