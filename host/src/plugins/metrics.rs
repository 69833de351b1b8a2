//! Plugin metrics, per plugin and version: calls by outcome, call duration, traps by kind, and
//! host HTTP by outcome. Register them once into the host's registry with [`PluginMetrics::register`].

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub plugin: String,
    pub version: String,
    pub function: String,
    /// `ok`, a provider error kind (`declined`, …), `input_too_large` or `sandbox`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    pub plugin: String,
    pub version: String,
    pub function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrapLabels {
    pub plugin: String,
    pub version: String,
    /// `out_of_fuel`, `timeout`, `memory_limit`, `stack_overflow`, `panic`, …
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub plugin: String,
    pub version: String,
    /// `ok` or an `HttpFailure` kind (`denied`, `timeout`, …).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
}

/// The functions a plugin call can be (labels of `function`).
const FUNCTIONS: &[&str] = &["info", "validate", "process", "refund", "parse_webhook", "instantiate"];

/// One plugin's series: cached handles for the common case, the families for the rest.
pub(crate) struct PluginSeries {
    metrics: PluginMetrics,
    plugin: String,
    version: String,
    functions: Vec<(&'static str, Histogram, Counter)>,
}

impl PluginSeries {
    pub(crate) fn observe_call(&self, function: &str, outcome: &str, elapsed: Duration) {
        match self.functions.iter().find(|(f, _, _)| *f == function) {
            Some((_, duration, ok)) if outcome == "ok" => {
                duration.observe(elapsed.as_secs_f64());
                ok.inc();
            }
            _ => self.metrics.observe_call(&self.plugin, &self.version, function, outcome, elapsed),
        }
    }

    pub(crate) fn observe_trap(&self, kind: &str) {
        self.metrics.observe_trap(&self.plugin, &self.version, kind);
    }

    pub(crate) fn observe_http(&self, outcome: &str) {
        self.metrics.observe_http(&self.plugin, &self.version, outcome);
    }

    pub(crate) fn observe_egress_denied(&self) {
        self.metrics.egress_denied.get_or_create(&PluginLabels { plugin: self.plugin.clone() }).inc();
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn call_histogram() -> Histogram {
    // 10 µs .. 30 s: a sandboxed call without I/O takes tens of µs; with provider HTTP, seconds.
    Histogram::new([
        0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

/// Cheap to clone: every clone updates the same series.
#[derive(Clone)]
pub struct PluginMetrics {
    calls: Family<CallLabels, Counter>,
    duration: HistogramFamily<DurationLabels>,
    traps: Family<TrapLabels, Counter>,
    http: Family<HttpLabels, Counter>,
    egress_denied: Family<PluginLabels, Counter>,
}

impl Default for PluginMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            duration: Family::new_with_constructor(call_histogram),
            traps: Family::default(),
            http: Family::default(),
            egress_denied: Family::default(),
        }
    }
}

impl PluginMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register("plugin_calls", "Plugin calls, by plugin, version, function and outcome", self.calls.clone());
        registry.register(
            "plugin_call_duration_seconds",
            "Plugin call duration including instantiation and host HTTP",
            self.duration.clone(),
        );
        registry.register("plugin_traps", "Plugin calls the sandbox stopped, by kind", self.traps.clone());
        registry.register(
            "plugin_http_requests",
            "Plugin HTTP requests through the host, by outcome",
            self.http.clone(),
        );
        registry.register(
            "plugin_egress_denied",
            "Plugin HTTP requests the host refused for their destination (not granted, or a non-public address)",
            self.egress_denied.clone(),
        );
    }

    pub(crate) fn observe_call(&self, plugin: &str, version: &str, function: &str, outcome: &str, elapsed: Duration) {
        let labels = DurationLabels { plugin: plugin.into(), version: version.into(), function: function.into() };
        self.duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
        let DurationLabels { plugin, version, function } = labels;
        self.calls.get_or_create(&CallLabels { plugin, version, function, outcome: outcome.into() }).inc();
    }

    pub(crate) fn observe_trap(&self, plugin: &str, version: &str, kind: &str) {
        self.traps
            .get_or_create(&TrapLabels { plugin: plugin.into(), version: version.into(), kind: kind.into() })
            .inc();
    }

    pub(crate) fn observe_http(&self, plugin: &str, version: &str, outcome: &str) {
        self.http
            .get_or_create(&HttpLabels { plugin: plugin.into(), version: version.into(), outcome: outcome.into() })
            .inc();
    }

    /// Handles to one plugin's hot series, so a successful call updates metrics without building
    /// label sets or hashing them.
    pub(crate) fn series(&self, plugin: &str, version: &str) -> PluginSeries {
        let functions = FUNCTIONS
            .iter()
            .map(|&function| {
                let duration =
                    DurationLabels { plugin: plugin.into(), version: version.into(), function: function.into() };
                let ok = CallLabels {
                    plugin: plugin.into(),
                    version: version.into(),
                    function: function.into(),
                    outcome: "ok".into(),
                };
                (function, self.duration.get_or_create(&duration).clone(), self.calls.get_or_create(&ok).clone())
            })
            .collect();
        PluginSeries { metrics: self.clone(), plugin: plugin.into(), version: version.into(), functions }
    }

    /// The count of one call series (for tests and the CLI).
    pub fn calls(&self, plugin: &str, version: &str, function: &str, outcome: &str) -> u64 {
        let labels = CallLabels {
            plugin: plugin.into(),
            version: version.into(),
            function: function.into(),
            outcome: outcome.into(),
        };
        self.calls.get(&labels).map_or(0, |c| c.get())
    }

    /// The count of one trap series.
    pub fn traps(&self, plugin: &str, version: &str, kind: &str) -> u64 {
        self.traps
            .get(&TrapLabels { plugin: plugin.into(), version: version.into(), kind: kind.into() })
            .map_or(0, |c| c.get())
    }

    /// Requests of `plugin` refused for their destination.
    pub fn egress_denied(&self, plugin: &str) -> u64 {
        self.egress_denied.get(&PluginLabels { plugin: plugin.into() }).map_or(0, |c| c.get())
    }

    /// The count of one host-HTTP series.
    pub fn http_requests(&self, plugin: &str, version: &str, outcome: &str) -> u64 {
        self.http
            .get(&HttpLabels { plugin: plugin.into(), version: version.into(), outcome: outcome.into() })
            .map_or(0, |c| c.get())
    }
}
