use async_trait::async_trait;
use chrono::Utc;
use lessor_store::{Db, on_db};
use uuid::Uuid;

use super::{ActiveSession, Session, SessionError, SessionStore};

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
        let sql = "INSERT INTO sessions (jti, user_id, role, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)";
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(s.jti)
            .bind(s.user_id)
            .bind(s.role.as_str())
            .bind(s.expires_at)
            .bind(Utc::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map(drop)
        .map_err(unavailable)
    }

    async fn active(&self, jti: Uuid, now: i64) -> Result<Option<ActiveSession>, SessionError> {
        let sql = "SELECT user_id, role FROM sessions WHERE jti = $1 AND expires_at > $2";
        let row: Option<(Uuid, String)> =
            on_db!(&self.db, pool => sqlx::query_as(sql).bind(jti).bind(now).fetch_optional(pool).await)
                .map_err(unavailable)?;
        // Rows from before roles were recorded hold '' (see migration 0007).
        Ok(row.map(|(user_id, role)| ActiveSession { user_id, role: role.parse().ok() }))
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
