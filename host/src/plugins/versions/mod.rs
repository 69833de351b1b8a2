//! One module per WIT package version the host runs, each with its own `bindgen!` and conversions
//! straight to and from the payments crate's gateway types (`lessor_payments`), the one provider
//! contract. A released version is frozen: adding
//! a version means a `wit/lessor-payments@X.Y.Z/` folder, a `vX_Y_Z` module here (with its
//! results' measured shapes, as in `v0_2_0/output.rs`, so the output cap holds before the copy),
//! a variant in [`WitVersion`] and an arm in [`prepare`]. Released: 0.1.0 (frozen, still served
//! through `v0_1_0`) and 0.2.0; the rest of the host never sees which version a plugin speaks.

mod checked;
mod v0_1_0;
mod v0_2_0;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use lessor_payments::{
    PaymentLookup, PaymentOutcome, PaymentRequest, ProviderInfo, RefundLookup, RefundOutcome, RefundRequest,
    WebhookBatch, WebhookRequest,
};

use super::error::ProviderError;
use super::state::CallState;

/// A WIT package version this host can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WitVersion {
    V0_1_0,
    V0_2_0,
}

impl WitVersion {
    pub const ALL: &'static [WitVersion] = &[WitVersion::V0_1_0, WitVersion::V0_2_0];

    /// The package name a manifest's `wit` key uses, e.g. `lessor:payments@0.1.0`.
    pub fn package(self) -> &'static str {
        match self {
            Self::V0_1_0 => "lessor:payments@0.1.0",
            Self::V0_2_0 => "lessor:payments@0.2.0",
        }
    }

    pub fn from_package(package: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.package() == package)
    }

    pub fn known() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.package()).collect()
    }

    /// The interface a provider component must export, e.g. `lessor:payments/provider@0.1.0`.
    pub fn provider_export(self) -> &'static str {
        match self {
            Self::V0_1_0 => "lessor:payments/provider@0.1.0",
            Self::V0_2_0 => "lessor:payments/provider@0.2.0",
        }
    }

    /// The functions that export must contain.
    pub fn provider_functions(self) -> &'static [&'static str] {
        match self {
            Self::V0_1_0 => &["info", "validate", "process", "refund", "parse-webhook"],
            Self::V0_2_0 => {
                &["info", "validate", "process", "retrieve-payment", "refund", "retrieve-refund", "parse-webhook"]
            }
        }
    }
}

/// Why a call into a component produced no value.
pub(crate) enum CallFailure {
    /// The fresh instance could not be created.
    Instantiate(wasmtime::Error),
    /// The instance trapped (or a limit stopped it) during the call.
    Call(wasmtime::Error),
}

/// The provider calls, in the gateway's types, against one pre-linked component of some WIT version.
/// Each call instantiates a fresh instance in the given store.
pub(crate) trait ProviderBindings: Send + Sync {
    /// Only creates an instance (for measuring start-up cost).
    fn instantiate_only(&self, store: &mut Store<CallState>) -> Result<(), CallFailure>;
    fn info(&self, store: &mut Store<CallState>) -> Result<ProviderInfo, CallFailure>;
    fn validate(
        &self,
        store: &mut Store<CallState>,
        request: &PaymentRequest,
    ) -> Result<Result<(), ProviderError>, CallFailure>;
    fn process(
        &self,
        store: &mut Store<CallState>,
        request: &PaymentRequest,
    ) -> Result<Result<PaymentOutcome, ProviderError>, CallFailure>;
    /// `Ok(Err(NotSupported))` from a version without it: the host then calls `process` again.
    fn retrieve_payment(
        &self,
        store: &mut Store<CallState>,
        lookup: &PaymentLookup,
    ) -> Result<Result<Option<PaymentOutcome>, ProviderError>, CallFailure>;
    fn refund(
        &self,
        store: &mut Store<CallState>,
        request: &RefundRequest,
    ) -> Result<Result<RefundOutcome, ProviderError>, CallFailure>;
    /// As `retrieve_payment`, for refunds.
    fn retrieve_refund(
        &self,
        store: &mut Store<CallState>,
        lookup: &RefundLookup,
    ) -> Result<Result<Option<RefundOutcome>, ProviderError>, CallFailure>;
    fn parse_webhook(
        &self,
        store: &mut Store<CallState>,
        request: &WebhookRequest,
    ) -> Result<Result<WebhookBatch, ProviderError>, CallFailure>;
}

/// One linker per WIT version, built once per engine.
pub(crate) struct Linkers {
    v0_1_0: Linker<CallState>,
    v0_2_0: Linker<CallState>,
}

impl Linkers {
    pub(crate) fn new(engine: &Engine) -> wasmtime::Result<Self> {
        Ok(Self { v0_1_0: v0_1_0::linker(engine)?, v0_2_0: v0_2_0::linker(engine)? })
    }
}

/// Why a component cannot be prepared for the version its manifest claims.
pub(crate) enum PrepareError {
    MissingExport(String),
    UnsatisfiedImport(String),
    Invalid(String),
}

/// Checks that `component` exports what `version` requires and links it (an `InstancePre`).
pub(crate) fn prepare(
    version: WitVersion,
    engine: &Engine,
    linkers: &Linkers,
    component: &Component,
) -> Result<Box<dyn ProviderBindings>, PrepareError> {
    check_exports(version, engine, component)?;
    let linker = match version {
        WitVersion::V0_1_0 => &linkers.v0_1_0,
        WitVersion::V0_2_0 => &linkers.v0_2_0,
    };
    let pre = linker.instantiate_pre(component).map_err(|e| PrepareError::UnsatisfiedImport(format!("{e:#}")))?;
    match version {
        WitVersion::V0_1_0 => v0_1_0::bindings(pre),
        WitVersion::V0_2_0 => v0_2_0::bindings(pre),
    }
    .map_err(|e| PrepareError::Invalid(format!("{e:#}")))
}

/// Names the first missing export precisely (bindgen's own check would say less).
fn check_exports(version: WitVersion, engine: &Engine, component: &Component) -> Result<(), PrepareError> {
    let export = version.provider_export();
    let ty = component.component_type();
    let Some(item) = ty.get_export(engine, export) else {
        return Err(PrepareError::MissingExport(export.to_owned()));
    };
    let ComponentItem::ComponentInstance(instance) = item.ty else {
        return Err(PrepareError::MissingExport(format!("{export} (exported, but not as an interface)")));
    };
    for function in version.provider_functions() {
        if instance.get_export(engine, function).is_none() {
            return Err(PrepareError::MissingExport(format!("{export}#{function}")));
        }
    }
    Ok(())
}

/// The WASI a Rust `wasm32-wasip2` guest may import, denied in content: no preopened
/// directories, no environment, no arguments, closed stdio, no sockets (not even linked, so a
/// component importing `wasi:sockets` is refused at load). Shared by every version's linker.
/// Plugins built with the SDK import none of it unless their own code uses `std::env`, `std::fs`
/// or the like (see the SDK's `sandbox` module): each import a component has is lowered again on
/// every call's fresh instance, so fewer imports make a cheaper call, whatever the host links.
fn add_wasi(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sync};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi::{ResourceTable, WasiView};

    struct Table;
    impl wasmtime::component::HasData for Table {
        type Data<'a> = &'a mut ResourceTable;
    }

    let l = linker;
    sync::io::error::add_to_linker::<CallState, Table>(l, |t| t.ctx().table)?;
    sync::io::poll::add_to_linker::<CallState, Table>(l, |t| t.ctx().table)?;
    sync::io::streams::add_to_linker::<CallState, Table>(l, |t| t.ctx().table)?;
    clocks::wall_clock::add_to_linker::<CallState, WasiClocks>(l, CallState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<CallState, WasiClocks>(l, CallState::clocks)?;
    random::random::add_to_linker::<CallState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<CallState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<CallState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::environment::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::stdin::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::stdout::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::stderr::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_input::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_output::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_stdin::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_stdout::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    cli::terminal_stderr::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
    filesystem::preopens::add_to_linker::<CallState, WasiFilesystem>(l, CallState::filesystem)?;
    sync::filesystem::types::add_to_linker::<CallState, WasiFilesystem>(l, CallState::filesystem)?;
    Ok(())
}
