//! `host plugin …`: the operator's and the publisher's commands over the plugin registry.
//!
//! Every change goes through the registry (database + package store) and bumps its revision;
//! a running `host serve` (every replica) picks it up within `plugin_reload_ms`. Refusals are
//! the registry's own words (bad digest, untrusted signer, wrong world, missing export, …).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use lessor_plugin_registry::{
    Admission, GrantsChanged, KeyId, OriginPattern, Package, PluginRecord, PluginRef, ProviderId, PublisherKey,
    Registry, Version, write_signature,
};
use serde_json::json;

use crate::config::Config;
use crate::plugins::RuntimeChecker;
use crate::startup;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Install a package (a directory with plugin.toml, or a .tar/.tar.gz of one). The provider's
    /// first version becomes active.
    Install {
        path: PathBuf,
        #[command(flatten)]
        admission: AdmissionArgs,
    },
    /// Install a new version of an installed provider and make it active.
    Upgrade {
        path: PathBuf,
        #[command(flatten)]
        admission: AdmissionArgs,
    },
    /// List installed plugins.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one provider's versions (or one version) in detail.
    Inspect {
        /// PROVIDER or PROVIDER@VERSION.
        target: PluginRef,
        #[arg(long)]
        json: bool,
    },
    /// Let a provider serve payments again.
    Enable { provider: ProviderId },
    /// Stop a provider from serving payments (its versions stay installed).
    Disable { provider: ProviderId },
    /// Make the version that was active before the current one active again.
    Rollback { provider: ProviderId },
    /// Make one installed version active.
    Activate {
        /// PROVIDER@VERSION.
        target: PluginRef,
    },
    /// Remove a provider (all versions) or one version. The live version is kept unless --force.
    Remove {
        /// PROVIDER or PROVIDER@VERSION.
        target: PluginRef,
        #[arg(long)]
        force: bool,
    },
    /// Let every installed version of PROVIDER reach ORIGIN (HOST[:PORT], https unless a scheme
    /// is given; `:*` for any port), live on every replica.
    Grant {
        provider: ProviderId,
        #[arg(value_name = "ORIGIN", value_parser = parse_grant)]
        origin: OriginPattern,
        /// Let ORIGIN's name resolve to loopback, private and other non-public addresses.
        #[arg(long)]
        allow_private: bool,
    },
    /// Stop every installed version of PROVIDER from reaching ORIGIN, live on every replica: its
    /// next request there fails at once (egress denied).
    Revoke {
        provider: ProviderId,
        #[arg(value_name = "ORIGIN", value_parser = parse_grant)]
        origin: OriginPattern,
    },
    /// Authors: create a provider crate in a folder of its own (DIR/NAME), with a provider
    /// skeleton and a unit test on the SDK's harness.
    New(super::authoring::NewArgs),
    /// Authors: build the crate for wasm32-wasip2 and write NAME-VERSION.tar.gz (version from
    /// Cargo.toml, digest pinned, checked as an install would, signed with --sign).
    Pack(super::authoring::PackArgs),
    /// Authors: run one sandboxed call of a package (no database, no configuration), its HTTP
    /// answered from canned files; prints every exchange and the outcome or the typed error.
    Call(super::authoring::CallArgs),
    /// Publishers: sign a package directory with your key (writes plugin.sig beside plugin.toml).
    Sign {
        dir: PathBuf,
        #[arg(long, value_name = "KEY_FILE")]
        key: PathBuf,
    },
    /// Publishers: create a signing key file; prints the line an operator adds to trust it.
    Keygen {
        #[arg(long)]
        id: String,
        #[arg(long, value_name = "KEY_FILE")]
        out: PathBuf,
    },
}

/// What the operator grants and accepts beyond the package's claims.
#[derive(Debug, clap::Args)]
pub struct AdmissionArgs {
    /// Also allow HOST[:PORT] (https unless a scheme is given; `:*` for any port), beyond the
    /// hosts the manifest requests. Repeatable. A name must resolve to public addresses unless
    /// it ends in `+private` or `--allow-private` is given; an IP literal is granted as written.
    #[arg(long = "grant-host", value_name = "HOST[:PORT]", value_parser = parse_grant)]
    grant_hosts: Vec<OriginPattern>,
    /// Let the `--grant-host` names of this command resolve to loopback, private, link-local
    /// and other non-public addresses (a mock or sidecar on the operator's network).
    #[arg(long, requires = "grant_hosts")]
    allow_private: bool,
    /// Accept a package signed by another key (or unsigned) than the provider's live version:
    /// it will receive the secrets set for that provider.
    #[arg(long)]
    allow_new_publisher: bool,
}

fn parse_grant(s: &str) -> Result<OriginPattern, String> {
    OriginPattern::parse_grant(s).map_err(|e| e.to_string())
}

/// `keygen` and `sign`: publishers' commands, which need no configuration.
pub fn run_without_config(command: &PluginCommand) -> Option<anyhow::Result<()>> {
    match command {
        PluginCommand::Sign { dir, key } => Some(sign(dir, key)),
        PluginCommand::Keygen { id, out } => Some(keygen(id, out)),
        PluginCommand::New(args) => Some(new_crate(args)),
        PluginCommand::Pack(args) => Some(pack(args)),
        PluginCommand::Call(args) => Some(super::authoring::call(args)),
        _ => None,
    }
}

pub async fn run(command: PluginCommand, config: &Config) -> anyhow::Result<()> {
    if let Some(result) = run_without_config(&command) {
        return result;
    }
    let db = startup::open_database(config, config.migrate_on_start).await?;
    let registry = startup::plugin_registry(config, &db)?;
    let result = manage(command, config, &registry).await;
    db.close().await;
    result
}

async fn manage(command: PluginCommand, config: &Config, registry: &Registry) -> anyhow::Result<()> {
    match command {
        PluginCommand::Install { path, admission } => admit(config, registry, &path, &admission, false).await,
        PluginCommand::Upgrade { path, admission } => admit(config, registry, &path, &admission, true).await,
        PluginCommand::List { json } => {
            let records = registry.list().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({ "items": records.iter().map(record_json).collect::<Vec<_>>() })
                    )?
                );
            } else if records.is_empty() {
                println!("no plugins installed");
            } else {
                println!(
                    "{:<16} {:<10} {:<8} {:<7} {:<16} DIGEST",
                    "PROVIDER", "VERSION", "ENABLED", "ACTIVE", "SIGNED BY"
                );
                for r in &records {
                    println!(
                        "{:<16} {:<10} {:<8} {:<7} {:<16} {}",
                        r.provider.as_str(),
                        r.version.to_string(),
                        yes_no(r.enabled),
                        yes_no(r.active),
                        r.signed_by.as_ref().map_or("-", KeyId::as_str),
                        r.digest
                    );
                }
            }
            Ok(())
        }
        PluginCommand::Inspect { target, json } => {
            let records = registry.inspect(&target).await?;
            if json {
                let items: Vec<_> = records.iter().map(record_detail_json).collect();
                println!("{}", serde_json::to_string_pretty(&json!({ "items": items }))?);
            } else {
                for r in &records {
                    print_detail(r);
                }
            }
            Ok(())
        }
        PluginCommand::Enable { provider } => {
            match registry.enable(&provider).await? {
                Some(rev) => println!("enabled {provider} (registry revision {rev})"),
                None => println!("{provider} was already enabled"),
            }
            Ok(())
        }
        PluginCommand::Disable { provider } => {
            match registry.disable(&provider).await? {
                Some(rev) => println!("disabled {provider} (registry revision {rev}); its payments are refused"),
                None => println!("{provider} was already disabled"),
            }
            Ok(())
        }
        PluginCommand::Rollback { provider } => {
            let a = registry.rollback(&provider).await?;
            println!(
                "rolled back {provider}: {} -> {} (registry revision {})",
                version_or_none(a.from.as_ref()),
                a.to,
                a.revision
            );
            Ok(())
        }
        PluginCommand::Activate { target } => {
            let Some(version) = target.version else { bail!("name a version: {}@VERSION", target.provider) };
            match registry.activate(&target.provider, &version).await? {
                Some(a) => println!(
                    "activated {}@{} (was {}; registry revision {})",
                    a.provider,
                    a.to,
                    version_or_none(a.from.as_ref()),
                    a.revision
                ),
                None => println!("{}@{version} was already active", target.provider),
            }
            Ok(())
        }
        PluginCommand::Remove { target, force } => {
            let removal = registry.remove(&target, force).await?;
            let versions: Vec<String> = removal.versions.iter().map(Version::to_string).collect();
            println!("removed {} {} (registry revision {})", removal.provider, versions.join(", "), removal.revision);
            Ok(())
        }
        PluginCommand::Grant { provider, origin, allow_private } => {
            let origin = origin.clone().with_private(origin.allow_private || allow_private);
            match registry.grant(&provider, &origin).await? {
                Some(changed) => print_grants_changed(&format!("granted {origin} to {provider}"), &changed),
                None => println!("{provider} already had {origin} on every version"),
            }
            Ok(())
        }
        PluginCommand::Revoke { provider, origin } => {
            match registry.revoke(&provider, &origin).await? {
                Some(changed) => print_grants_changed(&format!("revoked {origin} from {provider}"), &changed),
                None => println!("{provider} had no grant of {origin}; nothing changed"),
            }
            Ok(())
        }
        PluginCommand::Sign { .. }
        | PluginCommand::Keygen { .. }
        | PluginCommand::New(_)
        | PluginCommand::Pack(_)
        | PluginCommand::Call(_) => {
            unreachable!("handled without a database")
        }
    }
}

async fn admit(
    config: &Config,
    registry: &Registry,
    path: &std::path::Path,
    args: &AdmissionArgs,
    upgrade: bool,
) -> anyhow::Result<()> {
    let grants: Vec<OriginPattern> =
        args.grant_hosts.iter().map(|g| g.clone().with_private(g.allow_private || args.allow_private)).collect();
    let admission = Admission { extra_grants: &grants, allow_new_publisher: args.allow_new_publisher };
    let package = Package::load(path).with_context(|| format!("reading the package at {}", path.display()))?;
    let manifest = package.manifest();
    println!("package {} (provider {}, {})", manifest.label(), manifest.provider(), manifest.wit());
    println!("component {}", package.component_digest());
    if manifest.hosts().is_empty() {
        println!("requests no network access");
    } else {
        let hosts: Vec<String> = manifest.hosts().iter().map(ToString::to_string).collect();
        println!("requests network access to: {}", hosts.join(", "));
    }
    for (kind, pattern) in manifest.token_formats().iter() {
        println!(
            "declares {kind} tokens as `{pattern}`: such a payment_method is accepted even if it looks like a card number"
        );
    }
    if !grants.is_empty() {
        let extra: Vec<String> = grants.iter().map(ToString::to_string).collect();
        println!("also granted by you: {}", extra.join(", "));
    }
    let runtime = startup::plugin_runtime(config)?;
    let checker = RuntimeChecker::new(runtime);
    let installed = if upgrade {
        registry.upgrade_with(&package, admission, &checker).await?
    } else {
        registry.install_with(&package, admission, &checker).await?
    };
    let r = &installed.record;
    if let Some(signer) = &r.signed_by {
        println!("signature verified: signed by trusted key `{signer}`");
    }
    match (&installed.replaced, r.active) {
        (Some(old), _) => {
            println!("upgraded {}: {old} -> {} (registry revision {})", r.provider, r.version, installed.revision);
            if let Some(previous) = &installed.previous {
                print_upgrade_changes(previous, r);
            }
        }
        (None, true) => println!("installed {} (active; registry revision {})", r.label(), installed.revision),
        (None, false) => println!(
            "installed {} (not active: {} serves with another version; `host plugin activate {}` switches)",
            r.label(),
            r.provider,
            r.label()
        ),
    }
    Ok(())
}

fn print_grants_changed(what: &str, changed: &GrantsChanged) {
    println!("{what} (registry revision {}; running hosts reload it at their next check)", changed.revision);
    for r in &changed.versions {
        let grants: Vec<String> = r.grants.iter().map(ToString::to_string).collect();
        let grants = if grants.is_empty() { "-".to_owned() } else { grants.join(", ") };
        println!("  {}{}  granted {grants}", r.label(), if r.active { " (active)" } else { "" });
    }
}

/// What an upgrade changed next to the version it replaced: grants, config and secret keys,
/// signer. Silent parts did not change.
fn print_upgrade_changes(old: &PluginRecord, new: &PluginRecord) {
    let names = |items: &mut dyn Iterator<Item = String>| items.collect::<std::collections::BTreeSet<String>>();
    let report = |what: &str, old: std::collections::BTreeSet<String>, new: std::collections::BTreeSet<String>| {
        let added: Vec<&String> = new.difference(&old).collect();
        let removed: Vec<&String> = old.difference(&new).collect();
        let kept = new.intersection(&old).count();
        if added.is_empty() && removed.is_empty() {
            println!("  {what}: unchanged ({kept})");
            return;
        }
        let list = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        if !added.is_empty() {
            println!("  {what} added: {}", list(&added));
        }
        if !removed.is_empty() {
            println!("  {what} removed: {}", list(&removed));
        }
    };
    let carried: Vec<String> = old.extra_grants().map(ToString::to_string).collect();
    if !carried.is_empty() {
        println!("  kept your grants: {}", carried.join(", "));
    }
    report(
        "grants",
        names(&mut old.grants.iter().map(ToString::to_string)),
        names(&mut new.grants.iter().map(ToString::to_string)),
    );
    report(
        "config keys",
        names(&mut old.manifest.config().iter().cloned()),
        names(&mut new.manifest.config().iter().cloned()),
    );
    report(
        "secret keys",
        names(&mut old.manifest.secrets().iter().cloned()),
        names(&mut new.manifest.secrets().iter().cloned()),
    );
    let signer = |r: &PluginRecord| r.signed_by.as_ref().map_or_else(|| "unsigned".to_owned(), |k| format!("`{k}`"));
    if old.signed_by == new.signed_by {
        println!("  signer: unchanged ({})", signer(new));
    } else {
        println!("  signer changed: {} -> {}", signer(old), signer(new));
    }
}

fn new_crate(args: &super::authoring::NewArgs) -> anyhow::Result<()> {
    let root = super::authoring::scaffold(args)?;
    println!("created {} (provider `{}`)", root.display(), args.name);
    println!("next: cd {} && cargo test && host plugin pack .", root.display());
    Ok(())
}

fn pack(args: &super::authoring::PackArgs) -> anyhow::Result<()> {
    let (out, package) = super::authoring::pack(args)?;
    let manifest = package.manifest();
    println!("packed {} ({}), component {}", manifest.label(), manifest.wit(), package.component_digest());
    if let Some(signature) = package.signature() {
        println!("signed by key `{}`", signature.key_id());
    }
    println!("wrote {}", out.display());
    Ok(())
}

fn sign(dir: &std::path::Path, key_file: &std::path::Path) -> anyhow::Result<()> {
    let key = PublisherKey::read(key_file).with_context(|| format!("reading the key {}", key_file.display()))?;
    let package = Package::from_dir(dir).with_context(|| format!("reading the package at {}", dir.display()))?;
    let signature = key.sign_package(&package);
    let written = write_signature(dir, &signature).context("writing plugin.sig")?;
    println!("signed {} with key `{}`: {}", package.manifest().label(), key.id(), written.display());
    Ok(())
}

fn keygen(id: &str, out: &std::path::Path) -> anyhow::Result<()> {
    let id = KeyId::parse(id).map_err(|e| anyhow::anyhow!("--id: {e}"))?;
    if let Some(folder) = out.parent().filter(|p| !p.as_os_str().is_empty())
        && !folder.is_dir()
    {
        bail!("the folder {} does not exist; create it first (the key file goes in it)", folder.display());
    }
    if out.exists() {
        bail!("{} already exists; keygen never overwrites a key: choose another --out", out.display());
    }
    let key = PublisherKey::generate(id);
    key.write_new(out).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {} (keep it private)", out.display());
    println!("operators trust it with, in host.toml:");
    println!("[plugin_trusted_keys]\n\"{}\" = \"{}\"", key.id(), key.public_key_base64());
    match trusted_key_env_name(key.id()) {
        Some(name) => println!("or in the environment:\n{name}={}", key.public_key_base64()),
        None => println!(
            "(key id `{}` cannot be written as an environment variable name: use the file, or an id of lower-case letters, digits, `_` and `-`)",
            key.id()
        ),
    }
    Ok(())
}

/// `LESSOR_PLUGIN_TRUSTED_KEYS__<ID>`, when the configuration would read the id back from it
/// (environment keys are lower-cased, and `.` would nest).
fn trusted_key_env_name(id: &KeyId) -> Option<String> {
    let id = id.as_str();
    id.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        .then(|| format!("LESSOR_PLUGIN_TRUSTED_KEYS__{}", id.to_ascii_uppercase()))
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn version_or_none(v: Option<&Version>) -> String {
    v.map_or_else(|| "none".to_owned(), ToString::to_string)
}

fn record_json(r: &PluginRecord) -> serde_json::Value {
    json!({
        "provider": r.provider.as_str(),
        "version": r.version.to_string(),
        "name": r.name.to_string(),
        "digest": r.digest.to_string(),
        "enabled": r.enabled,
        "active": r.active,
        "signed_by": r.signed_by.as_ref().map(KeyId::as_str),
    })
}

fn record_detail_json(r: &PluginRecord) -> serde_json::Value {
    let mut v = record_json(r);
    let extra = json!({
        "wit": r.wit,
        "manifest_digest": r.manifest_digest.to_string(),
        "requested_hosts": r.manifest.hosts().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "grants": r.grants.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "config_keys": r.manifest.config(),
        "secret_keys": r.manifest.secrets(),
        "token_formats": r.manifest.token_formats().iter().collect::<std::collections::BTreeMap<_, _>>(),
        "installed_at": r.installed_at,
        "activated_at": r.activated_at,
    });
    if let (Some(a), Some(b)) = (v.as_object_mut(), extra.as_object()) {
        a.extend(b.clone());
    }
    v
}

fn print_detail(r: &PluginRecord) {
    let list = |items: Vec<String>| if items.is_empty() { "-".to_owned() } else { items.join(", ") };
    println!("{}", r.label());
    println!("  package      {} ({})", r.name, r.wit);
    println!("  component    {}", r.digest);
    println!("  manifest     {}", r.manifest_digest);
    println!("  enabled      {}", yes_no(r.enabled));
    println!("  active       {}", yes_no(r.active));
    println!("  signed by    {}", r.signed_by.as_ref().map_or("-", KeyId::as_str));
    println!("  requests     {}", list(r.manifest.hosts().iter().map(ToString::to_string).collect()));
    println!("  granted      {}", list(r.grants.iter().map(ToString::to_string).collect()));
    println!("  config keys  {}", list(r.manifest.config().iter().cloned().collect()));
    println!("  secret keys  {}", list(r.manifest.secrets().iter().cloned().collect()));
    let formats: Vec<String> = r.manifest.token_formats().iter().map(|(k, p)| format!("{k} = `{p}`")).collect();
    println!("  token formats {}", list(formats));
    println!("  installed at {}", r.installed_at.to_rfc3339());
    if let Some(at) = r.activated_at {
        println!("  activated at {}", at.to_rfc3339());
    }
}
