//! A call's store data: the plugin's identity and capabilities, the call's budget, and the
//! minimal WASI context a Rust guest needs to start (no files, no environment, no sockets, no
//! stdio). The host interface's behaviour lives here once, for every WIT version.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::grants::{Denial, Grants};
use super::http::{HttpFailure, HttpResponse, HttpTransport, Method, OutboundRequest};
use super::limits::{CallLimiter, Limits};
use super::metrics::PluginSeries;
use super::text::escape;

/// Everything about one loaded plugin that its calls share.
pub(crate) struct PluginContext {
    pub(crate) name: String,
    pub(crate) version: String,
    /// `name@version`.
    pub(crate) label: String,
    pub(crate) grants: Grants,
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) secrets: BTreeMap<String, SecretString>,
    pub(crate) transport: Arc<dyn HttpTransport>,
    pub(crate) limits: Limits,
    pub(crate) metrics: PluginSeries,
}

pub(crate) struct CallState {
    /// Built on the guest's first WASI call: most provider calls make none.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    pub(crate) limiter: CallLimiter,
    pub(crate) host: HostState,
}

impl CallState {
    pub(crate) fn new(plugin: Arc<PluginContext>, deadline: Instant) -> Self {
        let limiter = CallLimiter::new(&plugin.limits);
        Self {
            wasi: None,
            table: ResourceTable::new(),
            limiter,
            host: HostState {
                plugin,
                deadline,
                http_requests: 0,
                log_lines: 0,
                panic_message: None,
                egress_denied: None,
            },
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        // The builder's defaults are the deny-all we want: no args, no environment, no
        // preopened directories, closed stdin, discarded stdout/stderr, no network.
        let ctx = self.wasi.get_or_insert_with(|| {
            WasiCtxBuilder::new().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build()
        });
        WasiCtxView { ctx, table: &mut self.table }
    }
}

/// Headers a plugin may not set: the transport owns framing, routing and proxies.
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];
const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// The host interface, version-independent: each `versions::*` module adapts its generated
/// `Host` trait onto these methods.
pub(crate) struct HostState {
    plugin: Arc<PluginContext>,
    deadline: Instant,
    http_requests: u32,
    log_lines: u32,
    /// What the SDK's panic hook reported during this call (escaped and capped).
    pub(crate) panic_message: Option<String>,
    /// The first request of this call the host refused for its destination (an origin not
    /// granted, or a granted name resolving to a non-public address): a configuration error the
    /// caller reports as such rather than as an unknown outcome.
    pub(crate) egress_denied: Option<String>,
}

/// Caps on plugin text in the host's logs (bytes before escaping).
const MAX_MESSAGE: usize = 4096;
const MAX_KEY: usize = 64;
const MAX_VALUE: usize = 512;
const MAX_FIELDS: usize = 32;

impl HostState {
    pub(crate) fn fetch(
        &mut self,
        method: Method,
        url: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<HttpResponse, HttpFailure> {
        let result = self.fetch_checked(method, url, headers, body);
        let p = &self.plugin;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(failure) => failure.kind(),
        };
        p.metrics.observe_http(outcome);
        result
    }

    fn fetch_checked(
        &mut self,
        method: Method,
        url: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<HttpResponse, HttpFailure> {
        let p = self.plugin.clone();
        let granted = match p.grants.check(url) {
            Ok(granted) => granted,
            Err(Denial::NotGranted(origin)) => {
                let origin = origin.to_string();
                self.deny_egress(&origin, "not granted");
                return Err(HttpFailure::Denied(origin));
            }
            Err(Denial::InvalidUrl(why)) => {
                let why = escape(&why, MAX_VALUE).into_owned();
                if self.may_log() {
                    tracing::warn!(plugin = %p.name, version = %p.version, why, "plugin HTTP refused: invalid URL");
                }
                return Err(HttpFailure::InvalidRequest(why));
            }
        };
        self.http_requests += 1;
        if self.http_requests > p.limits.max_http_requests_per_call {
            if self.may_log() {
                tracing::warn!(plugin = %p.name, version = %p.version, "plugin HTTP refused: too many requests in one call");
            }
            return Err(HttpFailure::Denied(format!(
                "more than {} requests in one call",
                p.limits.max_http_requests_per_call
            )));
        }
        if headers.len() > MAX_HEADERS {
            return Err(HttpFailure::InvalidRequest(format!("more than {MAX_HEADERS} headers")));
        }
        if let Some((name, _)) =
            headers.iter().find(|(k, _)| FORBIDDEN_HEADERS.iter().any(|f| k.eq_ignore_ascii_case(f)))
        {
            return Err(HttpFailure::InvalidRequest(format!("header `{}` is set by the host", escape(name, MAX_KEY))));
        }
        if body.len() > p.limits.max_http_request_bytes {
            return Err(HttpFailure::TooLarge);
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(HttpFailure::Timeout);
        }
        let timeout = remaining.min(p.limits.http_timeout);
        let origin = granted.origin.to_string();
        let request = OutboundRequest { method, url: granted.url, allow_private: granted.allow_private, headers, body };
        let result = p.transport.send(request, timeout, p.limits.max_http_response_bytes);
        match &result {
            // The transport refuses only by destination: a granted name that resolved to a
            // non-public address.
            Err(HttpFailure::Denied(why)) => {
                let why = why.clone();
                self.deny_egress(&origin, &why);
            }
            Err(failure) if self.may_log() => {
                tracing::info!(plugin = %p.name, version = %p.version, %failure, "plugin HTTP failed");
            }
            _ => {}
        }
        result
    }

    /// Records a request refused for its destination: the call's first denial, the metric and a
    /// warning (within the call's log budget, so a plugin looping on denied requests cannot
    /// flood the log).
    fn deny_egress(&mut self, origin: &str, why: &str) {
        let p = self.plugin.clone();
        p.metrics.observe_egress_denied();
        if self.egress_denied.is_none() {
            self.egress_denied = Some(if why == "not granted" {
                format!("{origin} was not granted")
            } else {
                format!("{origin} refused: {why}")
            });
        }
        if self.may_log() {
            tracing::warn!(plugin = %p.name, version = %p.version, origin, why, "plugin HTTP refused");
        }
    }

    /// Takes one line of this call's log budget; `false` when it is spent. Of the budget
    /// (`max_log_lines_per_call`), the next-to-last line says it is spent and the last is kept
    /// for the host's own line about how the call ended, so a call writes at most the budget.
    fn may_log(&mut self) -> bool {
        self.log_lines = self.log_lines.saturating_add(1);
        let last_for_the_call = self.plugin.limits.max_log_lines_per_call.saturating_sub(1);
        if self.log_lines < last_for_the_call {
            return true;
        }
        if self.log_lines == last_for_the_call {
            let p = &self.plugin;
            tracing::warn!(plugin = %p.name, version = %p.version, "plugin log limit reached; dropping further lines");
        }
        false
    }

    /// Only keys the manifest declares are ever in the map (checked at load).
    pub(crate) fn config(&self, key: &str) -> Option<String> {
        self.plugin.config.get(key).cloned()
    }

    pub(crate) fn secret(&self, key: &str) -> Option<String> {
        self.plugin.secrets.get(key).map(|s| s.expose_secret().to_owned())
    }

    pub(crate) fn log(&mut self, level: LogLevel, message: &str, fields: &[(String, String)]) {
        if level == LogLevel::Error && fields.iter().any(|(k, v)| k == "panic" && v == "true") {
            self.panic_message = Some(escape(message, 1024).into_owned());
        }
        if !self.may_log() {
            return;
        }
        let p = &self.plugin;
        let message = escape(message, MAX_MESSAGE);
        // Rendered only if a subscriber records the line, straight into its output.
        let fields = tracing::field::display(Fields(fields));
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "plugin", plugin = %p.name, version = %p.version, fields, "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "plugin", plugin = %p.name, version = %p.version, fields, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: "plugin", plugin = %p.name, version = %p.version, fields, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "plugin", plugin = %p.name, version = %p.version, fields, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(target: "plugin", plugin = %p.name, version = %p.version, fields, "{message}")
            }
        }
    }

    pub(crate) fn now(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

/// A log line's fields as `k=v k=v`: the first 32, keys and values escaped and capped.
struct Fields<'a>(&'a [(String, String)]);

impl std::fmt::Display for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().take(MAX_FIELDS).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}={}", escape(k, MAX_KEY), escape(v, MAX_VALUE))?;
        }
        Ok(())
    }
}
