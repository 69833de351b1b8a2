//! What the calls are made with: the payment, the plugins, the runtimes and the in-process HTTP
//! answers that stand in for the providers' APIs.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use host::plugins::http::{HttpFailure, HttpResponse, HttpTransport, Method, OutboundRequest};
use host::plugins::{Grants, LoadedPlugin, Manifest, Origin, PluginRuntime, RuntimeConfig};
use lessor_payments::{Currency, MethodKind, PaymentRequest};
use secrecy::SecretString;
use uuid::Uuid;

use crate::build;

pub fn payment() -> PaymentRequest {
    PaymentRequest {
        payment_id: Uuid::from_u128(0x0b9f3c1e_8d2a_4f6b_9c3d_2e1f0a9b8c7d),
        lease_id: Uuid::from_u128(0x4711),
        installment_id: Some(Uuid::from_u128(0x12)),
        amount: 48_900,
        currency: Currency::parse("EUR").expect("EUR"),
        method_kind: MethodKind::Token,
        payment_method: "tok_visa".into(),
        idempotency_key: "idem-0b9f3c1e".into(),
        metadata: vec![("contract".into(), "C-2024-0042".into()), ("channel".into(), "portal".into())],
    }
}

/// Answers in-process, like provider APIs with zero latency: the Stripe API's
/// `POST /v1/payment_intents` with a succeeded PaymentIntent as Stripe returns it (the fields
/// `plugins/stripe` reads and the usual others around them), anything else (the `well-behaved`
/// test plugin's form post) with a charge id in plain text.
pub struct InstantProviders;

/// A confirmed PaymentIntent as `POST /v1/payment_intents` answers it (API version 2024-06-20).
const PAYMENT_INTENT: &str = r#"{
  "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
  "object": "payment_intent",
  "amount": 48900,
  "amount_capturable": 0,
  "amount_received": 48900,
  "capture_method": "automatic",
  "client_secret": "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
  "confirmation_method": "automatic",
  "created": 1733390000,
  "currency": "eur",
  "latest_charge": "ch_3MtwBwLkdIwHu7ix2Ir3T2aS",
  "livemode": false,
  "metadata": {"payment_id": "0b9f3c1e-8d2a-4f6b-9c3d-2e1f0a9b8c7d", "lease_id": "lease-4711", "installment_id": "inst-12", "contract": "C-2024-0042", "channel": "portal"},
  "next_action": null,
  "last_payment_error": null,
  "payment_method": "pm_1MtwBwLkdIwHu7ixAtxLLNQh",
  "payment_method_types": ["card"],
  "status": "succeeded"
}"#;

impl HttpTransport for InstantProviders {
    fn send(&self, request: OutboundRequest, _: Duration, _: usize) -> Result<HttpResponse, HttpFailure> {
        black_box(&request);
        if request.method == Method::Post && request.url.path() == "/v1/payment_intents" {
            return Ok(HttpResponse {
                status: 200,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("request-id".into(), "req_bench".into()),
                ],
                body: PAYMENT_INTENT.as_bytes().to_vec(),
            });
        }
        Ok(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"ch_3MtwBwLkdIwHu7ix28a3tqPa".to_vec(),
        })
    }
}

/// A runtime as the host builds it (precompiled cache under the bench's temporary directory),
/// with `tweak` applied, its plugins' HTTP answered by [`InstantProviders`].
pub fn runtime(tweak: impl FnOnce(&mut RuntimeConfig)) -> PluginRuntime {
    let mut config = RuntimeConfig {
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-bench-cache")),
        ..RuntimeConfig::default()
    };
    tweak(&mut config);
    PluginRuntime::with_transport(config, Arc::new(InstantProviders)).expect("runtime")
}

pub fn minimal(runtime: &PluginRuntime) -> LoadedPlugin {
    load(runtime, "minimal", Grants::none(), &[], &[])
}

/// The real Stripe plugin, with its default API base (answered in-process).
pub fn stripe(runtime: &PluginRuntime) -> LoadedPlugin {
    load(
        runtime,
        "stripe",
        Grants::new([origin("https://api.stripe.com")]),
        &[],
        &[("secret_key", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"), ("webhook_secret", "whsec_bench")],
    )
}

/// `well-behaved` posts a form to http://127.0.0.1:9, answered in-process.
pub fn well_behaved(runtime: &PluginRuntime) -> LoadedPlugin {
    load(
        runtime,
        "well-behaved",
        Grants::new([origin("http://127.0.0.1:9")]),
        &[("endpoint", "http://127.0.0.1:9")],
        &[("api_key", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"), ("webhook_secret", "whsec")],
    )
}

fn origin(text: &str) -> Origin {
    text.parse().expect("origin")
}

fn load(
    runtime: &PluginRuntime,
    name: &str,
    grants: Grants,
    config: &[(&str, &str)],
    secrets: &[(&str, &str)],
) -> LoadedPlugin {
    let p = package(name);
    let secrets: BTreeMap<String, SecretString> =
        secrets.iter().map(|(k, v)| ((*k).to_owned(), SecretString::from(*v))).collect();
    runtime.load(&p.manifest, &p.component, grants, build::map(config), secrets).expect(name)
}

/// A package from `target/plugins`, or from `PLUGIN_BENCH_PACKAGES` (another
/// `cargo xtask plugins --out DIR`, to compare two builds of the plugins on one host binary).
pub fn package(name: &str) -> build::Package {
    let Some(dir) = std::env::var_os("PLUGIN_BENCH_PACKAGES") else {
        return build::package(name);
    };
    let dir = Path::new(&dir).join(name);
    let text = std::fs::read_to_string(dir.join("plugin.toml")).expect("plugin.toml");
    let manifest = Manifest::from_toml(&text).expect("plugin.toml");
    let component = std::fs::read(dir.join(manifest.component())).expect("component");
    build::Package { manifest, manifest_text: text, component }
}
