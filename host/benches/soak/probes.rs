//! What the soak samples besides the host process's own figures (`Served::rss_kib`,
//! `Served::open_fds`): the database's connections and the event stream's length.

use sqlx::PgPool;

/// A fresh PostgreSQL database for the soak's host, dropped by [`Database::drop_now`].
pub struct Database {
    admin: PgPool,
    pub name: String,
    pub url: String,
}

/// The server the soak uses: `TEST_POSTGRES_URL`, else the local one.
fn server_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl Database {
    pub async fn create() -> Self {
        let admin_url = server_url();
        let admin = PgPool::connect(&admin_url).await.expect("connect to PostgreSQL");
        let name = format!("lessor_soak_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("create the soak database");
        let (base, _) = admin_url.rsplit_once('/').expect("a database URL ends in /<name>");
        let url = format!("{base}/{name}");
        Self { admin, name, url }
    }

    /// Connections to this database now (`pg_stat_activity`), the host's pool among them.
    pub async fn connections(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
            .bind(&self.name)
            .fetch_one(&self.admin)
            .await
            .expect("pg_stat_activity")
    }

    pub async fn drop_now(&self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = sqlx::query(&drop).execute(&self.admin).await {
            eprintln!("could not drop {}: {e}", self.name);
        }
    }
}

/// The host's Redis namespace and its event stream `<namespace>:payments`.
pub struct Stream {
    connection: redis::aio::MultiplexedConnection,
    pub namespace: String,
}

impl Stream {
    pub async fn connect(url: &str, namespace: &str) -> Self {
        let client = redis::Client::open(url).expect("Redis URL");
        let connection = client.get_multiplexed_async_connection().await.expect("connect to Redis");
        Self { connection, namespace: namespace.to_owned() }
    }

    /// `XLEN <namespace>:payments`.
    pub async fn len(&mut self) -> u64 {
        let key = format!("{}:payments", self.namespace);
        redis::cmd("XLEN").arg(&key).query_async(&mut self.connection).await.expect("XLEN")
    }

    /// Deletes every key of the namespace.
    pub async fn remove_namespace(&mut self) {
        let pattern = format!("{}:*", self.namespace);
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(&pattern).query_async(&mut self.connection).await.unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<u64, _> = redis::cmd("DEL").arg(&keys).query_async(&mut self.connection).await;
        }
    }
}
