//! A Redis connection that is opened on first use and re-opened after failures, so the host
//! starts (and reports itself not ready) while Redis is down instead of refusing to start.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;
use url::Url;

/// A shared, lazily connected Redis handle. Keys are prefixed with a namespace so several
/// deployments (or test runs) can share one server.
#[derive(Clone)]
pub struct RedisConn {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    shown_url: String,
    namespace: String,
    manager: OnceCell<ConnectionManager>,
}

impl fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConn")
            .field("url", &self.inner.shown_url)
            .field("namespace", &self.inner.namespace)
            .finish()
    }
}

impl RedisConn {
    /// Validates the URL; nothing is connected until the first command.
    pub fn new(url: &Url, namespace: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url.as_str())?;
        Ok(Self {
            inner: std::sync::Arc::new(Inner {
                client,
                shown_url: crate::target::redacted(url),
                namespace: namespace.to_owned(),
                manager: OnceCell::new(),
            }),
        })
    }

    /// `namespace:part`, the key every user of this handle should write under.
    pub fn key(&self, part: &str) -> String {
        format!("{}:{part}", self.inner.namespace)
    }

    /// A multiplexed connection that reconnects by itself once it exists.
    pub async fn conn(&self) -> redis::RedisResult<ConnectionManager> {
        let manager = self
            .inner
            .manager
            .get_or_try_init(|| async {
                // Short, bounded reconnects: with the library's default backoff factor a
                // command could wait a minute or more while Redis is down.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Duration::from_secs(2))
                    .set_response_timeout(Duration::from_secs(2))
                    .set_number_of_retries(1)
                    .set_factor(2)
                    .set_max_delay(500);
                self.inner.client.get_connection_manager_with_config(config).await
            })
            .await?;
        Ok(manager.clone())
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await.map(drop)
    }
}
