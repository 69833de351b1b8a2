use async_trait::async_trait;
use chrono::Utc;
use lessor_store::{Db, on_db};
use uuid::Uuid;

use super::{Session, SessionError, SessionStore};

/// Sessions in the `sessions` table (embedded mode, or PostgreSQL without Redis).
pub struct SqlSessions {
    db: Db,
}

impl SqlSessions {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn unavailable(e: sqlx::Error) -> SessionError {
    SessionError(e.to_string())
}

#[async_trait]
impl SessionStore for SqlSessions {
    async fn create(&self, s: &Session) -> Result<(), SessionError> {
        let sql = "INSERT INTO sessions (jti, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4)";
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(s.jti)
            .bind(s.user_id)
            .bind(s.expires_at)
            .bind(Utc::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map(drop)
        .map_err(unavailable)
    }

    async fn is_active(&self, jti: Uuid, now: i64) -> Result<bool, SessionError> {
        let sql = "SELECT COUNT(*) FROM sessions WHERE jti = $1 AND expires_at > $2";
        let n: i64 = on_db!(&self.db, pool => sqlx::query_scalar(sql).bind(jti).bind(now).fetch_one(pool).await)
            .map_err(unavailable)?;
        Ok(n > 0)
    }

    async fn revoke(&self, jti: Uuid) -> Result<(), SessionError> {
        on_db!(&self.db, pool => sqlx::query("DELETE FROM sessions WHERE jti = $1").bind(jti).execute(pool).await.map(|r| r.rows_affected()))
            .map(drop)
            .map_err(unavailable)
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, SessionError> {
        let done = on_db!(&self.db, pool => sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()));
        done.map_err(unavailable)
    }
}
