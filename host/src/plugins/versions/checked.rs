//! What every version module does the same way with its generated types: name each provider
//! export with a [`Signature`], type-check it once at load ([`Checked`]), and call it on a fresh
//! instance ([`call_fresh`]).

use std::marker::PhantomData;

use wasmtime::Store;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{ComponentExportIndex, ComponentNamedList, Instance, InstancePre, Lift, Lower, TypedFunc};

use super::CallFailure;
use crate::plugins::state::CallState;

/// One exported function: the interface it is in, its name, and the Rust types its arguments are
/// lowered from and its results lifted into.
pub(super) trait Signature {
    const PROVIDER: &'static str;
    const NAME: &'static str;
    type Params<'a>: ComponentNamedList + Lower;
    type Results: ComponentNamedList + Lift;
}

/// `signature!(Marker, "export-name", (params…,), (results…,))` in a version module, where a
/// `const PROVIDER: &str` names that version's provider interface.
macro_rules! signature {
    ($marker:ident, $name:literal, $params:ty, $results:ty) => {
        struct $marker;
        impl super::checked::Signature for $marker {
            const PROVIDER: &'static str = PROVIDER;
            const NAME: &'static str = $name;
            type Params<'a> = $params;
            type Results = $results;
        }
    };
}
pub(super) use signature;

/// The index of an export whose type was checked against `S` when the plugin was loaded.
pub(super) struct Checked<S> {
    index: ComponentExportIndex,
    _signature: PhantomData<fn() -> S>,
}

impl<S: Signature> Checked<S> {
    pub(super) fn new(pre: &InstancePre<CallState>, provider: &ComponentExportIndex) -> wasmtime::Result<Self> {
        let (item, index) = pre
            .component()
            .get_export(Some(provider), S::NAME)
            .ok_or_else(|| wasmtime::format_err!("no export `{}#{}`", S::PROVIDER, S::NAME))?;
        let ComponentItem::ComponentFunc(func) = item else {
            wasmtime::bail!("export `{}#{}` is not a function", S::PROVIDER, S::NAME);
        };
        func.typecheck::<S::Params<'static>, S::Results>(&pre.instance_type())
            .map_err(|e| e.context(format!("type-checking export `{}#{}`", S::PROVIDER, S::NAME)))?;
        Ok(Self { index, _signature: PhantomData })
    }

    /// The function in a fresh `instance` of the component this was checked against.
    fn func<'a>(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
    ) -> Result<TypedFunc<S::Params<'a>, S::Results>, CallFailure> {
        let func = instance
            .get_func(&mut *store, self.index)
            .ok_or_else(|| CallFailure::Call(wasmtime::format_err!("no export `{}#{}`", S::PROVIDER, S::NAME)))?;
        // SAFETY: `instance` comes from the `InstancePre` that `new` type-checked this export
        // against: the same component, the same instance type and the same `S::Params` and
        // `S::Results` (a lifetime does not change a component type).
        Ok(unsafe { TypedFunc::new_unchecked(func) })
    }
}

/// A fresh instance of `pre`'s component.
pub(super) fn instantiate(pre: &InstancePre<CallState>, store: &mut Store<CallState>) -> Result<Instance, CallFailure> {
    pre.instantiate(store).map_err(CallFailure::Instantiate)
}

/// Calls `export` on a fresh instance of `pre`'s component.
pub(super) fn call_fresh<S: Signature>(
    pre: &InstancePre<CallState>,
    store: &mut Store<CallState>,
    export: &Checked<S>,
    params: S::Params<'_>,
) -> Result<S::Results, CallFailure> {
    let instance = instantiate(pre, store)?;
    let func = export.func(store, &instance)?;
    func.call(store, params).map_err(CallFailure::Call)
}
