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
//! digest = "sha256:…"                 # optional: the component's digest, pinned by the publisher
//!
//! [token-formats]                     # optional: what its tokens look like (see token_format.rs)
//! card = "[0-9]{16}"
//!
//! [webhooks]                          # optional: what a webhook must have to be worth a sandbox
//! signature-header = "stripe-signature"  # requests without it are refused before the plugin runs
//! max-body-bytes = 65536                 # larger bodies are refused before the plugin runs
//! ```
//!
//! The same keys and checks as the host's runtime manifest, plus the optional `digest`.
//! A [`Manifest`] exists only as parsed from text, so it always satisfies them.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::digest::Digest;
use crate::names::{PluginName, ProviderId, Version};
use crate::origin::OriginPattern;
use crate::token_format::TokenFormats;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    name: PluginName,
    version: Version,
    wit: String,
    provider: ProviderId,
    component: String,
    hosts: Vec<OriginPattern>,
    config: BTreeSet<String>,
    secrets: BTreeSet<String>,
    digest: Option<Digest>,
    webhooks: WebhookRules,
    token_formats: TokenFormats,
}

/// What the host checks of a webhook before handing it to the plugin (`[webhooks]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookRules {
    /// A header every genuine webhook carries (lower case).
    pub signature_header: Option<String>,
    /// The largest body a genuine webhook has.
    pub max_body_bytes: Option<usize>,
}

/// The most a plugin may declare as its webhook body cap.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 16 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawWebhooks {
    signature_header: Option<String>,
    max_body_bytes: Option<usize>,
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
    digest: Option<String>,
    webhooks: Option<RawWebhooks>,
    #[serde(default, rename = "token-formats")]
    token_formats: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("plugin.toml: {0}")]
    Syntax(String),
    #[error("plugin.toml: `{key}` {reason}")]
    Invalid { key: &'static str, reason: String },
}

const NAME_RULE: &str = "must be 1-64 of a-z, 0-9 and -";

impl Manifest {
    pub fn from_toml(text: &str) -> Result<Self, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| ManifestError::Syntax(e.message().to_owned()))?;
        let name = PluginName::parse(&raw.name).map_err(|_| invalid("name", NAME_RULE))?;
        let provider = ProviderId::parse(&raw.provider).map_err(|_| invalid("provider", NAME_RULE))?;
        let version =
            Version::parse(&raw.version).map_err(|_| invalid("version", "must be a version such as 1.2.0"))?;
        if raw.wit.is_empty() {
            return Err(invalid("wit", "must name a WIT package such as lessor:payments@0.1.0"));
        }
        if !is_component_file(&raw.component) {
            return Err(invalid("component", "must be a plain file name ending in .wasm"));
        }
        let hosts = raw
            .hosts
            .iter()
            .map(|h| match h.parse::<OriginPattern>() {
                Ok(p) if p.allow_private => {
                    Err(invalid("hosts", "only the operator can allow private addresses (`+private`)"))
                }
                Ok(p) => Ok(p),
                Err(e) => Err(invalid("hosts", &e.to_string())),
            })
            .collect::<Result<Vec<OriginPattern>, _>>()?;
        let config = keys(raw.config, "config")?;
        let secrets = keys(raw.secrets, "secrets")?;
        let digest = raw
            .digest
            .map(|d| d.parse().map_err(|_| invalid("digest", "must be sha256: followed by 64 lower-case hex digits")))
            .transpose()?;
        let webhooks = raw.webhooks.map(webhook_rules).transpose()?.unwrap_or_default();
        let token_formats = TokenFormats::parse(raw.token_formats).map_err(|(kind, reason)| {
            ManifestError::Invalid { key: "token-formats", reason: format!("`{kind}` {reason}") }
        })?;
        Ok(Self {
            name,
            version,
            wit: raw.wit,
            provider,
            component: raw.component,
            hosts,
            config,
            secrets,
            digest,
            webhooks,
            token_formats,
        })
    }

    pub fn name(&self) -> &PluginName {
        &self.name
    }

    pub fn version(&self) -> &Version {
        &self.version
    }

    /// The WIT package the component claims to implement, e.g. `lessor:payments@0.1.0`.
    pub fn wit(&self) -> &str {
        &self.wit
    }

    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }

    /// The component's file name inside the package.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The origins the plugin asks to reach.
    pub fn hosts(&self) -> &[OriginPattern] {
        &self.hosts
    }

    pub fn config(&self) -> &BTreeSet<String> {
        &self.config
    }

    pub fn secrets(&self) -> &BTreeSet<String> {
        &self.secrets
    }

    /// The component digest the publisher pinned, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What a webhook must have before the plugin is asked about it.
    pub fn webhooks(&self) -> &WebhookRules {
        &self.webhooks
    }

    /// What its tokens look like, by payment method kind (`[token-formats]`).
    pub fn token_formats(&self) -> &TokenFormats {
        &self.token_formats
    }

    /// `name@version`, how logs and errors name a plugin.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

fn invalid(key: &'static str, reason: &str) -> ManifestError {
    ManifestError::Invalid { key, reason: reason.to_owned() }
}

fn webhook_rules(raw: RawWebhooks) -> Result<WebhookRules, ManifestError> {
    let header_ok = |h: &String| {
        !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if let Some(bad) = raw.signature_header.as_ref().filter(|h| !header_ok(h)) {
        return Err(invalid("webhooks.signature-header", &format!("`{bad}` is not a header name")));
    }
    if raw.max_body_bytes.is_some_and(|n| !(1..=MAX_WEBHOOK_BODY_BYTES).contains(&n)) {
        return Err(invalid("webhooks.max-body-bytes", "must be between 1 and 16777216"));
    }
    Ok(WebhookRules {
        signature_header: raw.signature_header.map(|h| h.to_ascii_lowercase()),
        max_body_bytes: raw.max_body_bytes,
    })
}

fn keys(list: Vec<String>, key: &'static str) -> Result<BTreeSet<String>, ManifestError> {
    let valid = |k: &String| {
        !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    match list.iter().find(|k| !valid(k)) {
        Some(bad) => Err(invalid(key, &format!("has an invalid key `{bad}`"))),
        None => Ok(list.into_iter().collect()),
    }
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

    fn key_of(text: &str) -> &'static str {
        match Manifest::from_toml(text) {
            Err(ManifestError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_manifest() {
        let m = Manifest::from_toml(GOOD).unwrap();
        assert_eq!(m.label(), "stripe@1.2.0");
        assert_eq!(m.provider().as_str(), "stripe");
        assert_eq!(m.wit(), "lessor:payments@0.1.0");
        assert_eq!(m.hosts().len(), 2);
        assert!(m.secrets().contains("api_key"));
        assert!(m.config().contains("account"));
        assert_eq!(m.digest(), None);
    }

    #[test]
    fn unknown_keys_are_an_error() {
        let err = Manifest::from_toml(&format!("{GOOD}\nenv = [\"HOME\"]")).unwrap_err();
        assert!(matches!(err, ManifestError::Syntax(_)));
        assert!(err.to_string().contains("env"), "{err}");
    }

    #[test]
    fn a_pinned_digest_is_parsed() {
        let d = Digest::of(b"wasm");
        let m = Manifest::from_toml(&format!("{GOOD}\ndigest = \"{d}\"")).unwrap();
        assert_eq!(m.digest(), Some(&d));
        assert_eq!(key_of(&format!("{GOOD}\ndigest = \"md5:abc\"")), "digest");
    }

    #[test]
    fn every_field_is_checked() {
        assert_eq!(key_of(&GOOD.replace("name = \"stripe\"", "name = \"Stripe\"")), "name");
        assert_eq!(key_of(&GOOD.replace("provider = \"stripe\"", "provider = \"\"")), "provider");
        assert_eq!(key_of(&GOOD.replace("1.2.0", "latest")), "version");
        assert_eq!(key_of(&GOOD.replace("lessor:payments@0.1.0", "")), "wit");
        assert_eq!(key_of(&GOOD.replace("stripe.wasm", "../../etc/x.wasm")), "component");
        assert_eq!(key_of(&GOOD.replace("stripe.wasm", "stripe.so")), "component");
        assert_eq!(key_of(&GOOD.replace("https://api.stripe.com\"", "https://api.stripe.com/v1\"")), "hosts");
        assert_eq!(key_of(&GOOD.replace("http://127.0.0.1:*", "http://10.0.0.1:*+private")), "hosts");
        assert_eq!(key_of(&GOOD.replace("\"account\"", "\"a b\"")), "config");
        assert_eq!(key_of(&GOOD.replace("\"api_key\"", "\"\"")), "secrets");
    }

    #[test]
    fn webhook_rules_are_optional_and_checked() {
        assert_eq!(Manifest::from_toml(GOOD).unwrap().webhooks(), &WebhookRules::default());
        let m = Manifest::from_toml(&format!(
            "{GOOD}\n[webhooks]\nsignature-header = \"Stripe-Signature\"\nmax-body-bytes = 4096"
        ))
        .unwrap();
        assert_eq!(m.webhooks().signature_header.as_deref(), Some("stripe-signature"));
        assert_eq!(m.webhooks().max_body_bytes, Some(4096));
        assert_eq!(key_of(&format!("{GOOD}\n[webhooks]\nsignature-header = \"a b\"")), "webhooks.signature-header");
        assert_eq!(key_of(&format!("{GOOD}\n[webhooks]\nmax-body-bytes = 0")), "webhooks.max-body-bytes");
        assert!(matches!(
            Manifest::from_toml(&format!("{GOOD}\n[webhooks]\nsecret = \"x\"")),
            Err(ManifestError::Syntax(_))
        ));
    }

    #[test]
    fn token_formats_are_optional_and_checked() {
        assert!(Manifest::from_toml(GOOD).unwrap().token_formats().is_empty());
        let m = Manifest::from_toml(&format!("{GOOD}\n[token-formats]\ncard = \"[0-9]{{16}}\"")).unwrap();
        assert_eq!(m.token_formats().kind_of("4111111111111111"), Some("card"));
        assert_eq!(key_of(&format!("{GOOD}\n[token-formats]\ncard = \"[0-9\"")), "token-formats");
        let err = Manifest::from_toml(&format!("{GOOD}\n[token-formats]\n\"Card\" = \"x\"")).unwrap_err();
        assert!(err.to_string().contains("`Card` is not a payment method kind"), "{err}");
    }

    #[test]
    fn missing_required_keys_are_a_syntax_error() {
        let err = Manifest::from_toml("name = \"x\"").unwrap_err();
        assert!(matches!(err, ManifestError::Syntax(_)), "{err}");
    }
}
