//! The pool handle shared by every repository.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::target::{DatabaseTarget, redacted};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Which engine a [`Db`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Sqlite,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Sqlite => "sqlite",
        }
    }
}

/// A connection pool on one of the two engines. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to {target}: {source}")]
    Connect { target: String, source: sqlx::Error },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// Pool and connection settings that apply to either engine.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(5) }
    }
}

/// A PostgreSQL connection idle at least this long is pinged before it is used again, so one
/// the server or network dropped meanwhile is replaced instead of failing a request.
const PING_AFTER_IDLE: Duration = Duration::from_secs(10);

impl Db {
    /// Opens a pool. The SQLite file (and its directory) is created when missing.
    pub async fn connect(target: &DatabaseTarget) -> Result<Self, StoreError> {
        Self::connect_with(target, &PoolSettings::default()).await
    }

    pub async fn connect_with(target: &DatabaseTarget, settings: &PoolSettings) -> Result<Self, StoreError> {
        match target {
            DatabaseTarget::Postgres(url) => {
                let options = PgConnectOptions::from_str(url.as_str())
                    .map_err(|source| StoreError::Connect { target: redacted(url), source })?
                    .application_name("lessor");
                let pool = PgPoolOptions::new()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(settings.acquire_timeout)
                    // sqlx pings every connection it hands out by default: one more round trip
                    // per statement. Only a connection idle for a while can have died unseen.
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_AFTER_IDLE {
                                sqlx::Connection::ping(conn).await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::Connect { target: redacted(url), source })?;
                Ok(Self::Postgres(pool))
            }
            DatabaseTarget::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|source| StoreError::DataDir { path: dir.display().to_string(), source })?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                // SQLite admits one writer at a time; a small pool keeps lock waits short.
                let pool = SqlitePoolOptions::new()
                    .max_connections(settings.max_connections.min(4))
                    // In process: nothing to lose between uses.
                    .test_before_acquire(false)
                    .acquire_timeout(settings.acquire_timeout)
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::Connect { target: target.to_string(), source })?;
                Ok(Self::Sqlite(pool))
            }
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Self::Postgres(_) => Engine::Postgres,
            Self::Sqlite(_) => Engine::Sqlite,
        }
    }

    /// Applies every pending migration of this engine's dialect.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Self::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
            Self::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let one: i32 = crate::on_db!(self, pool => sqlx::query_scalar("SELECT 1").fetch_one(pool).await)?;
        debug_assert_eq!(one, 1);
        Ok(())
    }

    /// Closes every connection; pending queries finish first.
    pub async fn close(&self) {
        crate::on_db!(self, pool => pool.close().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_file_is_created_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let target = DatabaseTarget::from_config(None, &dir.path().join("nested")).unwrap();
        let db = Db::connect(&target).await.unwrap();
        db.migrate().await.unwrap();
        db.migrate().await.unwrap(); // idempotent
        db.ping().await.unwrap();
        assert!(dir.path().join("nested").join(crate::target::SQLITE_FILE).exists());
        assert_eq!(db.engine(), Engine::Sqlite);
    }
}
