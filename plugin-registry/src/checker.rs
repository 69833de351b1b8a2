//! Whether a component really implements what its manifest claims. The registry cannot tell
//! without a WebAssembly runtime, so the host injects one (wasmtime); tests inject fakes.

use crate::manifest::Manifest;

/// Checks a component against its manifest before it is installed: that the host runs the WIT
/// package the manifest names, that the component exports that version's `provider` interface,
/// that it links against the host's imports, and (when the checker instantiates it) that its
/// `info` reports the manifest's provider and version.
///
/// Called on the installing thread; a wasmtime implementation compiles the component, which may
/// take a while.
pub trait ComponentChecker: Send + Sync {
    fn check(&self, manifest: &Manifest, component: &[u8]) -> Result<(), ComponentRefusal>;
}

/// Why a checker refused a component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComponentRefusal {
    /// The manifest names a WIT package version this host does not run.
    #[error("unknown WIT version {claimed} (this host runs {})", known.join(", "))]
    UnknownWit { claimed: String, known: Vec<String> },
    /// The component lacks an export that the claimed version requires.
    #[error("missing export {export}")]
    MissingExport { export: String },
    /// Not a component, wrong imports, `info` disagreeing with the manifest, …
    #[error("{0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_is_wrong() {
        let unknown = ComponentRefusal::UnknownWit {
            claimed: "lessor:payments@9.9.9".into(),
            known: vec!["lessor:payments@0.1.0".into(), "lessor:payments@0.2.0".into()],
        };
        assert_eq!(
            unknown.to_string(),
            "unknown WIT version lessor:payments@9.9.9 (this host runs lessor:payments@0.1.0, lessor:payments@0.2.0)"
        );
        let missing = ComponentRefusal::MissingExport { export: "lessor:payments/provider@0.1.0".into() };
        assert_eq!(missing.to_string(), "missing export lessor:payments/provider@0.1.0");
        assert_eq!(ComponentRefusal::Invalid("not a component".into()).to_string(), "not a component");
    }
}
