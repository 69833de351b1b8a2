//! Secrets the server makes itself when the operator configured none.

use chrono::Utc;
use lessor_store::{Db, on_db};
use rand::RngCore;

const SIGNING_KEY: &str = "jwt_hs256_key";

/// The HS256 signing key kept in `server_secrets`: created once (64 random bytes) and then
/// shared by every replica on this database, so tokens survive restarts.
pub async fn load_or_create_signing_key(db: &Db) -> Result<Vec<u8>, sqlx::Error> {
    let mut fresh = vec![0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut fresh);
    let insert =
        "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
    on_db!(db, pool => sqlx::query(insert).bind(SIGNING_KEY).bind(&fresh).bind(Utc::now()).execute(pool).await.map(|r| r.rows_affected()))?;
    let select = "SELECT value FROM server_secrets WHERE name = $1";
    on_db!(db, pool => sqlx::query_scalar(select).bind(SIGNING_KEY).fetch_one(pool).await)
}
