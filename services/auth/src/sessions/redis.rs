use async_trait::async_trait;
use lessor_store::RedisConn;
use lessor_store::redis::AsyncCommands;
use uuid::Uuid;

use super::{ActiveSession, Session, SessionError, SessionStore};

/// Sessions as Redis keys `<namespace>:session:<jti>` whose TTL is the token's lifetime; the
/// value is `<user id> <role>` (older sessions hold only the user id).
pub struct RedisSessions {
    redis: RedisConn,
}

impl RedisSessions {
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    fn key(&self, jti: Uuid) -> String {
        self.redis.key(&format!("session:{jti}"))
    }
}

fn unavailable(e: lessor_store::redis::RedisError) -> SessionError {
    SessionError(e.to_string())
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn create(&self, s: &Session) -> Result<(), SessionError> {
        let ttl = (s.expires_at - chrono::Utc::now().timestamp()).max(1) as u64;
        let mut conn = self.redis.conn().await.map_err(unavailable)?;
        let value = format!("{} {}", s.user_id, s.role);
        conn.set_ex::<_, _, ()>(self.key(s.jti), value, ttl).await.map_err(unavailable)
    }

    async fn active(&self, jti: Uuid, _now: i64) -> Result<Option<ActiveSession>, SessionError> {
        let mut conn = self.redis.conn().await.map_err(unavailable)?;
        let value: Option<String> = conn.get(self.key(jti)).await.map_err(unavailable)?;
        let Some(value) = value else { return Ok(None) };
        let (user, role) = value.split_once(' ').unwrap_or((&value, ""));
        let user_id = user.parse().map_err(|_| SessionError(format!("session {jti}: corrupt value")))?;
        Ok(Some(ActiveSession { user_id, role: role.parse().ok() }))
    }

    async fn revoke(&self, jti: Uuid) -> Result<(), SessionError> {
        let mut conn = self.redis.conn().await.map_err(unavailable)?;
        conn.del::<_, ()>(self.key(jti)).await.map_err(unavailable)
    }

    async fn purge_expired(&self, _now: i64) -> Result<u64, SessionError> {
        Ok(0) // Redis expires the keys itself.
    }
}
