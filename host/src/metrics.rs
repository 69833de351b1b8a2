//! Prometheus metrics, one registry per application (so several can live in one process).

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 16.0])
}

/// Why an authentic provider event was acknowledged without being applied.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookIgnoredLabels {
    pub provider: String,
    /// `unmatched` (about nothing Lessor created, or past the retry window) or `past_window`.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookRefusal {
    pub provider: String,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabels {
    pub scope: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EngineLabels {
    pub engine: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<HttpLabels>,
    search_duration: HistogramFamily<EngineLabels>,
    index_lag: Gauge<f64, AtomicU64>,
    indexed: Counter,
    index_deferred: Counter,
    webhooks_ignored: Family<WebhookIgnoredLabels, Counter>,
    connections_refused: Counter,
    webhooks_refused: Family<WebhookRefusal, Counter>,
    rate_limited: Family<ScopeLabels, Counter>,
    ready_probes: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lessor");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration: HistogramFamily<HttpLabels> = Family::new_with_constructor(latency_histogram);
        registry.register("http_requests", "HTTP requests answered, by route and status", http_requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route and status",
            http_duration.clone(),
        );
        let search_duration: HistogramFamily<EngineLabels> = Family::new_with_constructor(latency_histogram);
        registry.register("search_duration_seconds", "Time a lease search took in the engine", search_duration.clone());
        let index_lag = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "search_index_lag_seconds",
            "Age of the oldest lease change not yet in the search index (0 when none waits)",
            index_lag.clone(),
        );
        let indexed = Counter::default();
        registry.register("search_indexed", "Search outbox entries applied to the index", indexed.clone());
        let index_deferred = Counter::default();
        registry.register(
            "search_index_deferred",
            "Search outbox entries put back after an index failure",
            index_deferred.clone(),
        );
        let webhooks_ignored = Family::<WebhookIgnoredLabels, Counter>::default();
        registry.register(
            "webhook_events_ignored",
            "Authentic provider events acknowledged without effect: about nothing Lessor created, or past the retry window",
            webhooks_ignored.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "http_connections_refused",
            "Connections answered 503 because every open connection was busy",
            connections_refused.clone(),
        );
        let webhooks_refused = Family::<WebhookRefusal, Counter>::default();
        registry.register(
            "webhooks_refused",
            "Webhook requests refused, by provider and reason (their log lines are rate-limited)",
            webhooks_refused.clone(),
        );
        let rate_limited = Family::<ScopeLabels, Counter>::default();
        registry.register(
            "http_rate_limited",
            "Requests answered 429 by the rate limiter, by scope",
            rate_limited.clone(),
        );
        let ready_probes = Counter::default();
        registry.register(
            "ready_probes",
            "Readiness probes of the database and Redis actually run",
            ready_probes.clone(),
        );
        Self {
            webhooks_ignored,
            registry: Mutex::new(registry),
            http_requests,
            http_duration,
            search_duration,
            index_lag,
            indexed,
            index_deferred,
            connections_refused,
            webhooks_refused,
            rate_limited,
            ready_probes,
        }
    }

    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    pub fn webhook_refused(&self, provider: &str, reason: &'static str) {
        self.webhooks_refused.get_or_create(&WebhookRefusal { provider: provider.to_owned(), reason }).inc();
    }

    pub fn rate_limited(&self, scope: &'static str) {
        self.rate_limited.get_or_create(&ScopeLabels { scope }).inc();
    }

    pub fn ready_probed(&self) {
        self.ready_probes.inc();
    }

    pub fn observe_search(&self, engine: &str, elapsed: Duration) {
        self.search_duration.get_or_create(&EngineLabels { engine: engine.to_owned() }).observe(elapsed.as_secs_f64());
    }

    pub fn observe_indexer_pass(&self, pass: &lessor_leases::indexer::Pass) {
        self.index_lag.set(pass.lag.map_or(0.0, |l| l.as_secs_f64()));
        self.indexed.inc_by(pass.indexed as u64);
        self.index_deferred.inc_by(pass.deferred as u64);
    }

    pub fn webhook_ignored(&self, provider: &str, reason: &str) {
        self.webhooks_ignored
            .get_or_create(&WebhookIgnoredLabels { provider: provider.to_owned(), reason: reason.to_owned() })
            .inc();
    }

    pub fn observe_http(&self, labels: HttpLabels, elapsed: Duration) {
        self.http_duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
        self.http_requests.get_or_create(&labels).inc();
    }

    /// Lets other parts of the host (search, plugins, workers) add their own metrics.
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.registry.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The OpenMetrics text exposition, which Prometheus scrapes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}
