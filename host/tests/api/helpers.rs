//! Test harness: spawns the application on port 0 against a fresh database.
//!
//! PostgreSQL and Redis come from `TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`). Each PostgreSQL test gets its own database, dropped afterwards;
//! each Redis test its own key namespace.

use std::time::Duration;

use host::config::RedisTarget;
use host::http::AppState;
use host::{Application, Config};
use lessor_auth::Role;
use lessor_store::DatabaseTarget;
pub use lessor_store::testing::PgTestDb;
use secrecy::SecretString;
use serde_json::Value;
use tempfile::TempDir;

pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded: SQLite file, sessions in SQL, throttling in memory.
    Sqlite,
    /// PostgreSQL with sessions in SQL.
    Postgres,
    /// PostgreSQL with sessions and throttling in Redis.
    PostgresRedis,
}

/// Runs an `async fn(Backend)` test once per backend, as `name::sqlite`, `name::postgres`
/// and `name::postgres_redis`.
#[macro_export]
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::helpers::Backend;
            #[tokio::test]
            async fn sqlite() { super::$name(Backend::Sqlite).await }
            #[tokio::test]
            async fn postgres() { super::$name(Backend::Postgres).await }
            #[tokio::test]
            async fn postgres_redis() { super::$name(Backend::PostgresRedis).await }
        }
    )*};
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub pg: Option<PgTestDb>,
    _dir: TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A configuration for tests: port 0, a temporary data directory, the backend's engines.
pub async fn test_config(backend: Backend, dir: &TempDir) -> (Config, Option<PgTestDb>) {
    let mut config = Config::defaults();
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.database = DatabaseTarget::from_config(None, dir.path()).unwrap();
    config.redis_namespace = format!("lessor-test-{}", uuid::Uuid::new_v4().simple());
    let mut pg = None;
    if backend != Backend::Sqlite {
        let db = PgTestDb::create("lessor_test").await;
        config.database = DatabaseTarget::from_config(Some(&db.url), dir.path()).unwrap();
        config.database_max_connections = 4;
        pg = Some(db);
    }
    if backend == Backend::PostgresRedis {
        config.redis = Some(RedisTarget(url::Url::parse(&redis_url()).unwrap()));
    }
    (config, pg)
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_prepared(backend, tweak, |_| {}).await
    }

    /// Like [`TestApp::spawn_with`], with a last word on the built application before it runs
    /// (e.g. extra supervised tasks).
    pub async fn spawn_prepared(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        prepare: impl FnOnce(&mut Application),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (mut config, pg) = test_config(backend, &dir).await;
        tweak(&mut config);
        let mut app = Application::build(config).await.expect("application builds");
        prepare(&mut app);
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self { base, client, state, pg, _dir: dir, _stop: stop }
    }

    /// The data directory (where the SQLite database lives on the embedded backend).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a user directly through the auth service; returns its e-mail.
    pub async fn create_user(&self, role: Role) -> String {
        let email = format!("{}-{}@example.com", role, uuid::Uuid::new_v4().simple());
        self.state.auth.create_user(&email, SecretString::from(PASSWORD.to_owned()), role).await.expect("user created");
        email
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/login"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// A fresh user of `role` and a valid access token for it.
    pub async fn token_for(&self, role: Role) -> String {
        let email = self.create_user(role).await;
        let response = self.login(&email, PASSWORD).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn get_authed(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap()
    }
}

/// Asserts a problem+json response with the given status and problem type slug; returns it.
pub async fn assert_problem(response: reqwest::Response, status: u16, slug: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], format!("/problems/{slug}"), "problem type in {body}");
    assert_eq!(body["status"], status);
    body
}

/// The claims of a JWT, decoded without verification (tests only).
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Sends raw bytes to `base` (`http://host:port`) and reads the answer until the server
/// closes the connection: for requests a well-behaved client would not send.
pub async fn raw_http(base: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}
