//! Test support shared by every crate's black-box tests (feature `testing`): a PostgreSQL
//! database that exists for one test.
//!
//! The server comes from `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

use sqlx::Connection;

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
