//! What can go wrong loading a plugin or calling it.

use super::limits::MemoryLimitExceeded;
use super::output::OutputLimitExceeded;

/// Cap on a provider error's text as the host keeps it.
const MAX_ERROR_TEXT: usize = 1024;

/// A provider's own answer that a call did not produce an outcome (the WIT `provider-error`, as
/// every version's module lifts it). Host-internal: the payments service sees it only as the
/// `GatewayError` the table in `lessor_payments::gateway` maps it to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("declined: {0}")]
    Declined(String),
    #[error("invalid request: {field}: {reason}")]
    InvalidRequest { field: String, reason: String },
    #[error("provider unavailable: {0}")]
    ProviderUnavailable(String),
    /// The plugin says the host refused its request for its destination (0.2.0 and later).
    #[error("egress denied: {0}")]
    EgressDenied(String),
    /// A config or secret key the call needs is unset or invalid; names the key (0.2.0 and later).
    #[error("misconfigured: {0}")]
    Misconfigured(String),
    #[error("webhook signature invalid")]
    SignatureInvalid,
    #[error("not supported by this provider")]
    NotSupported,
    #[error("provider internal error: {0}")]
    Internal(String),
}

impl ProviderError {
    /// The error with its plugin-chosen text escaped and capped (`text::escape`): what the host
    /// passes on, logs and stores.
    pub fn sanitized(self) -> Self {
        let clean = |s: String| super::text::escape(&s, MAX_ERROR_TEXT).into_owned();
        match self {
            Self::Declined(reason) => Self::Declined(clean(reason)),
            Self::InvalidRequest { field, reason } => {
                Self::InvalidRequest { field: super::text::escape(&field, 128).into_owned(), reason: clean(reason) }
            }
            Self::ProviderUnavailable(message) => Self::ProviderUnavailable(clean(message)),
            Self::EgressDenied(what) => Self::EgressDenied(clean(what)),
            Self::Misconfigured(key) => Self::Misconfigured(super::text::escape(&key, 128).into_owned()),
            Self::Internal(message) => Self::Internal(clean(message)),
            other @ (Self::SignatureInvalid | Self::NotSupported) => other,
        }
    }

    /// A stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Declined(_) => "declined",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::ProviderUnavailable(_) => "provider_unavailable",
            Self::EgressDenied(_) => "egress_denied",
            Self::Misconfigured(_) => "misconfigured",
            Self::SignatureInvalid => "signature_invalid",
            Self::NotSupported => "not_supported",
            Self::Internal(_) => "internal",
        }
    }
}

/// A plugin call that produced no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginCallError {
    /// The provider answered with one of its typed errors (the WIT `provider-error`).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The request was over the input cap; the plugin was not called.
    #[error("{what} is {size} bytes, over the {limit}-byte cap")]
    InputTooLarge { what: &'static str, size: usize, limit: usize },
    /// The sandbox stopped the call. The plugin is `name@version`.
    #[error("plugin {plugin} failed: {failure}")]
    Sandbox { plugin: String, failure: SandboxFailure },
    /// The call failed after the host refused one of its requests for its destination (an
    /// origin not granted, or a granted name resolving to a non-public address). Nothing left
    /// the host for that request: a configuration error, not an unknown outcome. `error` is what
    /// the call ended with.
    #[error("plugin {plugin} was refused egress: {denied}")]
    EgressDenied { plugin: String, denied: String, error: Box<PluginCallError> },
}

impl PluginCallError {
    /// The metrics label of this outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Provider(e) => e.kind(),
            Self::InputTooLarge { .. } => "input_too_large",
            Self::Sandbox { .. } => "sandbox",
            Self::EgressDenied { .. } => "egress_denied",
        }
    }

    pub fn sandbox_failure(&self) -> Option<&SandboxFailure> {
        match self {
            Self::Sandbox { failure, .. } => Some(failure),
            Self::EgressDenied { error, .. } => error.sandbox_failure(),
            _ => None,
        }
    }
}

/// Why the sandbox stopped a call. None of these is the provider's answer; the payment should be
/// treated as "outcome unknown" unless the failure happened before any host HTTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxFailure {
    #[error("used up its CPU budget (fuel)")]
    OutOfFuel,
    #[error("ran past the call's deadline")]
    Timeout,
    #[error("tried to grow memory to {desired} bytes, over the {limit}-byte cap")]
    MemoryLimit { desired: usize, limit: usize },
    #[error("overflowed its stack")]
    StackOverflow,
    #[error("panicked: {message}")]
    Panic { message: String },
    /// `unreachable` without a panic message: an abort, or a guest built without the SDK.
    #[error("aborted (unreachable instruction)")]
    Unreachable,
    /// Measured in the guest's memory before anything was copied out of it.
    #[error("returned {size} bytes, over the {limit}-byte output cap (refused before copying)")]
    OutputTooLarge { size: usize, limit: usize },
    /// The fresh instance could not be created (pool exhausted, start-up trap).
    #[error("could not be instantiated: {0}")]
    Instantiation(String),
    /// Any other trap, named by wasmtime (out-of-bounds access, division by zero, …).
    #[error("trapped: {0}")]
    Trap(String),
}

impl SandboxFailure {
    /// The metrics label of this failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OutOfFuel => "out_of_fuel",
            Self::Timeout => "timeout",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::StackOverflow => "stack_overflow",
            Self::Panic { .. } => "panic",
            Self::Unreachable => "unreachable",
            Self::OutputTooLarge { .. } => "output_too_large",
            Self::Instantiation(_) => "instantiation",
            Self::Trap(_) => "trap",
        }
    }

    /// Names the failure behind a wasmtime error from a call. `panic_message` is what the guest's
    /// panic hook reported through the host log during this call, if anything.
    pub(crate) fn classify(error: &wasmtime::Error, panic_message: Option<String>) -> Self {
        if let Some(e) = error.downcast_ref::<MemoryLimitExceeded>() {
            return Self::MemoryLimit { desired: e.desired, limit: e.limit };
        }
        if let Some(e) = error.downcast_ref::<OutputLimitExceeded>() {
            return Self::OutputTooLarge { size: e.size, limit: e.limit };
        }
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::OutOfFuel) => Self::OutOfFuel,
            Some(wasmtime::Trap::Interrupt) => Self::Timeout,
            Some(wasmtime::Trap::StackOverflow) => Self::StackOverflow,
            Some(wasmtime::Trap::UnreachableCodeReached) => match panic_message {
                Some(message) => Self::Panic { message },
                None => Self::Unreachable,
            },
            Some(trap) => Self::Trap(trap.to_string()),
            None => Self::Trap(format!("{error:#}")),
        }
    }
}

/// A plugin the runtime refused to load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin {plugin} claims WIT package {claimed}, which this host does not know (it knows {})", known.join(", "))]
    UnknownWitVersion { plugin: String, claimed: String, known: Vec<&'static str> },
    #[error("plugin {plugin} is not a valid component: {detail}")]
    InvalidComponent { plugin: String, detail: String },
    #[error("plugin {plugin} does not export `{export}`, which its manifest's WIT package requires")]
    MissingExport { plugin: String, export: String },
    #[error("plugin {plugin} needs an import the host does not provide: {detail}")]
    UnsatisfiedImport { plugin: String, detail: String },
    #[error("plugin {plugin}: {what} `{key}` is not declared in its manifest")]
    UndeclaredKey { plugin: String, what: &'static str, key: String },
    #[error(
        "plugin {plugin} reports provider `{reported}` version {reported_version}, but its manifest says `{provider}` version {version}"
    )]
    InfoMismatch { plugin: String, provider: String, version: String, reported: String, reported_version: String },
    #[error("plugin {plugin}: `info` failed while loading: {source}")]
    InfoFailed { plugin: String, source: PluginCallError },
}

/// The runtime itself could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    #[error("cannot prepare the component cache: {0}")]
    Cache(std::io::Error),
    #[error("cannot start a runtime thread: {0}")]
    Thread(std::io::Error),
}
