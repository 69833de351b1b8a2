//! Test support shared by every crate's black-box tests (feature `testing`): a PostgreSQL
//! database that exists for one test, and a migrated database of either engine.
//!
//! The server comes from `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

use std::path::Path;

use sqlx::Connection;
use tempfile::TempDir;

/// The engine a test runs on (the store's own [`crate::Engine`]).
pub use crate::Engine;
use crate::{DatabaseTarget, Db};

pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh PostgreSQL database, dropped (cutting open connections) when this value drops.
pub struct PgTestDb {
    pub name: String,
    pub url: String,
}

impl PgTestDb {
    /// Creates `<prefix>_<random>`, e.g. `lessor_test_3f…`.
    pub async fn create(prefix: &str) -> Self {
        let admin = postgres_admin_url();
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL reachable (TEST_POSTGRES_URL)");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
        let mut url = url::Url::parse(&admin).expect("TEST_POSTGRES_URL is a URL");
        url.set_path(&name);
        Self { name, url: url.to_string() }
    }

    /// Drops the database now, cutting any open connections.
    pub async fn drop_now(&self) {
        drop_database(&self.name).await;
    }
}

async fn drop_database(name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a runtime of our own on another thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a test runtime");
            rt.block_on(drop_database(&name));
        })
        .join();
    }
}

/// A migrated database of one engine (a SQLite file in a temporary directory, or a
/// [`PgTestDb`]), gone when dropped.
pub struct TestDb {
    pub db: Db,
    // Dropped in this order: the pool, then the PostgreSQL database, then the directory.
    pg: Option<PgTestDb>,
    dir: TempDir,
}

impl TestDb {
    /// A migrated database; on PostgreSQL a fresh one named `<pg_prefix>_<random>`.
    pub async fn new(engine: Engine, pg_prefix: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let pg = match engine {
            Engine::Sqlite => None,
            Engine::Postgres => Some(PgTestDb::create(pg_prefix).await),
        };
        let url = pg.as_ref().map(|pg| pg.url.as_str());
        let target = DatabaseTarget::from_config(url, dir.path()).expect("a database target");
        let db = Db::connect(&target).await.expect("database connects");
        db.migrate().await.expect("migrations apply");
        Self { db, pg, dir }
    }

    /// The PostgreSQL database, on that engine.
    pub fn pg(&self) -> Option<&PgTestDb> {
        self.pg.as_ref()
    }

    /// The temporary directory (the SQLite file's data directory on that engine).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
