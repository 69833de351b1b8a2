//! Configuration: defaults, then an optional TOML file, then `LESSOR_*` environment
//! variables. Unknown keys and invalid values stop start-up with a message naming the key.

mod http;
mod plugins;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use lessor_store::DatabaseTarget;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

pub use http::{HttpSettings, RateLimits};
pub use plugins::{PluginConfig, ProviderSettings};

use crate::http::client::TrustedProxies;

pub const ENV_PREFIX: &str = "LESSOR_";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The configuration as written: every key optional, nothing checked yet.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    addr: String,
    data_dir: PathBuf,
    database_url: Option<String>,
    database_max_connections: u32,
    database_acquire_timeout_ms: u64,
    database_statement_timeout_ms: u64,
    database_lock_timeout_ms: u64,
    database_idle_in_transaction_timeout_ms: u64,
    database_migration_timeout_ms: u64,
    database_busy_timeout_ms: u64,
    task_max_failures: u32,
    task_failure_window_secs: u64,
    redis_url: Option<String>,
    redis_namespace: String,
    meili_url: Option<String>,
    meili_api_key: Option<SecretString>,
    meili_index: String,
    log_format: LogFormat,
    log_level: String,
    jwt_secret: Option<SecretString>,
    jwt_previous_secret: Option<SecretString>,
    token_ttl_secs: u64,
    max_body_bytes: usize,
    migrate_on_start: bool,
    /// Named `login_max_failures_per_account` before per-address counting (same variable works).
    #[serde(alias = "login_max_failures_per_account")]
    login_max_failures_per_account_address: u32,
    login_max_failures_per_address: u32,
    login_window_secs: u64,
    login_account_max_delay_ms: u64,
    login_hash_concurrency: usize,
    login_queue_wait_ms: u64,
    trusted_proxies: ListOrString,
    shutdown_grace_secs: u64,
    header_read_timeout_secs: u64,
    request_timeout_secs: u64,
    body_read_timeout_secs: u64,
    max_connections: usize,
    rate_limit_per_token: u32,
    rate_limit_per_address: u32,
    webhook_rate_limit: u32,
    cors_origins: String,
    metrics_token: Option<SecretString>,
    metrics_addr: Option<String>,
    plugin_dir: Option<PathBuf>,
    plugin_cache_dir: Option<PathBuf>,
    plugin_require_signatures: bool,
    plugin_trusted_keys: BTreeMap<String, String>,
    plugin_reload_ms: u64,
    plugin_call_timeout_ms: u64,
    plugin_memory_mib: usize,
    plugin_max_concurrent_calls: u32,
    plugins: BTreeMap<String, BTreeMap<String, SecretString>>,
    reconcile_interval_secs: u64,
    webhook_retry_window_secs: u64,
    collection_interval_secs: u64,
    collection_retry_days: Vec<u32>,
    ton_api_url: Option<String>,
    ton_api_key: Option<SecretString>,
    ton_mnemonic: Option<SecretString>,
    ton_wallet_version: Option<String>,
    ton_recipient: Option<String>,
    ton_amount_nanoton: Option<u64>,
    ton_network: Option<String>,
    ton_wallet_id: Option<i64>,
    ton_poll_interval_ms: Option<u64>,
    ton_message_ttl_secs: Option<u64>,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            database_url: None,
            database_max_connections: 16,
            database_acquire_timeout_ms: 5_000,
            database_statement_timeout_ms: 30_000,
            database_lock_timeout_ms: 5_000,
            database_idle_in_transaction_timeout_ms: 60_000,
            database_migration_timeout_ms: 0,
            database_busy_timeout_ms: 5_000,
            task_max_failures: 10,
            task_failure_window_secs: 300,
            redis_url: None,
            redis_namespace: "lessor".into(),
            meili_url: None,
            meili_api_key: None,
            meili_index: "leases".into(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            jwt_secret: None,
            jwt_previous_secret: None,
            token_ttl_secs: 3600,
            max_body_bytes: 64 * 1024,
            migrate_on_start: true,
            login_max_failures_per_account_address: 5,
            login_max_failures_per_address: 50,
            login_window_secs: 900,
            login_account_max_delay_ms: 2000,
            login_hash_concurrency: 0,
            login_queue_wait_ms: 1500,
            trusted_proxies: ListOrString::One(String::new()),
            shutdown_grace_secs: 30,
            header_read_timeout_secs: 10,
            request_timeout_secs: 60,
            body_read_timeout_secs: 30,
            max_connections: 10_000,
            rate_limit_per_token: 600,
            rate_limit_per_address: 1200,
            webhook_rate_limit: 600,
            cors_origins: String::new(),
            metrics_token: None,
            metrics_addr: None,
            plugin_dir: None,
            plugin_cache_dir: None,
            plugin_require_signatures: false,
            plugin_trusted_keys: BTreeMap::new(),
            plugin_reload_ms: 2000,
            plugin_call_timeout_ms: 20_000,
            plugin_memory_mib: 64,
            plugin_max_concurrent_calls: 64,
            plugins: BTreeMap::new(),
            reconcile_interval_secs: 30,
            webhook_retry_window_secs: 3600,
            collection_interval_secs: 3600,
            collection_retry_days: vec![1, 3, 7],
            ton_api_url: None,
            ton_api_key: None,
            ton_mnemonic: None,
            ton_wallet_version: None,
            ton_recipient: None,
            ton_amount_nanoton: None,
            ton_network: None,
            ton_wallet_id: None,
            ton_poll_interval_ms: None,
            ton_message_ttl_secs: None,
        }
    }
}

/// A list given as a TOML array or as one comma-separated string (as environment variables are).
#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrString {
    List(Vec<String>),
    One(String),
}

impl ListOrString {
    fn joined(&self) -> String {
        match self {
            Self::List(items) => items.join(","),
            Self::One(s) => s.clone(),
        }
    }
}

/// The checked configuration the host runs with. `Debug` never shows a secret.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseTarget,
    pub database_max_connections: u32,
    /// How long a request waits for a pooled connection (or for the database to accept a new
    /// one) before it is answered 503: while the database is down, requests wait this long.
    pub database_acquire_timeout: Duration,
    /// Statement, lock and idle-in-transaction timeouts (PostgreSQL), busy timeout (SQLite),
    /// and the statement timeout of migrations.
    pub database_timeouts: lessor_store::Timeouts,
    /// When a failing background task is restarted and when it is down for good.
    pub tasks: crate::supervisor::Policy,
    pub redis: Option<RedisTarget>,
    pub redis_namespace: String,
    /// Meilisearch for lease search; the embedded index under `data_dir/search` when unset.
    pub meili: Option<MeiliSettings>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub jwt_secret: Option<SecretString>,
    /// The secret `jwt_secret` replaced: still accepted for verification, never for signing.
    pub jwt_previous_secret: Option<SecretString>,
    pub token_ttl_secs: u64,
    pub max_body_bytes: usize,
    pub migrate_on_start: bool,
    pub login_max_failures_per_account_address: u32,
    pub login_max_failures_per_address: u32,
    pub login_window_secs: u64,
    /// The cap on the progressive delay of logins to an account with many recent failures.
    pub login_account_max_delay: Duration,
    /// Password hashes run at once; 0: one per core.
    pub login_hash_concurrency: usize,
    /// How long a login waits for a hashing slot before 503.
    pub login_queue_wait: Duration,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    pub shutdown_grace_secs: u64,
    /// Timeouts, the connection cap, CORS and where `/metrics` is served.
    pub http: HttpSettings,
    /// Requests per minute past login; 0 turns a limit off.
    pub rate_limits: RateLimits,
    pub plugins: PluginConfig,
    /// How often `serve` asks providers about payments whose outcome is unknown.
    pub reconcile_interval: Duration,
    /// How long after a payment (refund) was created a provider event that cannot be applied yet
    /// is answered 409 "deliver again later"; past it, 200 `ignored` (logged and counted).
    pub webhook_retry_window: Duration,
    /// How often `serve` collects due installments; `None`: never (use `host collect-due`).
    pub collection_interval: Option<Duration>,
    /// Days between collection attempts of an installment; its length is the number of retries.
    pub collection_retry_days: Vec<u32>,
    /// The chain worker (recording completed payments on TON); off without `ton_api_url`.
    pub chain: lessor_chain::ChainConfig,
}

#[derive(Debug, Clone)]
pub struct MeiliSettings {
    pub url: Url,
    pub api_key: Option<SecretString>,
    pub index: String,
}

/// A Redis URL whose password is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget(pub Url);

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        write!(f, "RedisTarget({shown})")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration key `{key}` (env {env}): {reason}")]
    Invalid { key: String, env: String, reason: String },
    #[error("configuration file {path}: {reason}")]
    File { path: String, reason: String },
}

fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

fn invalid(key: &str, reason: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid { key: key.to_owned(), env: env_name(key), reason: reason.to_string() }
}

impl Config {
    /// Where installed plugin packages live.
    pub fn plugin_store_dir(&self) -> PathBuf {
        self.plugins.store_dir.clone().unwrap_or_else(|| self.data_dir.join("plugins"))
    }

    /// Where precompiled plugin components are cached.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.plugins.cache_dir.clone().unwrap_or_else(|| self.data_dir.join("plugin-cache"))
    }

    /// Loads defaults, then `file` (which must exist when given), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_figment(Self::figment(file)?)
    }

    /// The embedded defaults with a few keys changed: what tests and tools start from.
    pub fn defaults() -> Self {
        Self::from_raw(RawConfig::default()).expect("the defaults are valid")
    }

    fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::File { path: path.display().to_string(), reason: "not found".into() });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        Ok(figment.merge(Env::prefixed(ENV_PREFIX).split("__")))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let raw: RawConfig = figment.extract().map_err(describe)?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let addr: SocketAddr = raw.addr.trim().parse().map_err(|e| invalid("addr", format!("`{}`: {e}", raw.addr)))?;
        let http = http::settings(&raw)?;
        let database = DatabaseTarget::from_config(raw.database_url.as_deref(), &raw.data_dir)
            .map_err(|e| invalid("database_url", e))?;
        let redis = match raw.redis_url.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => {
                let url = Url::parse(s).map_err(|e| invalid("redis_url", format!("not a URL: {e}")))?;
                if !matches!(url.scheme(), "redis" | "rediss") || url.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("redis_url", "expected redis://host[:port][/db]"));
                }
                Some(RedisTarget(url))
            }
        };
        let meili = match raw.meili_url.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => {
                let url = Url::parse(s).map_err(|e| invalid("meili_url", format!("not a URL: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("meili_url", "expected http(s)://host[:port]"));
                }
                Some(MeiliSettings { url, api_key: raw.meili_api_key, index: raw.meili_index })
            }
        };
        for (key, secret) in [("jwt_secret", &raw.jwt_secret), ("jwt_previous_secret", &raw.jwt_previous_secret)] {
            if let Some(secret) = secret
                && secrecy::ExposeSecret::expose_secret(secret).len() < 32
            {
                return Err(invalid(key, "must be at least 32 bytes"));
            }
        }
        if raw.jwt_previous_secret.is_some() && raw.jwt_secret.is_none() {
            return Err(invalid("jwt_previous_secret", "is set, but `jwt_secret` is not"));
        }
        let trusted_proxies =
            TrustedProxies::parse(&raw.trusted_proxies.joined()).map_err(|e| invalid("trusted_proxies", e))?;
        if raw.login_queue_wait_ms > 60_000 {
            return Err(invalid("login_queue_wait_ms", "must be at most 60000"));
        }
        if raw.login_account_max_delay_ms > 60_000 {
            return Err(invalid("login_account_max_delay_ms", "must be at most 60000"));
        }
        if raw.redis_namespace.is_empty() || raw.redis_namespace.chars().any(|c| c.is_whitespace() || c == ':') {
            return Err(invalid("redis_namespace", "must be non-empty, without spaces or `:`"));
        }
        if !(1..=86_400 * 7).contains(&raw.token_ttl_secs) {
            return Err(invalid("token_ttl_secs", "must be between 1 and 604800"));
        }
        if !(1024..=64 * 1024 * 1024).contains(&raw.max_body_bytes) {
            return Err(invalid("max_body_bytes", "must be between 1024 and 67108864"));
        }
        if raw.database_max_connections == 0 {
            return Err(invalid("database_max_connections", "must be at least 1"));
        }
        let ms_or_off = |key: &str, ms: u64| -> Result<Option<Duration>, ConfigError> {
            if ms > 86_400_000 {
                return Err(invalid(key, "must be at most 86400000 (0 turns it off)"));
            }
            Ok((ms > 0).then(|| Duration::from_millis(ms)))
        };
        let database_timeouts = lessor_store::Timeouts {
            statement: ms_or_off("database_statement_timeout_ms", raw.database_statement_timeout_ms)?,
            lock: ms_or_off("database_lock_timeout_ms", raw.database_lock_timeout_ms)?,
            idle_in_transaction: ms_or_off(
                "database_idle_in_transaction_timeout_ms",
                raw.database_idle_in_transaction_timeout_ms,
            )?,
            migration: ms_or_off("database_migration_timeout_ms", raw.database_migration_timeout_ms)?,
            busy: ms_or_off("database_busy_timeout_ms", raw.database_busy_timeout_ms)?.unwrap_or_default(),
        };
        if !(100..=60_000).contains(&raw.database_acquire_timeout_ms) {
            return Err(invalid("database_acquire_timeout_ms", "must be between 100 and 60000"));
        }
        if raw.task_max_failures == 0 {
            return Err(invalid("task_max_failures", "must be at least 1"));
        }
        if !(1..=86_400).contains(&raw.task_failure_window_secs) {
            return Err(invalid("task_failure_window_secs", "must be between 1 and 86400"));
        }
        let tasks = crate::supervisor::Policy {
            max_failures: raw.task_max_failures,
            failure_window: Duration::from_secs(raw.task_failure_window_secs),
            ..crate::supervisor::Policy::default()
        };
        if raw.login_max_failures_per_account_address == 0 {
            return Err(invalid("login_max_failures_per_account_address", "must be at least 1"));
        }
        if raw.login_max_failures_per_address == 0 {
            return Err(invalid("login_max_failures_per_address", "must be at least 1"));
        }
        tracing_subscriber::EnvFilter::try_new(&raw.log_level).map_err(|e| invalid("log_level", e))?;
        if !(100..=3_600_000).contains(&raw.plugin_reload_ms) {
            return Err(invalid("plugin_reload_ms", "must be between 100 and 3600000"));
        }
        if !(100..=600_000).contains(&raw.plugin_call_timeout_ms) {
            return Err(invalid("plugin_call_timeout_ms", "must be between 100 and 600000"));
        }
        if !(1..=4096).contains(&raw.plugin_memory_mib) {
            return Err(invalid("plugin_memory_mib", "must be between 1 and 4096"));
        }
        if !(1..=1024).contains(&raw.plugin_max_concurrent_calls) {
            return Err(invalid("plugin_max_concurrent_calls", "must be between 1 and 1024"));
        }
        if !(1..=86_400).contains(&raw.reconcile_interval_secs) {
            return Err(invalid("reconcile_interval_secs", "must be between 1 and 86400"));
        }
        if !(1..=259_200).contains(&raw.webhook_retry_window_secs) {
            return Err(invalid("webhook_retry_window_secs", "must be between 1 and 259200 (3 days)"));
        }
        if raw.collection_retry_days.len() > 20 || raw.collection_retry_days.iter().any(|d| !(1..=90).contains(d)) {
            return Err(invalid("collection_retry_days", "must be at most 20 waits of 1-90 days each"));
        }
        let rate_limits = RateLimits {
            per_token: raw.rate_limit_per_token,
            per_address: raw.rate_limit_per_address,
            webhook: raw.webhook_rate_limit,
        };
        let chain = lessor_chain::ChainConfig {
            api_url: raw.ton_api_url.filter(|u| !u.trim().is_empty()),
            api_key: raw.ton_api_key,
            mnemonic: raw.ton_mnemonic,
            wallet_version: raw.ton_wallet_version,
            recipient: raw.ton_recipient,
            amount_nanoton: raw.ton_amount_nanoton,
            network: raw.ton_network,
            wallet_id: raw.ton_wallet_id,
            poll_interval_ms: raw.ton_poll_interval_ms,
            message_ttl_secs: raw.ton_message_ttl_secs,
            derived: Default::default(),
        };
        if chain.enabled() {
            // Checks every ton_* value and derives the wallet (kept for the worker) before anything starts.
            chain.settings().map_err(|e| {
                let key = e.env.strip_prefix(ENV_PREFIX).unwrap_or(e.env).to_lowercase();
                invalid(&key, e.reason)
            })?;
        }
        let trusted = plugins::trusted_keys(&raw.plugin_trusted_keys).map_err(|e| invalid("plugin_trusted_keys", e))?;
        if raw.plugin_require_signatures && trusted.is_empty() {
            return Err(invalid(
                "plugin_require_signatures",
                "is set, but `plugin_trusted_keys` names no publisher key",
            ));
        }
        let plugins = PluginConfig {
            store_dir: raw.plugin_dir,
            cache_dir: raw.plugin_cache_dir,
            signatures: lessor_plugin_registry::SignaturePolicy { required: raw.plugin_require_signatures, trusted },
            reload_interval: std::time::Duration::from_millis(raw.plugin_reload_ms),
            call_timeout: std::time::Duration::from_millis(raw.plugin_call_timeout_ms),
            memory_bytes: raw.plugin_memory_mib << 20,
            max_concurrent_calls: raw.plugin_max_concurrent_calls,
            settings: ProviderSettings::new(raw.plugins),
        };
        Ok(Self {
            addr,
            data_dir: raw.data_dir,
            database,
            database_max_connections: raw.database_max_connections,
            database_acquire_timeout: Duration::from_millis(raw.database_acquire_timeout_ms),
            database_timeouts,
            tasks,
            redis,
            redis_namespace: raw.redis_namespace,
            meili,
            log_format: raw.log_format,
            log_level: raw.log_level,
            jwt_secret: raw.jwt_secret,
            jwt_previous_secret: raw.jwt_previous_secret,
            token_ttl_secs: raw.token_ttl_secs,
            max_body_bytes: raw.max_body_bytes,
            migrate_on_start: raw.migrate_on_start,
            login_max_failures_per_account_address: raw.login_max_failures_per_account_address,
            login_max_failures_per_address: raw.login_max_failures_per_address,
            login_window_secs: raw.login_window_secs.max(1),
            login_account_max_delay: Duration::from_millis(raw.login_account_max_delay_ms),
            login_hash_concurrency: raw.login_hash_concurrency,
            login_queue_wait: Duration::from_millis(raw.login_queue_wait_ms),
            trusted_proxies,
            shutdown_grace_secs: raw.shutdown_grace_secs,
            http,
            rate_limits,
            plugins,
            reconcile_interval: Duration::from_secs(raw.reconcile_interval_secs),
            webhook_retry_window: Duration::from_secs(raw.webhook_retry_window_secs),
            collection_interval: (raw.collection_interval_secs > 0)
                .then(|| Duration::from_secs(raw.collection_interval_secs)),
            collection_retry_days: raw.collection_retry_days,
            chain,
        })
    }
}

/// Turns figment's error into one that names the key and its environment variable.
fn describe(err: figment::Error) -> ConfigError {
    let mut key = err.path.join(".");
    let reason = match &err.kind {
        figment::error::Kind::UnknownField(field, expected) => {
            if err.path.last() != Some(field) {
                key = if key.is_empty() { field.clone() } else { format!("{key}.{field}") };
            }
            format!("unknown key; known keys are {}", expected.join(", "))
        }
        kind => kind.to_string(),
    };
    let source = err.metadata.as_ref().map(|m| m.name.to_string()).unwrap_or_default();
    invalid(&key, if source.is_empty() { reason } else { format!("{reason} (from {source})") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut f = Figment::new();
        for (k, v) in pairs {
            f = f.merge(Serialized::default(k, v));
        }
        Config::from_figment(f)
    }

    #[test]
    fn defaults_are_embedded() {
        let c = with(&[]).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:8080");
        assert!(matches!(c.database, DatabaseTarget::Sqlite(_)));
        assert!(c.redis.is_none());
    }

    #[test]
    fn database_timeouts_and_task_policy_are_read_and_checked() {
        let numbers = |pairs: &[(&str, u64)]| {
            let mut f = Figment::new();
            for (k, v) in pairs {
                f = f.merge(Serialized::default(k, v));
            }
            Config::from_figment(f)
        };
        let c = numbers(&[
            ("database_statement_timeout_ms", 1500),
            ("database_lock_timeout_ms", 0),
            ("database_busy_timeout_ms", 250),
            ("database_acquire_timeout_ms", 800),
            ("task_max_failures", 4),
            ("task_failure_window_secs", 30),
        ])
        .unwrap();
        let t = c.database_timeouts;
        assert_eq!(t.statement, Some(Duration::from_millis(1500)));
        assert_eq!(t.lock, None, "0 turns it off");
        assert_eq!(t.idle_in_transaction, Some(Duration::from_secs(60)));
        assert_eq!(t.migration, None);
        assert_eq!(t.busy, Duration::from_millis(250));
        assert_eq!(c.database_acquire_timeout, Duration::from_millis(800));
        let err = numbers(&[("database_acquire_timeout_ms", 0)]).unwrap_err().to_string();
        assert!(err.contains("LESSOR_DATABASE_ACQUIRE_TIMEOUT_MS"), "{err}");
        assert_eq!((c.tasks.max_failures, c.tasks.failure_window), (4, Duration::from_secs(30)));
        let err = numbers(&[("task_max_failures", 0)]).unwrap_err().to_string();
        assert!(err.contains("LESSOR_TASK_MAX_FAILURES"), "{err}");
        let err = numbers(&[("database_statement_timeout_ms", 99_999_999_999)]).unwrap_err().to_string();
        assert!(err.contains("LESSOR_DATABASE_STATEMENT_TIMEOUT_MS"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = with(&[("colour", "blue")]).unwrap_err().to_string();
        assert!(err.contains("`colour`") && err.contains("LESSOR_COLOUR"), "{err}");
    }

    #[test]
    fn malformed_urls_are_named() {
        let err = with(&[("database_url", "postgres//x")]).unwrap_err().to_string();
        assert!(err.contains("database_url"), "{err}");
        let err = with(&[("redis_url", "http://x")]).unwrap_err().to_string();
        assert!(err.contains("redis_url"), "{err}");
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = with(&[
            ("database_url", "postgres://app:s3cr3t-db@db/lessor"),
            ("redis_url", "redis://:s3cr3t-redis@cache:6379"),
            ("jwt_secret", "s3cr3t-jwt-s3cr3t-jwt-s3cr3t-jwt-0000"),
            ("meili_url", "http://search:7700"),
            ("meili_api_key", "s3cr3t-meili"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn plugin_settings_come_per_provider_and_stay_secret() {
        let c = Config::from_figment(Figment::new().merge(Serialized::default(
            "plugins",
            serde_json::json!({"stripe": {"api_base": "http://127.0.0.1:9", "secret_key": "s3cr3t-sk"}}),
        )))
        .unwrap();
        assert_eq!(c.plugin_store_dir(), PathBuf::from("data/plugins"));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let err = Config::from_figment(Figment::new().merge(Serialized::default("plugin_require_signatures", true)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("plugin_trusted_keys"), "{err}");
        let err = Config::from_figment(
            Figment::new().merge(Serialized::default("plugin_trusted_keys", serde_json::json!({"acme": "nope"}))),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("plugin_trusted_keys") && err.contains("acme"), "{err}");
    }

    #[test]
    fn trusted_proxies_and_the_old_login_limit_name_are_read() {
        let c = Config::from_figment(
            Figment::new()
                .merge(Serialized::default("trusted_proxies", "10.0.0.0/8, 127.0.0.1"))
                .merge(Serialized::default("login_max_failures_per_account", 7)),
        )
        .unwrap();
        assert!(!c.trusted_proxies.is_empty());
        assert_eq!(c.login_max_failures_per_account_address, 7);
        let list = Config::from_figment(
            Figment::new().merge(Serialized::default("trusted_proxies", serde_json::json!(["10.0.0.1", "fd00::/8"]))),
        )
        .unwrap();
        assert_eq!(list.trusted_proxies, TrustedProxies::parse("10.0.0.1,fd00::/8").unwrap());
        assert!(with(&[("trusted_proxies", "10.0.0.0/40")]).unwrap_err().to_string().contains("trusted_proxies"));
        let previous_alone = with(&[("jwt_previous_secret", "an old secret of thirty-two bytes or more")]);
        assert!(previous_alone.unwrap_err().to_string().contains("jwt_previous_secret"));
    }

    #[test]
    fn http_limits_cors_and_metrics_are_checked() {
        let c = with(&[
            ("cors_origins", "https://app.example.com, http://127.0.0.1:3000"),
            ("metrics_addr", "127.0.0.1:9100"),
            ("metrics_token", "s3cr3t-metrics-token"),
        ])
        .unwrap();
        assert_eq!(c.http.cors_origins.len(), 2);
        assert_eq!(c.http.metrics_addr.unwrap().port(), 9100);
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert_eq!(with(&[]).unwrap().http.max_connections, 10_000);
        assert!(with(&[]).unwrap().http.cors_origins.is_empty());
        let err = with(&[("cors_origins", "https://app.example.com/")]).unwrap_err().to_string();
        assert!(err.contains("LESSOR_CORS_ORIGINS"), "{err}");
        assert!(with(&[("header_read_timeout_secs", "0")]).unwrap_err().to_string().contains("header_read"));
        assert!(with(&[("metrics_token", "short")]).unwrap_err().to_string().contains("metrics_token"));
        assert!(with(&[("metrics_addr", "nowhere")]).unwrap_err().to_string().contains("metrics_addr"));
    }

    #[test]
    fn short_jwt_secret_and_bad_addr_are_refused() {
        assert!(with(&[("jwt_secret", "short")]).unwrap_err().to_string().contains("jwt_secret"));
        assert!(with(&[("addr", "localhost")]).unwrap_err().to_string().contains("addr"));
    }
}
