//! The plugin runtime against real components: `cargo xtask plugins` builds the test plugins in
//! `plugins/testing/`, the runtime loads them, and hostile ones must fail with their typed error
//! while a well-behaved call right after still succeeds.

#[path = "plugins/build.rs"]
mod build;
#[path = "plugins/output.rs"]
mod output;
#[path = "plugins/peer.rs"]
mod peer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use build::{map, package};
use host::plugins::{
    CacheOutcome, Grants, Limits, LoadError, LoadedPlugin, Manifest, Origin, PluginCallError, PluginRuntime,
    ProviderError, RuntimeConfig, SandboxFailure,
};
use lessor_payments::{
    Currency, MethodKind, PaymentRequest, ProviderEventKind, ProviderPaymentStatus, ProviderRefundStatus,
    RefundRequest, WebhookRequest,
};
use peer::Peer;
use secrecy::SecretString;
use uuid::Uuid;

const MEMORY_CAP: usize = 32 << 20;

fn test_config() -> RuntimeConfig {
    RuntimeConfig {
        limits: Limits {
            memory_bytes: MEMORY_CAP,
            fuel: Some(100_000_000),
            timeout: Duration::from_secs(5),
            http_timeout: Duration::from_secs(3),
            ..Limits::default()
        },
        cache_dir: Some(cache_dir()),
        max_concurrent_calls: 16,
        ..RuntimeConfig::default()
    }
}

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")
}

/// One runtime for the whole binary, as in the host: tests share its engine and cache.
fn runtime() -> &'static PluginRuntime {
    static RUNTIME: OnceLock<PluginRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| PluginRuntime::new(test_config()).expect("plugin runtime"))
}

fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretString> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), SecretString::from(*v))).collect()
}

fn origin(s: &str) -> Origin {
    s.parse().expect("origin")
}

/// Loads a plugin that needs no grants, config or secrets.
fn load_plain(name: &str) -> LoadedPlugin {
    let p = package(name);
    runtime().load(&p.manifest, &p.component, Grants::none(), BTreeMap::new(), BTreeMap::new()).expect(name)
}

fn load_well_behaved(peer: &Peer, api_key: &str) -> LoadedPlugin {
    let p = package("well-behaved");
    runtime()
        .load(
            &p.manifest,
            &p.component,
            Grants::new([origin(&peer.origin())]),
            map(&[("endpoint", &peer.origin())]),
            secrets(&[("api_key", api_key), ("webhook_secret", "whsec_test")]),
        )
        .expect("load well-behaved")
}

/// A UUID named by `name` (the same on every call), so a test can say which payment it means.
fn pid(name: &str) -> Uuid {
    let hash = name.bytes().fold(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d_u128, |h, b| {
        (h ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b)
    });
    Uuid::from_u128(hash)
}

fn eur() -> Currency {
    Currency::parse("EUR").expect("EUR")
}

fn payment(id: &str, amount: i64) -> PaymentRequest {
    PaymentRequest {
        payment_id: pid(id),
        lease_id: pid("lease-1"),
        installment_id: Some(pid("inst-3")),
        amount,
        currency: eur(),
        method_kind: MethodKind::Token,
        payment_method: "tok_visa".into(),
        idempotency_key: format!("idem-{id}"),
        metadata: vec![("source".into(), "test".into())],
    }
}

fn sandbox_failure(result: Result<impl std::fmt::Debug, PluginCallError>) -> SandboxFailure {
    match result {
        Err(PluginCallError::Sandbox { failure, .. }) => failure,
        other => panic!("expected a sandbox failure, got {other:?}"),
    }
}

fn provider_error(result: Result<impl std::fmt::Debug, PluginCallError>) -> ProviderError {
    match result {
        Err(PluginCallError::Provider(e)) => e,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

/// After any hostile call, the host and other plugins carry on.
async fn well_behaved_still_succeeds(id: &str) {
    let peer = Peer::start().await;
    let plugin = load_well_behaved(&peer, "sk_after");
    let outcome = plugin.process(payment(id, 1200)).await.expect("well-behaved call after a hostile one");
    assert_eq!(outcome.status, ProviderPaymentStatus::Succeeded);
    assert_eq!(outcome.provider_tx_id, format!("ch_{}", pid(id)));
}

// ---- hostile plugins ----

#[tokio::test]
async fn an_infinite_loop_runs_out_of_fuel() {
    let plugin = load_plain("infinite-loop");
    let started = Instant::now();
    let failure = sandbox_failure(plugin.process(payment("loop", 100)).await);
    assert_eq!(failure, SandboxFailure::OutOfFuel);
    assert!(started.elapsed() < Duration::from_secs(5), "fuel should stop it well before the deadline");
    assert_eq!(runtime().metrics().traps("infinite-loop", "0.1.0", "out_of_fuel"), 1);
    well_behaved_still_succeeds("after-loop").await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_cap() {
    let plugin = load_plain("memory-bomb");
    let failure = sandbox_failure(plugin.process(payment("bomb", 100)).await);
    match failure {
        SandboxFailure::MemoryLimit { desired, limit } => {
            assert_eq!(limit, MEMORY_CAP);
            assert!(desired > MEMORY_CAP);
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
    well_behaved_still_succeeds("after-bomb").await;
}

#[tokio::test]
async fn deep_recursion_overflows_the_stack() {
    let plugin = load_plain("deep-recursion");
    assert_eq!(sandbox_failure(plugin.process(payment("deep", 100)).await), SandboxFailure::StackOverflow);
    well_behaved_still_succeeds("after-recursion").await;
}

#[tokio::test]
async fn a_panic_is_reported_with_its_message() {
    let plugin = load_plain("panic");
    match sandbox_failure(plugin.process(payment("p-42", 100)).await) {
        SandboxFailure::Panic { message } => {
            assert_eq!(message, format!("card vault exploded for payment {}", pid("p-42")))
        }
        other => panic!("expected Panic, got {other:?}"),
    }
    assert_eq!(runtime().metrics().calls("panic", "0.1.0", "process", "sandbox"), 1);
    well_behaved_still_succeeds("after-panic").await;
}

#[tokio::test]
async fn huge_output_is_refused() {
    let plugin = load_plain("huge-output");
    match sandbox_failure(plugin.process(payment("huge", 100)).await) {
        SandboxFailure::OutputTooLarge { size, limit } => {
            assert!(size >= 4 << 20, "{size}");
            assert_eq!(limit, Limits::default().max_output_bytes);
        }
        other => panic!("expected OutputTooLarge, got {other:?}"),
    }
    well_behaved_still_succeeds("after-huge").await;
}

#[tokio::test]
async fn http_to_an_ungranted_host_is_denied() {
    let granted = Peer::start().await;
    let other = Peer::start().await;
    let p = package("http-ungranted");
    let plugin = runtime()
        .load(
            &p.manifest,
            &p.component,
            Grants::new([origin(&granted.origin())]),
            map(&[("target_url", &format!("{}/charges", other.origin()))]),
            BTreeMap::new(),
        )
        .expect("load http-ungranted");

    // The plugin reports the refusal as its typed error (0.2.0 `egress-denied`); the host
    // records what it denied.
    match plugin.process(payment("sneaky", 100)).await {
        Err(PluginCallError::EgressDenied { denied, error, .. }) => {
            assert_eq!(denied, format!("{} was not granted", other.origin()));
            assert!(
                matches!(*error, PluginCallError::Provider(ProviderError::EgressDenied(ref o)) if *o == other.origin()),
                "{error:?}"
            );
        }
        other => panic!("expected the call to be reported as egress denied, got {other:?}"),
    }
    assert_eq!(runtime().metrics().egress_denied("http-ungranted"), 1);
    assert!(other.hits().is_empty(), "the ungranted host must not be contacted");
    assert!(granted.hits().is_empty());
    assert_eq!(runtime().metrics().http_requests("http-ungranted", "0.1.0", "denied"), 1);
    well_behaved_still_succeeds("after-ungranted").await;
}

#[tokio::test]
async fn files_are_out_of_reach() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("secret.txt");
    std::fs::write(&secret_file, "TOP SECRET").expect("write secret file");
    let p = package("read-file");
    let config = map(&[("path", secret_file.to_str().expect("utf-8 path"))]);
    let plugin = runtime().load(&p.manifest, &p.component, Grants::none(), config, BTreeMap::new()).expect("load");

    match provider_error(plugin.process(payment("files", 100)).await) {
        ProviderError::Internal(message) => {
            assert!(message.starts_with("file access refused"), "{message}");
            assert!(!message.contains("TOP SECRET") && !message.contains("root:"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    well_behaved_still_succeeds("after-files").await;
}

#[tokio::test]
async fn the_environment_is_empty() {
    assert!(std::env::var_os("PATH").is_some(), "the host process has an environment to leak");
    let p = package("read-env");
    let config = map(&[("variable", "CARGO_MANIFEST_DIR")]);
    let plugin = runtime().load(&p.manifest, &p.component, Grants::none(), config, BTreeMap::new()).expect("load");

    match provider_error(plugin.process(payment("env", 100)).await) {
        ProviderError::Internal(message) => assert!(message.starts_with("environment is empty"), "{message}"),
        other => panic!("expected an empty environment, got {other:?}"),
    }
    well_behaved_still_succeeds("after-env").await;
}

#[tokio::test]
async fn without_fuel_the_deadline_stops_a_loop() {
    let config = RuntimeConfig {
        limits: Limits { fuel: None, timeout: Duration::from_millis(300), ..test_config().limits },
        ..test_config()
    };
    let runtime = PluginRuntime::new(config).expect("runtime without fuel");
    let p = package("infinite-loop");
    let plugin =
        runtime.load(&p.manifest, &p.component, Grants::none(), BTreeMap::new(), BTreeMap::new()).expect("load");
    let started = Instant::now();
    assert_eq!(sandbox_failure(plugin.process(payment("loop", 1)).await), SandboxFailure::Timeout);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2), "{elapsed:?}");
}

// ---- the well-behaved plugin and its capabilities ----

#[tokio::test]
async fn well_behaved_charges_through_its_granted_peer() {
    let peer = Peer::start().await;
    let plugin = load_well_behaved(&peer, "sk_live_a");
    assert_eq!(plugin.provider_info().id, "well-behaved");
    assert!(plugin.provider_info().capabilities.currencies.contains(&"SEK".to_owned()));

    plugin.validate(payment("v1", 500)).await.expect("valid");
    let outcome = plugin.process(payment("pay-1", 1200)).await.expect("charge");
    assert_eq!(outcome.status, ProviderPaymentStatus::Succeeded);
    assert_eq!(outcome.provider_tx_id, format!("ch_{}", pid("pay-1")));

    let hits = peer.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].path, "/charges");
    assert_eq!(hits[0].authorization.as_deref(), Some("Bearer sk_live_a"));
    assert_eq!(hits[0].idempotency_key.as_deref(), Some("idem-pay-1"));
    assert!(hits[0].body.contains("amount=1200") && hits[0].body.contains("currency=EUR"), "{}", hits[0].body);

    // The provider's own answers come back as typed errors.
    assert_eq!(
        provider_error(plugin.process(payment("pay-2", 402)).await),
        ProviderError::Declined("insufficient funds".into())
    );
    let mut bad = payment("pay-3", 100);
    bad.currency = Currency::parse("JPY").expect("JPY");
    assert_eq!(
        provider_error(plugin.validate(bad).await),
        ProviderError::InvalidRequest { field: "amount.currency".into(), reason: "not supported".into() }
    );
    assert!(runtime().metrics().http_requests("well-behaved", "0.1.0", "ok") >= 2);
}

#[tokio::test]
async fn well_behaved_refunds_and_verifies_webhooks() {
    let peer = Peer::start().await;
    let plugin = load_well_behaved(&peer, "sk_refunds");
    let refund = RefundRequest {
        refund_id: pid("r-1"),
        payment_id: pid("pay-1"),
        provider_tx_id: "ch_pay-1".into(),
        amount: 500,
        currency: eur(),
        reason: None,
        idempotency_key: "idem-r-1".into(),
    };
    let outcome = plugin.refund(refund).await.expect("refund");
    assert_eq!((outcome.status, outcome.provider_refund_id.as_str()), (ProviderRefundStatus::Succeeded, "re_1"));

    let webhook = |signature: &str, body: &str| WebhookRequest {
        headers: vec![("X-Signature".into(), signature.into()), ("content-type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
        received_at: 1_700_000_000_000,
    };
    let batch = plugin.parse_webhook(webhook("whsec_test", "evt_1;charge.succeeded;ch_pay-1")).await.expect("webhook");
    let [event] = &batch.events[..] else { panic!("one event: {batch:?}") };
    assert_eq!((event.event_id.as_str(), event.kind), ("evt_1", ProviderEventKind::PaymentSucceeded));
    assert_eq!(event.occurred_at, Some(1_700_000_000_000));
    let reply = batch.reply.as_ref().expect("a 0.2.0 plugin chooses the answer");
    assert_eq!(
        (reply.status, reply.content_type.as_str(), &reply.body[..]),
        (200, "application/json", &b"{\"received\":true}"[..])
    );
    let ignored = plugin.parse_webhook(webhook("whsec_test", "evt_2;customer.updated;x")).await.expect("webhook");
    assert!(ignored.events.is_empty(), "{ignored:?}");
    assert_eq!(
        provider_error(plugin.parse_webhook(webhook("forged", "evt_3;charge.succeeded;ch_x")).await),
        ProviderError::SignatureInvalid
    );
}

#[tokio::test]
async fn config_and_secrets_reach_only_their_plugin() {
    let peer_a = Peer::start().await;
    let peer_b = Peer::start().await;
    let a = load_well_behaved(&peer_a, "sk_for_a");
    let b = load_well_behaved(&peer_b, "sk_for_b");
    a.process(payment("a-1", 100)).await.expect("a charges");
    b.process(payment("b-1", 100)).await.expect("b charges");
    assert_eq!(peer_a.hits()[0].authorization.as_deref(), Some("Bearer sk_for_a"));
    assert_eq!(peer_b.hits()[0].authorization.as_deref(), Some("Bearer sk_for_b"));
    assert_eq!(peer_a.hits().len(), 1);
    assert_eq!(peer_b.hits().len(), 1);

    // A plugin sees only keys its manifest declares and the operator set for it.
    let probe = |what: &str, key: &str| {
        let mut request = payment("probe", 1);
        request.metadata = vec![(what.into(), key.into())];
        request
    };
    let seen = |r: Result<lessor_payments::PaymentOutcome, PluginCallError>| r.expect("probe").provider_tx_id;
    assert_eq!(seen(a.process(probe("probe-secret", "api_key")).await), "probe-secret api_key: visible");
    assert_eq!(seen(a.process(probe("probe-config", "target_url")).await), "probe-config target_url: absent");

    // Another plugin configured with nothing sees nothing, even for keys others have.
    let p = package("well-behaved");
    let bare =
        runtime().load(&p.manifest, &p.component, Grants::none(), BTreeMap::new(), BTreeMap::new()).expect("bare");
    assert_eq!(seen(bare.process(probe("probe-secret", "api_key")).await), "probe-secret api_key: absent");
    assert_eq!(seen(bare.process(probe("probe-config", "endpoint")).await), "probe-config endpoint: absent");
    // And, configured with nothing, it says which key it misses (0.2.0 `misconfigured`).
    assert_eq!(
        provider_error(bare.process(payment("bare", 100)).await),
        ProviderError::Misconfigured("endpoint".into())
    );
}

#[tokio::test]
async fn the_call_deadline_covers_host_http() {
    let peer = Peer::start().await;
    let config = RuntimeConfig {
        limits: Limits { timeout: Duration::from_millis(700), ..test_config().limits },
        ..test_config()
    };
    let runtime = PluginRuntime::new(config).expect("runtime");
    let p = package("well-behaved");
    let plugin = runtime
        .load(
            &p.manifest,
            &p.component,
            Grants::new([origin(&peer.origin())]),
            map(&[("endpoint", &format!("{}/slow", peer.origin()))]),
            secrets(&[("api_key", "sk_slow")]),
        )
        .expect("load");
    let started = Instant::now();
    let error = provider_error(plugin.process(payment("slow", 100)).await);
    assert!(matches!(error, ProviderError::ProviderUnavailable(ref m) if m.contains("timed out")), "{error:?}");
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
}

// ---- loading ----

#[tokio::test]
async fn an_unknown_wit_version_is_refused_by_name() {
    let p = package("unknown-version");
    assert_eq!(p.manifest.wit(), "lessor:payments@0.9.0");
    let err = runtime()
        .load(&p.manifest, &p.component, Grants::none(), BTreeMap::new(), BTreeMap::new())
        .expect_err("refused");
    match &err {
        LoadError::UnknownWitVersion { plugin, claimed, known } => {
            assert_eq!(plugin, "unknown-version@0.1.0");
            assert_eq!(claimed, "lessor:payments@0.9.0");
            assert_eq!(known, &vec!["lessor:payments@0.1.0", "lessor:payments@0.2.0"]);
        }
        other => panic!("expected UnknownWitVersion, got {other:?}"),
    }
    assert!(err.to_string().contains("lessor:payments@0.9.0"), "{err}");
}

#[tokio::test]
async fn a_component_without_the_provider_export_is_refused_naming_it() {
    let p = package("minimal");
    // The smallest valid component: the preamble of an empty one.
    let empty_component = b"\0asm\x0d\x00\x01\x00";
    let err = runtime()
        .load(&p.manifest, empty_component, Grants::none(), BTreeMap::new(), BTreeMap::new())
        .expect_err("refused");
    match err {
        LoadError::MissingExport { export, .. } => assert_eq!(export, "lessor:payments/provider@0.2.0"),
        other => panic!("expected MissingExport, got {other:?}"),
    }
    let garbage = runtime().load(&p.manifest, b"not wasm", Grants::none(), BTreeMap::new(), BTreeMap::new());
    assert!(matches!(garbage, Err(LoadError::InvalidComponent { .. })));
}

#[tokio::test]
async fn keys_outside_the_manifest_are_refused() {
    let p = package("well-behaved");
    let rt = runtime();
    let err = rt.load(&p.manifest, &p.component, Grants::none(), map(&[("HOME", "/root")]), BTreeMap::new());
    assert!(matches!(err, Err(LoadError::UndeclaredKey { ref key, .. }) if key == "HOME"));
    let err = rt.load(&p.manifest, &p.component, Grants::none(), BTreeMap::new(), secrets(&[("db_password", "x")]));
    assert!(matches!(err, Err(LoadError::UndeclaredKey { ref key, .. }) if key == "db_password"));
}

#[tokio::test]
async fn a_manifest_that_disagrees_with_info_is_refused() {
    let mut p = package("minimal");
    p.manifest = Manifest::from_toml(&p.manifest_text.replace("provider = \"minimal\"", "provider = \"stripe\""))
        .expect("manifest");
    assert_eq!(p.manifest.provider().as_str(), "stripe");
    let err = runtime().load(&p.manifest, &p.component, Grants::none(), BTreeMap::new(), BTreeMap::new());
    assert!(matches!(err, Err(LoadError::InfoMismatch { ref reported, .. }) if reported == "minimal"), "{err:?}");
}

#[tokio::test]
async fn a_second_load_uses_the_precompiled_component() {
    let p = package("minimal");
    let first =
        runtime().load(&p.manifest, &p.component, Grants::none(), BTreeMap::new(), BTreeMap::new()).expect("load");
    let other_runtime = PluginRuntime::new(test_config()).expect("second runtime");
    let second =
        other_runtime.load(&p.manifest, &p.component, Grants::none(), BTreeMap::new(), BTreeMap::new()).expect("load");
    assert_eq!(first.digest(), second.digest());
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);
    assert!(
        std::fs::read_dir(cache_dir())
            .expect("cache dir")
            .any(|e| { e.expect("entry").file_name().to_string_lossy().starts_with(&first.digest().hex()) })
    );
}

#[tokio::test]
async fn defaults_and_input_caps() {
    let plugin = load_plain("minimal");
    assert_eq!(plugin.process(payment("m-1", 1)).await.expect("process").provider_tx_id, pid("m-1").to_string());
    plugin.validate(payment("m-2", 1)).await.expect("validate defaults to accepting");
    let refund = RefundRequest {
        refund_id: pid("r"),
        payment_id: pid("p"),
        provider_tx_id: "t".into(),
        amount: 1,
        currency: eur(),
        reason: None,
        idempotency_key: "k".into(),
    };
    assert_eq!(provider_error(plugin.refund(refund).await), ProviderError::NotSupported);

    let mut huge = payment("m-3", 1);
    huge.metadata = vec![("blob".into(), "x".repeat(2 << 20))];
    assert!(matches!(plugin.process(huge).await, Err(PluginCallError::InputTooLarge { .. })));
}

#[tokio::test]
async fn calls_run_side_by_side_in_separate_instances() {
    let plugin = load_plain("minimal");
    let calls = (0..32).map(|i| {
        let plugin = plugin.clone();
        tokio::spawn(async move { plugin.process(payment(&format!("c-{i}"), 1)).await })
    });
    for (i, call) in calls.enumerate() {
        assert_eq!(call.await.expect("join").expect("call").provider_tx_id, pid(&format!("c-{i}")).to_string());
    }
}

/// Plugin calls run on the runtime's own threads: with tokio's shared blocking pool taken (as
/// password hashing takes it under a login flood), a payment's plugin call still runs at once.
#[test]
fn plugin_calls_do_not_wait_for_the_shared_blocking_pool() {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().max_blocking_threads(1).build().unwrap();
    tokio.block_on(async {
        let plugin = load_plain("minimal");
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let hog = tokio::task::spawn_blocking(move || wait.recv().ok());
        let call = tokio::time::timeout(Duration::from_secs(2), plugin.process(payment("beside-a-busy-pool", 1))).await;
        release.send(()).unwrap();
        hog.await.unwrap();
        let outcome = call.expect("the plugin call waited for tokio's blocking pool").expect("call");
        assert_eq!(outcome.provider_tx_id, pid("beside-a-busy-pool").to_string());
    });
}

// ---- WIT versions side by side ----

/// A frozen 0.1.0 component and a 0.2.0 one in one runtime: both pay; the 0.1.0 one gets the
/// conversion's defaults (both method kinds, asynchronous settlement, no retrieve).
#[tokio::test]
async fn a_0_1_0_and_a_0_2_0_component_run_side_by_side() {
    let legacy = load_plain("legacy-v0-1");
    let minimal = load_plain("minimal");
    assert_eq!(legacy.wit_version(), host::plugins::WitVersion::V0_1_0);
    assert_eq!(minimal.wit_version(), host::plugins::WitVersion::V0_2_0);

    let old = legacy.process(payment("side-1", 700)).await.expect("0.1.0 pays");
    let new = minimal.process(payment("side-2", 700)).await.expect("0.2.0 pays");
    assert_eq!(old.provider_tx_id, format!("legacy-{}", pid("side-1")));
    assert_eq!(new.provider_tx_id, pid("side-2").to_string());

    let caps = &legacy.provider_info().capabilities;
    assert_eq!(caps.method_kinds, vec![MethodKind::Token, MethodKind::SepaMandate]);
    assert!(caps.asynchronous_settlement && caps.refunds && caps.partial_refunds);
    assert_eq!(caps.currencies, vec!["EUR".to_owned(), "USD".to_owned()]);
    let caps = &minimal.provider_info().capabilities;
    assert_eq!(caps.method_kinds, vec![MethodKind::Token]);
    assert!(!caps.refunds && !caps.asynchronous_settlement);

    // 0.1.0 has no retrieve: not-supported, so the host calls process again with the same key.
    let lookup = payment("side-1", 700).lookup(Some(old.provider_tx_id.clone()));
    assert_eq!(provider_error(legacy.retrieve_payment(lookup).await), ProviderError::NotSupported);
}
