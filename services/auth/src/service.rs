//! The authentication rules: who may log in, what a token proves, how it is revoked.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use uuid::Uuid;

use crate::sessions::{Session, SessionStore};
use crate::throttle::{LoginThrottle, ThrottlePolicy};
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
    /// Verified against when the account does not exist, so both cases take the same time.
    decoy_hash: String,
}

fn now() -> i64 {
    Utc::now().timestamp()
}

impl AuthService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        sessions: Arc<dyn SessionStore>,
        throttle: Arc<dyn LoginThrottle>,
        policy: ThrottlePolicy,
        tokens: TokenCodec,
    ) -> Self {
        let hasher = PasswordHasher::default();
        let decoy_hash = hasher
            .hash_new(&SecretString::from(Uuid::new_v4().to_string()))
            .expect("hashing a fixed-size random string cannot fail");
        Self { users, sessions, throttle, policy, tokens, hasher, decoy_hash }
    }

    pub fn token_ttl_secs(&self) -> i64 {
        self.tokens.ttl_secs()
    }

    /// Checks the password and issues a token backed by a new session.
    #[tracing::instrument(name = "auth.login", skip_all, fields(client = %client))]
    pub async fn login(&self, email: &str, password: SecretString, client: IpAddr) -> Result<IssuedToken, AuthError> {
        let email = Email::parse(email).ok();
        let account_key = email.as_ref().map(|e| format!("account:{e}"));
        let address_key = format!("address:{client}");

        self.refuse_if_throttled(&address_key, self.policy.max_failures_per_address).await?;
        if let Some(key) = &account_key {
            self.refuse_if_throttled(key, self.policy.max_failures_per_account).await?;
        }

        let stored = match &email {
            Some(e) => self.users.by_email(e).await.map_err(internal)?,
            None => None,
        };
        let hash = stored.as_ref().map_or(self.decoy_hash.clone(), |s| s.password_hash.clone());
        let hasher = self.hasher.clone();
        let matches = tokio::task::spawn_blocking(move || hasher.verify(&password, &hash))
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;

        let user = match stored {
            Some(s) if matches => s.user,
            _ => {
                for key in account_key.iter().chain([&address_key]) {
                    self.throttle.record_failure(key, self.policy.window).await.map_err(unavailable)?;
                }
                tracing::info!("login refused");
                return Err(AuthError::InvalidCredentials);
            }
        };
        if let Some(key) = &account_key {
            self.throttle.clear(key).await.map_err(unavailable)?;
        }

        let claims = self.tokens.claims_for(user.id, user.role, now());
        let access_token = self.tokens.encode(&claims).map_err(|e| AuthError::Internal(e.to_string()))?;
        let session = Session { jti: claims.jti, user_id: user.id, expires_at: claims.exp };
        self.sessions.create(&session).await.map_err(unavailable)?;
        tracing::info!(user_id = %user.id, "login");
        Ok(IssuedToken { access_token, expires_in: claims.exp - claims.iat })
    }

    async fn refuse_if_throttled(&self, key: &str, max: u32) -> Result<(), AuthError> {
        let failures = self.throttle.failures(key).await.map_err(unavailable)?;
        if failures.count >= max {
            let retry_after = failures.resets_in.max(Duration::from_secs(1));
            return Err(AuthError::TooManyAttempts { retry_after });
        }
        Ok(())
    }

    /// Verifies a bearer token and that its session has not been revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.tokens.decode(token).map_err(|e| match e {
            TokenError::Expired => AuthError::TokenExpired,
            _ => AuthError::TokenInvalid,
        })?;
        if !self.sessions.is_active(claims.jti, now()).await.map_err(unavailable)? {
            return Err(AuthError::TokenRevoked);
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
        let hash = tokio::task::spawn_blocking(move || hasher.hash_new(&password))
            .await
            .map_err(|e| CreateUserError::Internal(e.to_string()))?
            .map_err(CreateUserError::Password)?;
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

fn unavailable(e: impl std::fmt::Display) -> AuthError {
    AuthError::Unavailable(e.to_string())
}
