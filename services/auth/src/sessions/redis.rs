use async_trait::async_trait;
use lessor_store::RedisConn;
use lessor_store::redis::AsyncCommands;
use uuid::Uuid;

use super::{Session, SessionError, SessionStore};

/// Sessions as Redis keys `<namespace>:session:<jti>` whose TTL is the token's lifetime.
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
        conn.set_ex::<_, _, ()>(self.key(s.jti), s.user_id.to_string(), ttl).await.map_err(unavailable)
    }

    async fn is_active(&self, jti: Uuid, _now: i64) -> Result<bool, SessionError> {
        let mut conn = self.redis.conn().await.map_err(unavailable)?;
        conn.exists(self.key(jti)).await.map_err(unavailable)
    }

    async fn revoke(&self, jti: Uuid) -> Result<(), SessionError> {
        let mut conn = self.redis.conn().await.map_err(unavailable)?;
        conn.del::<_, ()>(self.key(jti)).await.map_err(unavailable)
    }

    async fn purge_expired(&self, _now: i64) -> Result<u64, SessionError> {
        Ok(0) // Redis expires the keys itself.
    }
}
