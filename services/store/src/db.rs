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
    pub timeouts: Timeouts,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(5), timeouts: Timeouts::default() }
    }
}

/// How long one statement may hold a connection, so a stuck query cannot hold the pool.
/// `None` turns a PostgreSQL timeout off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// PostgreSQL `statement_timeout`: a statement running longer is cancelled (SQLSTATE 57014).
    pub statement: Option<Duration>,
    /// PostgreSQL `lock_timeout`: a statement waiting longer for a lock fails (SQLSTATE 55P03).
    pub lock: Option<Duration>,
    /// PostgreSQL `idle_in_transaction_session_timeout`: a session idle this long inside a
    /// transaction is ended, releasing its locks.
    pub idle_in_transaction: Option<Duration>,
    /// The statement and lock timeouts while migrating (PostgreSQL); `None`: no limit.
    pub migration: Option<Duration>,
    /// SQLite: how long a statement waits for another connection's lock before `database is locked`.
    pub busy: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            statement: Some(Duration::from_secs(30)),
            lock: Some(Duration::from_secs(5)),
            idle_in_transaction: Some(Duration::from_secs(60)),
            migration: None,
            busy: Duration::from_secs(5),
        }
    }
}

impl Timeouts {
    /// The session settings every PostgreSQL connection starts with (milliseconds; 0 is off).
    fn postgres_options(&self) -> [(&'static str, String); 3] {
        let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis().max(1)).to_string();
        [
            ("statement_timeout", ms(self.statement)),
            ("lock_timeout", ms(self.lock)),
            ("idle_in_transaction_session_timeout", ms(self.idle_in_transaction)),
        ]
    }
}

/// Whether a connection coming back to the pool may be handed out again: not if it is still
/// inside a transaction once queued work has run. sqlx rolls back a dropped `Transaction` by
/// queueing a ROLLBACK (run by the ping here), but a `begin` future dropped after its BEGIN ran
/// and before the `Transaction` existed leaves the connection in the transaction with nothing to
/// end it. Handed out again, every `begin_with` on it fails ("non-zero transaction depth") and on
/// SQLite its open write transaction holds the write lock: every write of the host answered 503
/// until a restart. Such a connection is closed instead, which rolls the transaction back.
async fn reusable<C: sqlx::Connection>(conn: &mut C) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("a database connection came back to the pool inside a transaction; closing it (rolls it back)");
        return Ok(false);
    }
    Ok(true)
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
                    .application_name("lessor")
                    .options(settings.timeouts.postgres_options());
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
                    .after_release(|conn, _| Box::pin(reusable(conn)))
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
                    .busy_timeout(settings.timeouts.busy);
                // SQLite admits one writer at a time; a small pool keeps lock waits short.
                let pool = SqlitePoolOptions::new()
                    .max_connections(settings.max_connections.min(4))
                    // In process: nothing to lose between uses.
                    .test_before_acquire(false)
                    .acquire_timeout(settings.acquire_timeout)
                    .after_release(|conn, _| Box::pin(reusable(conn)))
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::Connect { target: target.to_string(), source })?;
                Ok(Self::Sqlite(pool))
            }
        }
    }

    /// Applies every pending migration with the migration timeout in place of the statement
    /// and lock timeouts (a migration may rewrite a large table, or wait for another replica's
    /// migration lock). The connection used is closed afterwards, not returned to the pool.
    pub async fn migrate_within(&self, timeout: Option<Duration>) -> Result<(), StoreError> {
        match self {
            Self::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                conn.close_on_drop();
                let ms = timeout.map_or(0, |d| d.as_millis().max(1));
                sqlx::query(&format!("SET statement_timeout = {ms}")).execute(&mut *conn).await?;
                sqlx::query(&format!("SET lock_timeout = {ms}")).execute(&mut *conn).await?;
                POSTGRES_MIGRATIONS.run(&mut *conn).await?;
            }
            Self::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    pub fn engine(&self) -> Engine {
        match self {
            Self::Postgres(_) => Engine::Postgres,
            Self::Sqlite(_) => Engine::Sqlite,
        }
    }

    /// Applies every pending migration of this engine's dialect, without a time limit.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrate_within(None).await
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

    /// What a `begin` future dropped between its BEGIN and the `Transaction` it would have
    /// returned leaves behind (a request cut off at that instant): a pooled connection inside a
    /// transaction with nothing to end it. Made here by forgetting a `Transaction`.
    async fn leak_a_transaction<DB: sqlx::Database>(pool: &sqlx::Pool<DB>, begin: &'static str) {
        let mut conn = pool.acquire().await.unwrap();
        let tx = sqlx::Connection::begin_with(&mut *conn, begin).await.unwrap();
        std::mem::forget(tx);
        assert!(sqlx::Connection::is_in_transaction(&*conn));
    }

    fn one_connection() -> PoolSettings {
        PoolSettings { max_connections: 1, ..PoolSettings::default() }
    }

    #[tokio::test]
    async fn sqlite_connection_left_in_a_transaction_is_not_handed_out_again() {
        let dir = tempfile::tempdir().unwrap();
        let target = DatabaseTarget::from_config(None, dir.path()).unwrap();
        let Db::Sqlite(pool) = Db::connect_with(&target, &one_connection()).await.unwrap() else { unreachable!() };
        leak_a_transaction(&pool, "BEGIN IMMEDIATE").await;
        // Before the pool checked returned connections, this failed with "attempted to call
        // begin_with at non-zero transaction depth", on every later write.
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("a write transaction begins");
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let conn = pool.acquire().await.unwrap();
        assert!(!sqlx::Connection::is_in_transaction(&*conn));
    }

    #[tokio::test]
    async fn postgres_connection_left_in_a_transaction_is_not_handed_out_again() {
        let url =
            std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let target = DatabaseTarget::from_config(Some(&url), std::path::Path::new(".")).unwrap();
        let Db::Postgres(pool) = Db::connect_with(&target, &one_connection()).await.unwrap() else { unreachable!() };
        leak_a_transaction(&pool, "BEGIN").await;
        // Before, the next `begin` made a SAVEPOINT inside the leaked transaction, and its commit
        // committed nothing: the connection stayed idle in a transaction.
        let mut conn = pool.acquire().await.unwrap();
        assert!(!sqlx::Connection::is_in_transaction(&*conn));
        // PostgreSQL refuses a SAVEPOINT outside a transaction block: the server's own word that
        // the connection handed out is not inside the leaked transaction.
        let outside = sqlx::query("SAVEPOINT probe").execute(&mut *conn).await.unwrap_err();
        assert!(outside.to_string().contains("transaction blocks"), "{outside}");
    }
}
