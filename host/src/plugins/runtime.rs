//! `PluginRuntime` loads components; `LoadedPlugin` calls them, each call in a fresh instance
//! with its own store, budget and WASI context, from a pre-linked `InstancePre`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use lessor_plugin_registry::Manifest;
use secrecy::SecretString;
use wasmtime::{Engine, Store};

use super::cache::{CacheOutcome, ComponentCache, Digest};
use super::engine::{EpochTicker, RuntimeConfig, build_engine, deadline_ticks};
use super::error::ProviderError;
use super::error::{LoadError, PluginCallError, RuntimeError, SandboxFailure};
use super::grants::Grants;
use super::http::{HttpTransport, ReqwestTransport};
use super::limits::MemoryLimitExceeded;
use super::metrics::PluginMetrics;
use super::output::OutputCap;
use super::pool::CallPool;
use super::state::{CallState, PluginContext};
use super::versions::{self, CallFailure, Linkers, PrepareError, ProviderBindings, WitVersion};
use super::wire::WireSize;
use lessor_payments::{
    PaymentLookup, PaymentOutcome, PaymentRequest, ProviderInfo, RefundLookup, RefundOutcome, RefundRequest,
    WebhookBatch, WebhookRequest,
};

/// One wasmtime engine, its linkers (one per WIT version), the compiled-component cache and the
/// HTTP transport plugins share. Cheap to clone.
#[derive(Clone)]
pub struct PluginRuntime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linkers: Linkers,
    cache: ComponentCache,
    config: RuntimeConfig,
    transport: Arc<dyn HttpTransport>,
    metrics: PluginMetrics,
    /// One slot per pooled instance and the threads calls run on: async calls queue for a slot
    /// instead of failing to instantiate when every slot is busy.
    pool: CallPool,
    _ticker: EpochTicker,
}

impl PluginRuntime {
    /// A runtime whose plugins reach granted hosts through reqwest.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let transport = ReqwestTransport::new().map_err(RuntimeError::Thread)?;
        Self::with_transport(config, Arc::new(transport))
    }

    /// A runtime with another HTTP transport (the grant check still happens first).
    pub fn with_transport(config: RuntimeConfig, transport: Arc<dyn HttpTransport>) -> Result<Self, RuntimeError> {
        let engine = build_engine(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let linkers = Linkers::new(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let cache = ComponentCache::new(&engine, config.cache_dir.clone()).map_err(RuntimeError::Cache)?;
        let ticker = EpochTicker::start(&engine, config.epoch_tick).map_err(RuntimeError::Thread)?;
        let pool = CallPool::new(config.max_concurrent_calls.max(1) as usize);
        let metrics = PluginMetrics::default();
        let inner = RuntimeInner { engine, linkers, cache, config, transport, metrics, pool, _ticker: ticker };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The runtime's metrics; register them once with [`PluginMetrics::register`].
    pub fn metrics(&self) -> &PluginMetrics {
        &self.inner.metrics
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Instance slots free now (of `max_concurrent_calls`): a slot is taken from before a call's
    /// sandbox starts until it has ended.
    pub fn free_slots(&self) -> usize {
        self.inner.pool.free_slots()
    }

    /// [`PluginRuntime::load`] on a call thread holding an instance slot (its `info` call needs
    /// one): under full load it waits for a slot rather than failing to instantiate.
    pub async fn load_in_slot(
        &self,
        manifest: Manifest,
        component: Vec<u8>,
        grants: Grants,
        config: BTreeMap<String, String>,
        secrets: BTreeMap<String, SecretString>,
    ) -> Result<LoadedPlugin, LoadError> {
        let runtime = self.clone();
        let plugin = manifest.label();
        let loading = self.inner.pool.run(move || runtime.load(&manifest, &component, grants, config, secrets));
        match loading.await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(closed) => Err(LoadError::InvalidComponent { plugin, detail: closed.to_string() }),
        }
    }

    /// Checks, compiles (or loads precompiled) and links one plugin, then calls its `info` to
    /// check it against the manifest. `grants` are what the operator granted (the registry's
    /// record: the manifest's hosts plus `--grant-host` extras); `config`/`secrets` keys must lie
    /// within the manifest's `config`/`secrets`: nothing undeclared is handed over.
    /// Blocks while compiling (or mapping the precompiled file): call it off the async executor.
    pub fn load(
        &self,
        manifest: &Manifest,
        component: &[u8],
        grants: Grants,
        config: BTreeMap<String, String>,
        secrets: BTreeMap<String, SecretString>,
    ) -> Result<LoadedPlugin, LoadError> {
        let started = Instant::now();
        let plugin = manifest.label();
        let wit = WitVersion::from_package(manifest.wit()).ok_or_else(|| LoadError::UnknownWitVersion {
            plugin: plugin.clone(),
            claimed: manifest.wit().to_owned(),
            known: WitVersion::known(),
        })?;
        if let Some(key) = config.keys().find(|k| !manifest.config().contains(*k)) {
            return Err(LoadError::UndeclaredKey { plugin, what: "config key", key: key.clone() });
        }
        if let Some(key) = secrets.keys().find(|k| !manifest.secrets().contains(*k)) {
            return Err(LoadError::UndeclaredKey { plugin, what: "secret", key: key.clone() });
        }

        let rt = &self.inner;
        let digest = Digest::of(component);
        let (compiled, cache) = rt
            .cache
            .load(&rt.engine, &digest, component)
            .map_err(|e| LoadError::InvalidComponent { plugin: plugin.clone(), detail: format!("{e:#}") })?;
        let bindings = versions::prepare(wit, &rt.engine, &rt.linkers, &compiled).map_err(|e| match e {
            PrepareError::MissingExport(export) => LoadError::MissingExport { plugin: plugin.clone(), export },
            PrepareError::UnsatisfiedImport(detail) => LoadError::UnsatisfiedImport { plugin: plugin.clone(), detail },
            PrepareError::Invalid(detail) => LoadError::InvalidComponent { plugin: plugin.clone(), detail },
        })?;
        let (name, version) = (manifest.name().to_string(), manifest.version().to_string());
        let context = PluginContext {
            metrics: rt.metrics.series(&name, &version),
            name: name.clone(),
            version: version.clone(),
            label: plugin.clone(),
            grants,
            config,
            secrets,
            transport: rt.transport.clone(),
            limits: rt.config.limits.clone(),
        };
        let caller = Caller { runtime: self.inner.clone(), context: Arc::new(context), bindings };
        let info = caller.info().map_err(|source| LoadError::InfoFailed { plugin: plugin.clone(), source })?;
        if info.id != manifest.provider().as_str() || info.version != version {
            return Err(LoadError::InfoMismatch {
                plugin,
                provider: manifest.provider().to_string(),
                version,
                reported: info.id,
                reported_version: info.version,
            });
        }
        tracing::info!(
            plugin = %name, version = %version, wit = wit.package(), %digest, ?cache,
            elapsed_ms = started.elapsed().as_millis() as u64, "plugin loaded"
        );
        let webhooks = manifest.webhooks().clone();
        let token_formats = manifest.token_formats().clone();
        Ok(LoadedPlugin { inner: Arc::new(LoadedInner { caller, info, wit, digest, cache, webhooks, token_formats }) })
    }
}

/// A loaded plugin. Cheap to clone; calls may run concurrently, each in its own instance.
///
/// The `*_blocking` methods run the call on the current thread (they may wait on host HTTP); the
/// async ones wait for a free instance slot, then run it on the runtime's own call threads
/// (`pool.rs`), holding the slot until the sandbox ends even if the caller stops waiting.
/// Blocking callers that exceed `max_concurrent_calls` at once get `SandboxFailure::Instantiation`.
#[derive(Clone)]
pub struct LoadedPlugin {
    inner: Arc<LoadedInner>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name())
            .field("version", &self.version())
            .field("wit", &self.inner.wit.package())
            .field("digest", &self.inner.digest)
            .finish_non_exhaustive()
    }
}

struct LoadedInner {
    caller: Caller,
    info: ProviderInfo,
    wit: WitVersion,
    digest: Digest,
    cache: CacheOutcome,
    webhooks: lessor_plugin_registry::WebhookRules,
    token_formats: lessor_plugin_registry::TokenFormats,
}

impl LoadedPlugin {
    pub fn name(&self) -> &str {
        &self.inner.caller.context.name
    }

    pub fn version(&self) -> &str {
        &self.inner.caller.context.version
    }

    pub fn wit_version(&self) -> WitVersion {
        self.inner.wit
    }

    pub fn digest(&self) -> Digest {
        self.inner.digest
    }

    /// Whether loading found the component precompiled.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }

    /// What its manifest says a webhook must have before the plugin is asked.
    pub fn webhook_rules(&self) -> &lessor_plugin_registry::WebhookRules {
        &self.inner.webhooks
    }

    /// What its manifest says its tokens look like (`[token-formats]`).
    pub fn token_formats(&self) -> &lessor_plugin_registry::TokenFormats {
        &self.inner.token_formats
    }

    /// What the plugin's `info` said at load.
    pub fn provider_info(&self) -> &ProviderInfo {
        &self.inner.info
    }

    pub fn info_blocking(&self) -> Result<ProviderInfo, PluginCallError> {
        self.inner.caller.info()
    }

    pub fn validate_blocking(&self, request: &PaymentRequest) -> Result<(), PluginCallError> {
        self.inner
            .caller
            .call("validate", Some(("payment request", request.wire_size())), |b, s| b.validate(s, request))
    }

    pub fn process_blocking(&self, request: &PaymentRequest) -> Result<PaymentOutcome, PluginCallError> {
        self.inner.caller.call("process", Some(("payment request", request.wire_size())), |b, s| b.process(s, request))
    }

    /// Where a payment stands at the provider; `NotSupported` from a 0.1.0 plugin.
    pub fn retrieve_payment_blocking(&self, lookup: &PaymentLookup) -> Result<Option<PaymentOutcome>, PluginCallError> {
        self.inner.caller.call("retrieve_payment", None, |b, s| b.retrieve_payment(s, lookup))
    }

    /// Where a refund stands at the provider; `NotSupported` from a 0.1.0 plugin.
    pub fn retrieve_refund_blocking(&self, lookup: &RefundLookup) -> Result<Option<RefundOutcome>, PluginCallError> {
        self.inner.caller.call("retrieve_refund", None, |b, s| b.retrieve_refund(s, lookup))
    }

    pub fn refund_blocking(&self, request: &RefundRequest) -> Result<RefundOutcome, PluginCallError> {
        self.inner.caller.call("refund", Some(("refund request", request.wire_size())), |b, s| b.refund(s, request))
    }

    pub fn parse_webhook_blocking(&self, request: &WebhookRequest) -> Result<WebhookBatch, PluginCallError> {
        self.inner
            .caller
            .call("parse_webhook", Some(("webhook", request.wire_size())), |b, s| b.parse_webhook(s, request))
    }

    /// Creates a fresh instance and calls nothing: what a call costs before the guest runs.
    #[doc(hidden)]
    pub fn instantiate_only_blocking(&self) -> Result<(), PluginCallError> {
        self.inner.caller.call("instantiate", None, |b, s| b.instantiate_only(s).map(Ok))
    }

    pub async fn info(&self) -> Result<ProviderInfo, PluginCallError> {
        self.spawn(|p| p.info_blocking()).await
    }

    pub async fn validate(&self, request: PaymentRequest) -> Result<(), PluginCallError> {
        self.spawn(move |p| p.validate_blocking(&request)).await
    }

    pub async fn process(&self, request: PaymentRequest) -> Result<PaymentOutcome, PluginCallError> {
        self.spawn(move |p| p.process_blocking(&request)).await
    }

    pub async fn retrieve_payment(&self, lookup: PaymentLookup) -> Result<Option<PaymentOutcome>, PluginCallError> {
        self.spawn(move |p| p.retrieve_payment_blocking(&lookup)).await
    }

    pub async fn retrieve_refund(&self, lookup: RefundLookup) -> Result<Option<RefundOutcome>, PluginCallError> {
        self.spawn(move |p| p.retrieve_refund_blocking(&lookup)).await
    }

    pub async fn refund(&self, request: RefundRequest) -> Result<RefundOutcome, PluginCallError> {
        self.spawn(move |p| p.refund_blocking(&request)).await
    }

    pub async fn parse_webhook(&self, request: WebhookRequest) -> Result<WebhookBatch, PluginCallError> {
        self.spawn(move |p| p.parse_webhook_blocking(&request)).await
    }

    async fn spawn<R: Send + 'static>(
        &self,
        call: impl FnOnce(&LoadedPlugin) -> Result<R, PluginCallError> + Send + 'static,
    ) -> Result<R, PluginCallError> {
        let plugin = self.clone();
        match self.inner.caller.runtime.pool.run(move || call(&plugin)).await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(PluginCallError::Sandbox {
                plugin: self.inner.caller.context.label.clone(),
                failure: SandboxFailure::Instantiation("the call was cancelled: the host is shutting down".into()),
            }),
        }
    }
}

/// The call machinery shared by every function: budget, fresh store, classification, metrics.
struct Caller {
    runtime: Arc<RuntimeInner>,
    context: Arc<PluginContext>,
    bindings: Box<dyn ProviderBindings>,
}

impl Caller {
    fn info(&self) -> Result<ProviderInfo, PluginCallError> {
        self.call("info", None, |b, s| b.info(s).map(Ok))
    }

    fn call<R>(
        &self,
        function: &'static str,
        input: Option<(&'static str, usize)>,
        run: impl FnOnce(&dyn ProviderBindings, &mut Store<CallState>) -> Result<Result<R, ProviderError>, CallFailure>,
    ) -> Result<R, PluginCallError> {
        let started = Instant::now();
        let (result, denied) = self.run(started, input, run);
        let c = &self.context;
        // A call that failed after a request was refused for its destination failed because of
        // its configuration (grants), whatever the plugin made of the refusal.
        let result = match (result, denied) {
            (Err(error), Some(denied)) => {
                Err(PluginCallError::EgressDenied { plugin: c.label.clone(), denied, error: Box::new(error) })
            }
            (result, _) => result,
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        c.metrics.observe_call(function, outcome, started.elapsed());
        if let Some(failure) = result.as_ref().err().and_then(PluginCallError::sandbox_failure) {
            c.metrics.observe_trap(failure.kind());
            tracing::warn!(
                plugin = %c.name, version = %c.version, function, kind = failure.kind(), %failure,
                "plugin call stopped by the sandbox"
            );
        }
        result
    }

    fn run<R>(
        &self,
        started: Instant,
        input: Option<(&'static str, usize)>,
        run: impl FnOnce(&dyn ProviderBindings, &mut Store<CallState>) -> Result<Result<R, ProviderError>, CallFailure>,
    ) -> (Result<R, PluginCallError>, Option<String>) {
        let limits = &self.context.limits;
        if let Some((what, size)) = input
            && size > limits.max_input_bytes
        {
            return (Err(PluginCallError::InputTooLarge { what, size, limit: limits.max_input_bytes }), None);
        }
        let sandbox = |failure| PluginCallError::Sandbox { plugin: self.context.label.clone(), failure };

        let deadline = started + limits.timeout;
        let mut store = Store::new(&self.runtime.engine, CallState::new(self.context.clone(), deadline));
        store.limiter(|s| &mut s.limiter);
        if let Some(fuel) = limits.fuel
            && let Err(e) = store.set_fuel(fuel)
        {
            return (Err(sandbox(SandboxFailure::Instantiation(format!("{e:#}")))), None);
        }
        store.set_hostcall_fuel(limits.max_copy_bytes());
        store.set_epoch_deadline(deadline_ticks(limits.timeout, self.runtime.config.epoch_tick));
        store.epoch_deadline_trap();

        // Results are measured against this cap before they are copied (`output.rs`).
        let cap = OutputCap::set(limits.max_output_bytes);
        let result = run(self.bindings.as_ref(), &mut store);
        drop(cap);
        let denied = store.data_mut().host.egress_denied.take();
        (self.classify(result, &mut store), denied)
    }

    fn classify<R>(
        &self,
        result: Result<Result<R, ProviderError>, CallFailure>,
        store: &mut Store<CallState>,
    ) -> Result<R, PluginCallError> {
        let sandbox = |failure| PluginCallError::Sandbox { plugin: self.context.label.clone(), failure };
        // A trapped store cannot be entered again; it is dropped by the caller either way. A
        // result over the output cap failed its lift (`SandboxFailure::OutputTooLarge`).
        match result {
            Ok(reply) => reply.map_err(|e| PluginCallError::Provider(e.sanitized())),
            Err(CallFailure::Instantiate(e)) if !is_trap(&e) => {
                Err(sandbox(SandboxFailure::Instantiation(format!("{e:#}"))))
            }
            Err(CallFailure::Instantiate(e) | CallFailure::Call(e)) => {
                let panic_message = store.data_mut().host.panic_message.take();
                Err(sandbox(SandboxFailure::classify(&e, panic_message)))
            }
        }
    }
}

fn is_trap(e: &wasmtime::Error) -> bool {
    e.downcast_ref::<wasmtime::Trap>().is_some() || e.downcast_ref::<MemoryLimitExceeded>().is_some()
}
