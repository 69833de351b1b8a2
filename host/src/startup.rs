//! Builds the application from configuration: storage, auth, HTTP, background tasks.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lessor_auth::sessions::{RedisSessions, SqlSessions};
use lessor_auth::throttle::{MemoryThrottle, RedisThrottle};
use lessor_auth::{
    AuthService, HashGate, LoginThrottle, SessionStore, SqlSigningKeys, SqlUsers, ThrottlePolicy, TokenCodec,
};
use lessor_leases::LeaseService;
use lessor_leases::repo::{LeaseRepository, SqlLeases};
use lessor_payments::{
    CollectionJob, CollectionPolicy, IdempotencyConfig, IdempotencyStore, PaymentService, ReconcilePolicy,
};
use lessor_plugin_registry::{PackageStore, Registry};
use lessor_store::{Db, PoolSettings, RedisConn};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::Config;
use crate::events::EventPipes;
use crate::http::edge::{Edge, LogGate};
use crate::http::ops::{MetricsAccess, ReadyProbe};
use crate::http::{self, AppState, ChainView};
use crate::metrics::Metrics;
use crate::payments::{PluginGateway, workers};
use crate::plugins::{Limits, LiveProviders, PluginRuntime, RuntimeConfig};
use crate::rate_limit::RateLimiter;
use crate::server::ConnectionLimits;
use crate::supervisor::{self, Factory, OnStop, Supervisor, TaskBoard};

/// A bound, ready-to-run host.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    /// `/metrics` on its own listener (`LESSOR_METRICS_ADDR`).
    metrics_listener: Option<(TcpListener, axum::Router)>,
    connection_limits: ConnectionLimits,
    state: AppState,
    lease_changes: Arc<Notify>,
    shutdown_grace: Duration,
    plugin_reload: Duration,
    reconcile_interval: Duration,
    collection: Option<(Duration, CollectionPolicy)>,
    chain_worker: Option<lessor_chain::ChainWorker>,
    tasks: TaskBoard,
    task_policy: supervisor::Policy,
    extra_tasks: Vec<(String, OnStop, Factory)>,
}

/// The worker recording completed payments on TON, when `ton_api_url` is set.
async fn chain_worker(
    config: &Config,
    db: &Db,
    events: &EventPipes,
    metrics: &Metrics,
) -> anyhow::Result<Option<lessor_chain::ChainWorker>> {
    let chain = config.chain.clone();
    // Deriving the wallet from its mnemonic is deliberately slow (PBKDF2).
    let settings = tokio::task::spawn_blocking(move || chain.settings()).await.context("deriving the TON wallet")??;
    let Some(settings) = settings else { return Ok(None) };
    let chain_metrics = lessor_chain::ChainMetrics::new();
    metrics.with_registry(|r| chain_metrics.register(r));
    let worker = lessor_chain::ChainWorker::new(db.clone(), &settings, events.bus.clone(), chain_metrics)
        .context("starting the chain worker")?;
    tracing::info!(wallet = %settings.wallet.address(), version = ?settings.wallet.version(), "chain worker on");
    Ok(Some(worker))
}

/// The payments service over the providers this process serves.
pub fn payment_service(
    config: &Config,
    db: &Db,
    providers: &Arc<LiveProviders>,
    events: &EventPipes,
) -> Arc<PaymentService> {
    let gateway = Arc::new(PluginGateway::new(providers.clone()));
    Arc::new(
        PaymentService::new(db.clone(), gateway, ReconcilePolicy::default())
            .with_relay_wake(events.wake.clone())
            .with_webhook_retry_window(config.webhook_retry_window),
    )
}

pub fn collection_policy(config: &Config) -> CollectionPolicy {
    CollectionPolicy { retry_after_days: config.collection_retry_days.clone(), ..CollectionPolicy::default() }
}

/// Opens the database named by the configuration, applying migrations when asked.
pub async fn open_database(config: &Config, migrate: bool) -> anyhow::Result<Db> {
    let settings = PoolSettings {
        max_connections: config.database_max_connections,
        acquire_timeout: config.database_acquire_timeout,
        timeouts: config.database_timeouts,
    };
    let db = Db::connect_with(&config.database, &settings).await?;
    if migrate {
        let within = config.database_timeouts.migration;
        db.migrate_within(within).await.with_context(|| format!("migrating {}", config.database))?;
    }
    Ok(db)
}

/// The plugin runtime with the configured limits and precompiled-component cache.
pub fn plugin_runtime(config: &Config) -> anyhow::Result<PluginRuntime> {
    let p = &config.plugins;
    let limits = Limits {
        memory_bytes: p.memory_bytes,
        timeout: p.call_timeout,
        http_timeout: p.call_timeout.min(Limits::default().http_timeout),
        ..Limits::default()
    };
    let runtime_config = RuntimeConfig {
        limits,
        cache_dir: Some(config.plugin_cache_dir()),
        max_concurrent_calls: p.max_concurrent_calls,
        ..RuntimeConfig::default()
    };
    PluginRuntime::new(runtime_config).context("starting the plugin runtime")
}

/// The plugin registry: records in `db`, packages under `plugin_dir`.
pub fn plugin_registry(config: &Config, db: &Db) -> anyhow::Result<Registry> {
    let dir = config.plugin_store_dir();
    let store = PackageStore::open(&dir)
        .with_context(|| format!("opening the plugin store {} (LESSOR_PLUGIN_DIR)", dir.display()))?;
    Ok(Registry::with_db(db.clone(), store, config.plugins.signatures.clone()))
}

/// The token codec: the operator's secret (and the previous one, for verification), or the
/// keys generated and kept in the database's `signing_keys` table.
pub async fn token_codec(config: &Config, db: &Db) -> anyhow::Result<TokenCodec> {
    if let Some(secret) = &config.jwt_secret {
        let previous = config.jwt_previous_secret.as_ref().map(|p| p.expose_secret().as_bytes());
        return Ok(TokenCodec::with_previous(secret.expose_secret().as_bytes(), previous, config.token_ttl_secs));
    }
    let keys = SqlSigningKeys::new(db.clone());
    keys.ensure().await.context("creating the token signing key")?;
    TokenCodec::stored(Arc::new(keys), config.token_ttl_secs).await.context("loading the token signing keys")
}

/// The auth service wired to the engines the configuration names.
pub async fn auth_service(config: &Config, db: &Db, redis: Option<&RedisConn>) -> anyhow::Result<AuthService> {
    let (sessions, throttle): (Arc<dyn SessionStore>, Arc<dyn LoginThrottle>) = match redis {
        Some(r) => (Arc::new(RedisSessions::new(r.clone())), Arc::new(RedisThrottle::new(r.clone()))),
        None => (Arc::new(SqlSessions::new(db.clone())), Arc::new(MemoryThrottle::default())),
    };
    let policy = ThrottlePolicy {
        max_failures_per_account_address: config.login_max_failures_per_account_address,
        max_failures_per_address: config.login_max_failures_per_address,
        window: Duration::from_secs(config.login_window_secs),
        account_max_delay: config.login_account_max_delay,
    };
    Ok(AuthService::new(
        Arc::new(SqlUsers::new(db.clone())),
        sessions,
        throttle,
        policy,
        token_codec(config, db).await?,
        HashGate::new(config.login_hash_concurrency, config.login_queue_wait),
    ))
}

impl Application {
    /// Connects, migrates (unless `migrate_on_start` is off) and binds `config.addr`
    /// (port 0 picks a free port; see [`Application::local_addr`]).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = open_database(&config, config.migrate_on_start).await?;
        let redis = match &config.redis {
            Some(target) => Some(RedisConn::new(&target.0, &config.redis_namespace).context("redis_url")?),
            None => None,
        };
        let auth = Arc::new(auth_service(&config, &db, redis.as_ref()).await?);
        let lease_repo: Arc<dyn LeaseRepository> = Arc::new(SqlLeases::new(db.clone()));
        let search = crate::search::open_index(&config, &lease_repo, false).await?;
        let lease_changes = Arc::new(Notify::new());
        let leases = Arc::new(LeaseService::new(lease_repo, lease_changes.clone()));
        let metrics = Arc::new(Metrics::new());
        metrics.with_registry(|r| auth.metrics().register(r));
        let runtime = plugin_runtime(&config)?;
        metrics.with_registry(|r| runtime.metrics().register(r));
        let providers = Arc::new(LiveProviders::new(runtime, plugin_registry(&config, &db)?, &config.plugins));
        // Serve with the installed providers from the first request on.
        if let Err(e) = providers.refresh().await {
            tracing::warn!(error = %e, "could not load the installed payment providers; retrying in the background");
        }
        let events = EventPipes::new(&config, &db)?;
        events.check_owner(&db).await?;
        let payments = payment_service(&config, &db, &providers, &events);
        let idempotency = Arc::new(IdempotencyStore::new(db.clone(), IdempotencyConfig::default()));
        let chain = ChainView { enabled: config.chain.enabled(), store: lessor_chain::ChainStore::new(db.clone()) };
        let chain_worker = chain_worker(&config, &db, &events, &metrics).await?;
        let trusted_proxies = Arc::new(config.trusted_proxies.clone());
        let tasks = TaskBoard::default();
        let edge = Arc::new(edge(&config, redis.as_ref(), tasks.clone()));
        let state = AppState {
            auth,
            leases,
            search,
            db,
            redis,
            metrics,
            providers,
            payments,
            idempotency,
            events,
            chain,
            trusted_proxies,
            edge,
        };
        let router = http::router(state.clone(), &config);
        let listener =
            TcpListener::bind(config.addr).await.with_context(|| format!("binding {} (LESSOR_ADDR)", config.addr))?;
        let metrics_listener = match config.http.metrics_addr {
            Some(addr) => {
                let listener =
                    TcpListener::bind(addr).await.with_context(|| format!("binding {addr} (LESSOR_METRICS_ADDR)"))?;
                let router =
                    http::ops::metrics_listener_router(state.metrics.clone(), config.http.metrics_token.clone());
                Some((listener, router))
            }
            None => None,
        };
        let connection_limits = ConnectionLimits {
            header_read_timeout: config.http.header_read_timeout,
            max_connections: crate::server::connection_capacity(config.http.max_connections),
        };
        Ok(Self {
            listener,
            router,
            metrics_listener,
            connection_limits,
            state,
            lease_changes,
            shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
            plugin_reload: config.plugins.reload_interval,
            reconcile_interval: config.reconcile_interval,
            collection: config.collection_interval.map(|every| (every, collection_policy(&config))),
            chain_worker,
            tasks,
            // The relay, chain worker and indexer end their pass within the grace period.
            task_policy: supervisor::Policy {
                finish_within: Duration::from_secs(config.shutdown_grace_secs).min(Duration::from_secs(5)),
                ..config.tasks.clone()
            },
            extra_tasks: Vec::new(),
        })
    }

    /// Runs one more background task under supervision, next to the host's own (tests use it
    /// to inject failing tasks; nothing a client sends reaches it).
    pub fn supervise(&mut self, name: &str, on_stop: OnStop, factory: Factory) {
        self.extra_tasks.push((name.to_owned(), on_stop, factory));
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Where `/metrics` is served apart from the API, when `metrics_addr` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The services the running application uses (tests and tools reach in through this).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests
    /// finish (at most the grace period) and closes the database pool.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self {
            listener,
            router,
            metrics_listener,
            connection_limits,
            state,
            lease_changes,
            shutdown_grace,
            plugin_reload,
            reconcile_interval,
            collection,
            chain_worker,
            tasks,
            task_policy,
            extra_tasks,
        } = self;
        tracing::info!(
            addr = %listener.local_addr()?,
            engine = state.db.engine().as_str(),
            search = state.search.engine(),
            "listening"
        );
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Supervisor::new(task_policy, tasks, &state.metrics);
        spawn_tasks(&mut tasks, &state, lease_changes, plugin_reload, reconcile_interval, collection, chain_worker);
        for (name, on_stop, factory) in extra_tasks {
            tasks.spawn(&name, on_stop, factory);
        }
        let mut background = Vec::new();
        let stop_tasks = tasks.stopper();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
            stop_tasks();
        });
        let mut graceful_rx = stop_rx.clone();
        let graceful = async move {
            let _ = graceful_rx.wait_for(|stop| *stop).await;
            tracing::info!("shutting down: finishing in-flight requests");
        };
        if let Some((listener, router)) = metrics_listener {
            let limits = ConnectionLimits { max_connections: 64, ..connection_limits };
            let metrics = state.metrics.clone();
            tracing::info!(addr = %listener.local_addr()?, "metrics listening");
            background.push(tokio::spawn(async move {
                let _ = crate::server::serve(listener, router, limits, metrics, std::future::pending()).await;
            }));
        }
        let server = crate::server::serve(listener, router, connection_limits, state.metrics.clone(), graceful);
        let deadline = async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
            tokio::time::sleep(shutdown_grace).await;
        };
        let result = tokio::select! {
            result = server => result,
            () = deadline => {
                tracing::warn!(grace_secs = shutdown_grace.as_secs(), "in-flight requests did not finish in time");
                Ok(())
            }
        };
        for task in background {
            task.abort();
        }
        // Aborts the loops; the relay, the chain worker and the indexer finish their pass.
        tasks.shutdown().await;
        state.db.close().await;
        tracing::info!("stopped");
        result
    }
}

/// The HTTP edge's guards, counting where login throttling counts.
fn edge(config: &Config, redis: Option<&RedisConn>, tasks: TaskBoard) -> Edge {
    let h = &config.http;
    Edge {
        limiter: redis.map_or_else(RateLimiter::in_memory, |r| RateLimiter::redis(r.clone())),
        limits: config.rate_limits,
        ready: ReadyProbe::new(tasks),
        metrics_access: match (&h.metrics_token, h.metrics_addr) {
            (_, Some(_)) => MetricsAccess::OwnListener,
            (Some(token), None) => MetricsAccess::Token(token.clone()),
            (None, None) => MetricsAccess::LoopbackOnly,
        },
        webhook_log: LogGate::new(Duration::from_secs(10)),
        max_webhook_body: config.max_body_bytes,
    }
}

/// The host's background tasks, each under supervision (restartable: every run builds its
/// loop afresh from shared handles).
fn spawn_tasks(
    tasks: &mut Supervisor,
    state: &AppState,
    lease_changes: Arc<Notify>,
    plugin_reload: Duration,
    reconcile_interval: Duration,
    collection: Option<(Duration, CollectionPolicy)>,
    chain_worker: Option<lessor_chain::ChainWorker>,
) {
    use supervisor::looping;
    let auth = state.auth.clone();
    tasks.spawn("session-janitor", OnStop::Abort, looping(move |_| purge_sessions_periodically(auth.clone())));
    // The indexer finishes its batch; whatever it did not complete stays in the outbox.
    let (repo, index, metrics) = (state.leases.repository().clone(), state.search.clone(), state.metrics.clone());
    tasks.spawn(
        "search-indexer",
        OnStop::Finish,
        looping(move |stop| {
            crate::search::run_indexer(repo.clone(), index.clone(), lease_changes.clone(), metrics.clone(), stop.wait())
        }),
    );
    let providers = state.providers.clone();
    tasks.spawn(
        "plugin-reloader",
        OnStop::Abort,
        looping(move |stop| providers.clone().run(plugin_reload, stop.wait())),
    );
    // The relay finishes its pass and releases its lease; unpublished rows wait in the outbox.
    // One holder name for every run, so a restarted relay takes its own lease back at once.
    let (db, sink, wake) = (state.db.clone(), state.events.sink.clone(), state.events.wake.clone());
    let config = lessor_events::RelayConfig::new(lessor_events::PAYMENTS);
    tasks.spawn(
        "event-relay",
        OnStop::Finish,
        looping(move |stop| {
            lessor_events::Relay::new(db.clone(), sink.clone(), config.clone()).run(wake.clone(), |_| {}, stop.wait())
        }),
    );
    let payments = state.payments.clone();
    tasks.spawn(
        "reconciliation",
        OnStop::Abort,
        looping(move |stop| workers::reconcile(payments.clone(), reconcile_interval, stop.wait())),
    );
    let keys = state.idempotency.clone();
    tasks.spawn("key-pruning", OnStop::Abort, looping(move |stop| workers::prune_keys(keys.clone(), stop.wait())));
    if let Some((every, policy)) = collection {
        let job = Arc::new(CollectionJob::new(state.payments.clone(), policy));
        tasks.spawn(
            "collection",
            OnStop::Abort,
            looping(move |stop| workers::collect(job.clone(), every, stop.wait())),
        );
    }
    if let Some(worker) = chain_worker {
        // Closes its consumer and releases the wallet lease; stored records resume later.
        tasks.spawn("chain-worker", OnStop::Finish, looping(move |stop| worker.clone().run(stop.wait())));
    }
}

async fn purge_sessions_periodically(auth: Arc<AuthService>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        match auth.purge_expired_sessions().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired sessions removed"),
            Err(e) => tracing::warn!(error = %e, "could not purge expired sessions"),
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
