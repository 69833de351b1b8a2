//! The database's identity: a random id written once into `database_identity` and recorded
//! beside every Redis Stream the relay publishes to, so a Redis namespace is never shared by
//! two databases (see `services/events/README.md`, "Database identity and restores").

use lessor_store::{Db, on_db};

use crate::now_ms;

/// This database's id, created on first use. A restored dump or a template copy keeps the
/// id of the database it came from; a fresh database gets a new one.
pub async fn database_id(db: &Db) -> Result<String, sqlx::Error> {
    let insert = "INSERT INTO database_identity (singleton, database_id, created_at) VALUES (1, $1, $2) \
                  ON CONFLICT (singleton) DO NOTHING";
    let select = "SELECT database_id FROM database_identity WHERE singleton = 1";
    let fresh = uuid::Uuid::new_v4().to_string();
    on_db!(db, pool => {
        sqlx::query(insert).bind(&fresh).bind(now_ms()).execute(pool).await?;
        sqlx::query_scalar(select).fetch_one(pool).await
    })
}
