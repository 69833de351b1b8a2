//! `host plugin call PACKAGE FUNCTION --request FILE`: one sandboxed call of a package, with no
//! database and no configuration, its HTTP answered from canned files (`--respond`), printing
//! every exchange and the outcome or the typed error.
//!
//! The call runs in the same runtime `host serve` uses, with its default limits
//! (`RuntimeConfig::default()`), so a plugin that traps, loops or answers too much fails here as
//! it would there. The plugin is granted its manifest's hosts plus each `--respond` URL's origin;
//! the transport (`call/canned.rs`) never opens a connection.

mod canned;
mod input;
mod report;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use lessor_plugin_registry::Package;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::plugins::{Grants, LoadedPlugin, PluginCallError, PluginRuntime, RuntimeConfig, WitVersion};
use canned::{CannedTransport, RespondSpec, Route};
use input::CallInput;
use report::Masker;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Function {
    /// `validate` a payment request (no HTTP expected).
    Validate,
    /// `process` a payment request.
    Process,
    /// `refund` a captured payment.
    Refund,
    /// `parse-webhook`: verify and normalise a received webhook.
    Webhook,
    /// `retrieve-payment` (a payment lookup) or `retrieve-refund` (a refund lookup, which has a
    /// `refund_id`): needs a lessor:payments@0.2.0 component.
    Retrieve,
}

/// A `--secret KEY=VALUE`; its value never shows in `Debug`.
#[derive(Clone)]
pub struct SecretArg(String, String);

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=<redacted>", self.0)
    }
}

fn secret_arg(s: &str) -> Result<SecretArg, String> {
    input::key_value(s).map(|(k, v)| SecretArg(k, v))
}

#[derive(Debug, clap::Args)]
#[command(after_long_help = input::SHAPES)]
pub struct CallArgs {
    /// The package: a directory with plugin.toml, or a .tar/.tar.gz (what `host plugin pack` writes).
    pub package: PathBuf,
    #[arg(value_enum)]
    pub function: Function,
    /// The call's input as JSON (shapes below, in --help).
    #[arg(long, value_name = "FILE")]
    pub request: PathBuf,
    /// A config value handed to the plugin (the key must be declared in its manifest). Repeatable.
    /// (It takes the place of the global `--config PATH`: this command reads no configuration.)
    // The id is the global's, so clap lets this command have its own `--config`; the value's
    // type is the global's too (clap reads it back for `Cli`), and it is split at `=` in `call`.
    #[arg(long = "config", id = "config", value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub config: Vec<PathBuf>,
    /// A secret handed to the plugin (declared in its manifest); masked wherever it is printed.
    #[arg(long = "secret", value_name = "KEY=VALUE", value_parser = secret_arg)]
    pub secrets: Vec<SecretArg>,
    /// A canned answer: 'METHOD URL=FILE', the URL exact or a prefix ending in `*`; the first
    /// match wins, a request matching none is refused (a connection failure to the plugin).
    /// Repeatable; each URL's origin is granted for this call.
    #[arg(long = "respond", value_name = "METHOD URL=FILE", value_parser = RespondSpec::parse)]
    pub respond: Vec<RespondSpec>,
    /// Print one JSON object: {"outcome": …} or {"error": …}, and "exchanges": […].
    #[arg(long)]
    pub json: bool,
}

/// Runs the call and prints it. An error of the call (typed or a sandbox failure) is an `Err`,
/// so the command exits non-zero.
pub fn call(args: &CallArgs) -> anyhow::Result<()> {
    let package =
        Package::load(&args.package).with_context(|| format!("reading the package at {}", args.package.display()))?;
    let manifest = package.manifest();
    if args.function == Function::Retrieve && WitVersion::from_package(manifest.wit()) == Some(WitVersion::V0_1_0) {
        bail!(
            "retrieve needs a lessor:payments@0.2.0 component: {} speaks {}, which has no retrieve-payment \
             (the host calls process again with the same idempotency key instead)",
            manifest.label(),
            manifest.wit(),
        );
    }
    let input = match args.function {
        Function::Validate | Function::Process => input::payment(&args.request)?,
        Function::Refund => input::refund(&args.request)?,
        Function::Webhook => input::webhook(&args.request)?,
        Function::Retrieve => input::lookup(&args.request)?,
    };
    let routes = args.respond.iter().map(Route::load).collect::<anyhow::Result<Vec<_>>>()?;
    let grants = Grants::new(manifest.hosts().iter().cloned().chain(routes.iter().map(Route::grant)));
    let transport = Arc::new(CannedTransport::new(routes));
    let runtime = PluginRuntime::with_transport(RuntimeConfig::default(), transport.clone())
        .context("starting the plugin runtime")?;
    let config = args
        .config
        .iter()
        .map(|pair| {
            input::key_value(&pair.to_string_lossy())
                .map_err(|e| anyhow::anyhow!("--config: {e} (this command reads no configuration file)"))
        })
        .collect::<anyhow::Result<_>>()?;
    let secrets = args.secrets.iter().map(|SecretArg(k, v)| (k.clone(), SecretString::from(v.clone()))).collect();
    let plugin = runtime
        .load(manifest, package.component(), grants, config, secrets)
        .with_context(|| format!("loading {}", manifest.label()))?;

    let result = run(&plugin, args.function, &input)?;
    let secrets: Vec<(String, String)> = args.secrets.iter().map(|SecretArg(k, v)| (k.clone(), v.clone())).collect();
    let mask = Masker::new(&secrets);
    let exchanges = transport.take_exchanges();
    let name = function_name(args.function);
    if args.json {
        let mut out = json!({ "exchanges": report::exchanges_json(&exchanges, &mask) });
        match &result {
            Ok(outcome) => out["outcome"] = outcome.clone(),
            Err(error) => out["error"] = report::error_json(error, &mask),
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        if let Err(error) = &result {
            bail!("{name} returned an error (`{}`); it is in the JSON on standard output", error.outcome());
        }
        return Ok(());
    }
    report::print_exchanges(&exchanges, &mask);
    match result {
        Ok(outcome) => {
            println!("{name} of {}: {}", manifest.label(), serde_json::to_string_pretty(&outcome)?);
            Ok(())
        }
        Err(error) => bail!("{name} of {} returned an error: {}", manifest.label(), mask.text(&error.to_string())),
    }
}

/// The call, or the refusal `host serve` would answer before the sandbox starts.
fn run(plugin: &LoadedPlugin, function: Function, input: &CallInput) -> anyhow::Result<Result<Value, PluginCallError>> {
    Ok(match (function, input) {
        (Function::Validate, CallInput::Payment(r)) => plugin.validate_blocking(r).map(|()| json!({ "valid": true })),
        (Function::Process, CallInput::Payment(r)) => plugin.process_blocking(r).map(|o| json!(o)),
        (Function::Refund, CallInput::Refund(r)) => plugin.refund_blocking(r).map(|o| json!(o)),
        (Function::Webhook, CallInput::Webhook(r)) => {
            let rules = plugin.webhook_rules();
            if let Some(header) = &rules.signature_header
                && !r.headers.iter().any(|(k, _)| k == header)
            {
                bail!("the webhook has no `{header}` header: host serve refuses it (400) before the plugin runs");
            }
            if let Some(max) = rules.max_body_bytes
                && r.body.len() > max
            {
                bail!(
                    "the webhook's body is {} bytes, over the manifest's {max}: host serve refuses it (413)",
                    r.body.len()
                );
            }
            plugin.parse_webhook_blocking(r).map(|batch| json!({ "events": batch.events }))
        }
        (Function::Retrieve, CallInput::PaymentLookup(l)) => {
            plugin.retrieve_payment_blocking(l).map(|o| json!({ "payment": o }))
        }
        (Function::Retrieve, CallInput::RefundLookup(l)) => {
            plugin.retrieve_refund_blocking(l).map(|o| json!({ "refund": o }))
        }
        _ => unreachable!("the input is read for its function"),
    })
}

fn function_name(function: Function) -> &'static str {
    match function {
        Function::Validate => "validate",
        Function::Process => "process",
        Function::Refund => "refund",
        Function::Webhook => "parse-webhook",
        Function::Retrieve => "retrieve",
    }
}
