//! Storage for Lessor: one [`Db`] handle over either PostgreSQL or an embedded SQLite file.
//!
//! Repositories elsewhere write their SQL once and run it on both engines through
//! [`on_db!`]: the body is compiled once per engine, so each dialect is type-checked.
//! Both dialects accept `$1`-style placeholders, `RETURNING` and `ON CONFLICT`; where they
//! differ, a repository matches on [`Db`] itself.

mod db;
mod redis_conn;
mod target;
#[cfg(feature = "testing")]
pub mod testing;

pub use db::{Db, Engine, StoreError};
pub use db::{PoolSettings, Timeouts};
pub use redis_conn::RedisConn;
pub use target::{DatabaseTarget, SQLITE_FILE, TargetError};

pub use ::redis;
/// Re-exported so repositories name the same sqlx version as the pool they receive.
pub use sqlx;

/// Runs `$body` with `$pool` bound to the engine's pool (`&PgPool` or `&SqlitePool`).
///
/// ```text
/// let n: i64 = on_db!(&db, pool => sqlx::query_scalar("SELECT 1").fetch_one(pool).await)?;
/// ```
#[macro_export]
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Postgres($pool) => $body,
            $crate::Db::Sqlite($pool) => $body,
        }
    };
}
