//! `plugin.toml`: what a plugin package says about itself. Unknown keys are an error.
//!
//! ```toml
//! name = "stripe"                     # package name, [a-z0-9-]
//! version = "1.2.0"
//! wit = "lessor:payments@0.1.0"       # the WIT package the component was built against
//! provider = "stripe"                 # provider id payments are routed by
//! component = "stripe.wasm"           # file beside plugin.toml
//! hosts = ["https://api.stripe.com"]  # origins it asks to reach; `:*` = any port
//! config = ["account"]                # config keys it reads
//! secrets = ["api_key"]               # secret keys it reads
//! ```
//!
//! The registry (plugin-registry crate) will own packages, digests and signatures; this module
//! holds only what the runtime needs to load a component.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::grants::OriginPattern;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginManifest {
    pub name: String,
    pub version: String,
    pub wit: String,
    pub provider: String,
    pub component: String,
    pub hosts: Vec<OriginPattern>,
    pub config: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    wit: String,
    provider: String,
    component: String,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    config: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("plugin.toml: {0}")]
    Syntax(String),
    #[error("plugin.toml: `{key}` {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl PluginManifest {
    pub fn from_toml(text: &str) -> Result<Self, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| ManifestError::Syntax(e.message().to_owned()))?;
        check(is_name(&raw.name), "name", "must be 1-64 of a-z, 0-9 and -")?;
        check(is_name(&raw.provider), "provider", "must be 1-64 of a-z, 0-9 and -")?;
        check(is_version(&raw.version), "version", "must be a version such as 1.2.0")?;
        check(!raw.wit.is_empty(), "wit", "must name a WIT package such as lessor:payments@0.1.0")?;
        check(is_component_file(&raw.component), "component", "must be a plain file name ending in .wasm")?;
        let hosts = raw
            .hosts
            .iter()
            .map(|h| h.parse().map_err(|e| ManifestError::Invalid { key: "hosts", reason: format!("{e}") }))
            .collect::<Result<Vec<OriginPattern>, _>>()?;
        let config = keys(raw.config, "config")?;
        let secrets = keys(raw.secrets, "secrets")?;
        Ok(Self {
            name: raw.name,
            version: raw.version,
            wit: raw.wit,
            provider: raw.provider,
            component: raw.component,
            hosts,
            config,
            secrets,
        })
    }

    /// `name@version`, how logs and errors name a plugin.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

fn check(ok: bool, key: &'static str, reason: &str) -> Result<(), ManifestError> {
    if ok { Ok(()) } else { Err(ManifestError::Invalid { key, reason: reason.to_owned() }) }
}

fn keys(list: Vec<String>, key: &'static str) -> Result<BTreeSet<String>, ManifestError> {
    let valid = |k: &String| {
        !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    match list.iter().find(|k| !valid(k)) {
        Some(bad) => Err(ManifestError::Invalid { key, reason: format!("has an invalid key `{bad}`") }),
        None => Ok(list.into_iter().collect()),
    }
}

fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_version(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

fn is_component_file(s: &str) -> bool {
    s.len() > 5 && s.ends_with(".wasm") && !s.contains(['/', '\\']) && !s.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        name = "stripe"
        version = "1.2.0"
        wit = "lessor:payments@0.1.0"
        provider = "stripe"
        component = "stripe.wasm"
        hosts = ["https://api.stripe.com", "http://127.0.0.1:*"]
        config = ["account"]
        secrets = ["api_key"]
    "#;

    #[test]
    fn parses_a_manifest() {
        let m = PluginManifest::from_toml(GOOD).unwrap();
        assert_eq!(m.label(), "stripe@1.2.0");
        assert_eq!(m.hosts.len(), 2);
        assert!(m.secrets.contains("api_key"));
    }

    #[test]
    fn unknown_keys_are_an_error() {
        let err = PluginManifest::from_toml(&format!("{GOOD}\nenv = [\"HOME\"]")).unwrap_err();
        assert!(err.to_string().contains("env"), "{err}");
    }

    #[test]
    fn component_must_be_a_plain_file() {
        let text = GOOD.replace("stripe.wasm", "../../etc/x.wasm");
        assert!(matches!(PluginManifest::from_toml(&text), Err(ManifestError::Invalid { key: "component", .. })));
    }

    #[test]
    fn hosts_must_be_origins() {
        let text = GOOD.replace("https://api.stripe.com\"", "https://api.stripe.com/v1\"");
        assert!(matches!(PluginManifest::from_toml(&text), Err(ManifestError::Invalid { key: "hosts", .. })));
    }
}
