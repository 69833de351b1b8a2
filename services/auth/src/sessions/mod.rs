//! Sessions back every access token, so that logging out revokes a token at once.

mod redis;
mod sql;

pub use self::redis::RedisSessions;
pub use self::sql::SqlSessions;

use async_trait::async_trait;
use uuid::Uuid;

use crate::Role;

/// One issued token: its `jti`, owner, the role it was issued with and expiry (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub jti: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub expires_at: i64,
}

/// What a live session recorded, to be compared with what its token claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    pub user_id: Uuid,
    /// `None` for sessions made before sessions recorded roles (compare with the user's role).
    pub role: Option<Role>,
}

#[derive(Debug, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct SessionError(pub String);

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create(&self, session: &Session) -> Result<(), SessionError>;
    /// The session, if it exists and has not expired at `now` (Unix seconds).
    async fn active(&self, jti: Uuid, now: i64) -> Result<Option<ActiveSession>, SessionError>;
    /// Removes the session; revoking an unknown session is not an error.
    async fn revoke(&self, jti: Uuid) -> Result<(), SessionError>;
    /// Deletes sessions that expired before `now`; stores that expire keys themselves return 0.
    async fn purge_expired(&self, now: i64) -> Result<u64, SessionError>;
}
