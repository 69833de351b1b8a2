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
            host: HostState { plugin, deadline, http_requests: 0, log_lines: 0, panic_message: None },
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
    /// What the SDK's panic hook reported during this call.
    pub(crate) panic_message: Option<String>,
}

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
        let url = match p.grants.check(url) {
            Ok(url) => url,
            Err(denial) => {
                tracing::warn!(plugin = %p.name, version = %p.version, %denial, "plugin HTTP refused");
                return Err(match denial {
                    Denial::NotGranted(origin) => HttpFailure::Denied(origin.to_string()),
                    Denial::InvalidUrl(why) => HttpFailure::InvalidRequest(why),
                });
            }
        };
        self.http_requests += 1;
        if self.http_requests > p.limits.max_http_requests_per_call {
            tracing::warn!(plugin = %p.name, version = %p.version, "plugin HTTP refused: too many requests in one call");
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
            return Err(HttpFailure::InvalidRequest(format!("header `{name}` is set by the host")));
        }
        if body.len() > p.limits.max_http_request_bytes {
            return Err(HttpFailure::TooLarge);
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(HttpFailure::Timeout);
        }
        let timeout = remaining.min(p.limits.http_timeout);
        let request = OutboundRequest { method, url, headers, body };
        let result = p.transport.send(request, timeout, p.limits.max_http_response_bytes);
        if let Err(failure) = &result {
            tracing::info!(plugin = %p.name, version = %p.version, %failure, "plugin HTTP failed");
        }
        result
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
            self.panic_message = Some(truncate(message, 1024).to_owned());
        }
        self.log_lines += 1;
        let max = self.plugin.limits.max_log_lines_per_call;
        if self.log_lines > max {
            if self.log_lines == max + 1 {
                let p = &self.plugin;
                tracing::warn!(plugin = %p.name, version = %p.version, "plugin log limit reached; dropping further lines");
            }
            return;
        }
        let p = &self.plugin;
        let message = truncate(message, 4096);
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

/// A log line's fields as `k=v k=v`: the first 32, keys and values truncated.
struct Fields<'a>(&'a [(String, String)]);

impl std::fmt::Display for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().take(32).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}={}", truncate(k, 64), truncate(v, 512))?;
        }
        Ok(())
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
