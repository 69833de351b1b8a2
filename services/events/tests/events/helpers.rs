//! Test harness: a fresh database per test (SQLite file or PostgreSQL database), the shared
//! Redis under a namespace of the test's own, or a `redis-server` of the test's own.
//!
//! PostgreSQL and Redis come from `TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`).

use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lessor_events::{
    Event, EventHandler, HandlerError, Outbox, PAYMENTS, PaymentCompleted, RedisStreamSink, Relay, RelayConfig,
    mark_handled,
};
use lessor_store::redis::{self, aio::ConnectionManager};
pub use lessor_store::testing::Engine;
use lessor_store::{Db, on_db};
use uuid::Uuid;

/// Runs an `async fn(Engine)` test once per engine, as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_each_engine {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::helpers::Engine;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name(Engine::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name(Engine::Postgres).await }
        }
    )*};
}

pub fn redis_url() -> url::Url {
    let raw = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    url::Url::parse(&raw).unwrap()
}

/// A migrated database of one engine (`lessor_store::testing::TestDb`) with this crate's
/// `test_effects` table, gone when dropped.
pub struct TestDb(lessor_store::testing::TestDb);

impl Deref for TestDb {
    type Target = lessor_store::testing::TestDb;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Logs to the test output when `TEST_LOG` is set (e.g. `TEST_LOG=lessor_events=debug`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

impl TestDb {
    pub async fn new(engine: Engine) -> Self {
        init_logging();
        let t = lessor_store::testing::TestDb::new(engine, "lessor_events_test").await;
        let sql = "CREATE TABLE test_effects (group_name TEXT NOT NULL, event_id TEXT NOT NULL)";
        on_db!(&t.db, pool => sqlx::query(sql).execute(pool).await.map(drop)).unwrap();
        Self(t)
    }

    pub fn outbox(&self) -> Outbox {
        Outbox::new(self.db.clone())
    }

    /// How many effects `group` wrote for each event (see [`Recorder::transactional`]).
    pub async fn effects(&self, group: &str) -> HashMap<Uuid, usize> {
        let sql = "SELECT event_id FROM test_effects WHERE group_name = $1";
        let ids: Vec<String> =
            on_db!(&self.db, pool => sqlx::query_scalar(sql).bind(group).fetch_all(pool).await).unwrap();
        let mut counts = HashMap::new();
        for id in ids {
            *counts.entry(id.parse().unwrap()).or_default() += 1;
        }
        counts
    }
}

/// A `payment.completed` event with distinct ids.
pub fn payment_completed(amount: i64) -> Event {
    Event::new(
        PaymentCompleted {
            payment_id: Uuid::new_v4(),
            lease_id: Uuid::new_v4(),
            installment_id: Some(Uuid::new_v4()),
            amount,
            currency: "EUR".into(),
            provider: "stripe".into(),
            provider_tx_id: format!("pi_{amount}"),
        }
        .into(),
    )
}

/// Writes `n` payment events to the outbox, each in a transaction of its own; their ids in order.
pub async fn write_events(outbox: &Outbox, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let event = payment_completed(1_000 + i as i64);
        outbox.enqueue(PAYMENTS, &event).await.unwrap();
        ids.push(event.id);
    }
    ids
}

/// A sink to the shared Redis under a namespace of the test's own; the namespace.
pub fn redis_sink(url: &url::Url) -> (RedisStreamSink, String) {
    let namespace = format!("events-test-{}", Uuid::new_v4().simple());
    (RedisStreamSink::new(url, &namespace).unwrap(), namespace)
}

/// A relay to `sink` with short timings.
pub fn redis_relay(db: &Db, sink: &RedisStreamSink) -> Relay {
    Relay::new(db.clone(), Arc::new(sink.clone()), fast_relay_config())
}

pub fn fast_relay_config() -> RelayConfig {
    let mut config = RelayConfig::new(PAYMENTS);
    config.batch = 50;
    config.poll = Duration::from_millis(100);
    config.min_backoff = Duration::from_millis(50);
    config.max_backoff = Duration::from_millis(400);
    config
}

/// Runs the relay until nothing is left to publish.
pub async fn drain(relay: &Relay) {
    for _ in 0..1000 {
        let pass = relay.run_once().await.expect("relay pass");
        assert!(pass.leader);
        if pass.sequenced == 0 && pass.published == 0 && pass.lag.is_none() {
            return;
        }
    }
    panic!("the relay did not drain the outbox");
}

/// The entries of a stream: `(id, event JSON)`.
pub async fn stream_entries(conn: &mut ConnectionManager, key: &str) -> Vec<(String, String)> {
    let reply: lessor_store::redis::streams::StreamRangeReply =
        redis::cmd("XRANGE").arg(key).arg("-").arg("+").query_async(conn).await.unwrap();
    reply.ids.into_iter().map(|e| (e.id.clone(), e.get::<String>("event").unwrap())).collect()
}

pub async fn pending_count(conn: &mut ConnectionManager, key: &str, group: &str) -> i64 {
    let reply: lessor_store::redis::streams::StreamPendingReply =
        redis::cmd("XPENDING").arg(key).arg(group).query_async(conn).await.unwrap();
    reply.count() as i64
}

/// Polls `check` until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A handler that counts how often it ran per event, optionally failing or hanging.
#[derive(Clone, Default)]
pub struct Recorder {
    calls: Arc<Mutex<HashMap<Uuid, usize>>>,
    order: Arc<Mutex<Vec<Uuid>>>,
    /// Fails each event's first `n` calls (after writing its effects, when transactional).
    fail_first: usize,
    /// Never returns (a consumer that hangs and is then killed).
    hang: bool,
    /// Writes effects to `test_effects` through `mark_handled` in one transaction.
    transactional: Option<(Db, String)>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn failing_first(mut self, n: usize) -> Self {
        self.fail_first = n;
        self
    }

    pub fn hanging(mut self) -> Self {
        self.hang = true;
        self
    }

    pub fn transactional(mut self, db: &Db, group: &str) -> Self {
        self.transactional = Some((db.clone(), group.to_owned()));
        self
    }

    pub fn calls(&self) -> HashMap<Uuid, usize> {
        self.calls.lock().unwrap().clone()
    }

    pub fn total_calls(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }

    /// Events in the order they were first handled.
    pub fn order(&self) -> Vec<Uuid> {
        self.order.lock().unwrap().clone()
    }

    async fn write_effect(db: &Db, group: &str, event: &Event) -> Result<(), sqlx::Error> {
        on_db!(db, pool => {
            let mut tx = pool.begin().await?;
            if mark_handled(&mut *tx, group, event.id).await? {
                sqlx::query("INSERT INTO test_effects (group_name, event_id) VALUES ($1, $2)")
                    .bind(group)
                    .bind(event.id.to_string())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Ok(())
        })
    }
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let calls = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(event.id).or_default();
            *n += 1;
            if *n == 1 {
                self.order.lock().unwrap().push(event.id);
            }
            *n
        };
        if self.hang {
            std::future::pending::<()>().await;
        }
        if let Some((db, group)) = &self.transactional {
            Self::write_effect(db, group, event).await.map_err(HandlerError::new)?;
        }
        if calls <= self.fail_first {
            return Err(HandlerError::new(format!("failing call {calls} on purpose")));
        }
        Ok(())
    }
}

/// A `redis-server` of the test's own on a free port, without persistence: stopping it
/// loses everything it held, like a crashed cache node.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Self { port, child: None };
        server.restart().await;
        server
    }

    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("redis://127.0.0.1:{}", self.port)).unwrap()
    }

    /// Starts the server (again) on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let client = redis::Client::open(self.url().as_str()).unwrap();
        for _ in 0..200 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills the server (SIGKILL: no shutdown, no save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plain connection for assertions.
pub async fn redis_admin(url: &url::Url) -> ConnectionManager {
    redis::Client::open(url.as_str()).unwrap().get_connection_manager().await.unwrap()
}

/// Stops background loops: each task gets `signal()`, the test calls `stop()`.
pub struct Stop(tokio::sync::watch::Sender<bool>);

impl Stop {
    pub fn new() -> Self {
        Self(tokio::sync::watch::channel(false).0)
    }

    pub fn signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}
