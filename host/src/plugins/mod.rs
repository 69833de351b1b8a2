//! The plugin runtime: payment providers as sandboxed WebAssembly components.
//!
//! Code map:
//! - [`runtime`]: [`PluginRuntime::load`] checks a manifest's claims, compiles (or loads the
//!   precompiled) component and links it; [`LoadedPlugin`] makes typed calls, each in a fresh
//!   instance from the pre-linked `InstancePre`, under [`Limits`].
//! - [`versions`]: one `bindgen!` module per WIT package version (`wit/lessor-payments@X.Y.Z`)
//!   converting straight to and from the payments crate's gateway types (`lessor_payments`:
//!   `PaymentRequest`, `PaymentOutcome`, `WebhookBatch`, `ProviderInfo`, …), the one provider
//!   contract; the only place that knows versions. [`wire`]: what the input cap measures.
//! - `state`: a call's store data and the host interface (HTTP, config, secrets, log, now),
//!   implemented once for every version.
//! - [`grants`]: the deny-by-default allow-list of origins (the registry's patterns). [`http`]: the
//!   transport behind it; [`address`]: which addresses a granted name may resolve to, and the
//!   resolver that connects only to checked ones.
//! - [`text`]: plugin-supplied strings escaped and capped before they reach a log or an error.
//! - `pool`: the instance slots and the plugin call threads (not tokio's blocking pool).
//! - `engine`: the one `Engine` (pooling allocator, fuel, epoch clock); `cache`: precompiled
//!   components on disk keyed by digest, wasmtime version and engine configuration.
//! - [`live`]: [`LiveProviders`], the providers this process serves, reloaded from the registry
//!   (the registry crate) when its revision moves; `checker`: the registry's component check.
//! - [`error`]: provider errors (the WIT `provider-error`) vs sandbox failures; [`metrics`]: per plugin and version.
//! - `output`: the output cap, checked on a result's measured shape before the result is copied
//!   out of the guest's memory.
//!
//! Invariant: a plugin gets nothing it was not granted. No files, no environment, no sockets, no
//! stdio; HTTP only to origins the operator granted (recorded by the registry at install), by
//! names that resolve to public addresses unless the grant says otherwise; config
//! and secrets only for keys its manifest declares, from the host's configuration.

pub mod address;
mod cache;
mod checker;
mod engine;
pub mod error;
pub mod grants;
pub mod http;
mod limits;
pub mod live;
pub mod metrics;
mod output;
mod pool;
mod runtime;
mod state;
pub mod text;
pub mod versions;
pub mod wire;

pub use cache::{CacheOutcome, Digest};
pub use checker::RuntimeChecker;
pub use engine::RuntimeConfig;
pub use error::{LoadError, PluginCallError, ProviderError, RuntimeError, SandboxFailure};
pub use grants::{Denial, Granted, Grants};
pub use lessor_plugin_registry::{Manifest, Origin, OriginPattern};
pub use limits::{Limits, MemoryLimitExceeded};
pub use live::{LiveProviders, ProviderSlot, ProviderUnavailable, Snapshot};
pub use metrics::PluginMetrics;
pub use runtime::{LoadedPlugin, PluginRuntime};
pub use versions::WitVersion;
