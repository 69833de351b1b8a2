//! Attacks through plugins, against a running host (issue 11): a granted name that resolves to a
//! loopback address, a request the host denies, forged log lines and a flood of host warnings, a
//! client that drops its request mid-call, a reload while every slot is busy, and a package by
//! another publisher claiming an installed provider.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use host::plugins::{PluginRuntime, RuntimeChecker, RuntimeConfig};
use lessor_plugin_registry::{OriginPattern, Package, PluginRef};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{Backend, TestApp};
use crate::payments::{Env, env_with};
use crate::peers::Fault;
use crate::plugin_build::packages_dir;
use crate::plugins::{Operator, pkg, shared_cache};

/// An HTTP server on 127.0.0.1 that answers anything with 200 and counts what it got.
pub(crate) struct Counter {
    pub(crate) port: u16,
    hits: Arc<AtomicUsize>,
}

impl Counter {
    pub(crate) async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { port, hits }
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Installs a built package with extra `--grant-host`s, checked by `checker`'s runtime, and
/// reloads the app's providers.
async fn install(app: &TestApp, checker: &PluginRuntime, name: &str, grants: &[String]) {
    let package = Package::load(&packages_dir().join(name)).unwrap();
    let grants: Vec<OriginPattern> = grants.iter().map(|g| OriginPattern::parse_grant(g).unwrap()).collect();
    let checker = RuntimeChecker::new(checker.clone());
    app.state.providers.registry().install(&package, &grants, &checker).await.unwrap();
    app.state.providers.refresh().await.unwrap();
}

fn own_runtime(app: &TestApp) -> PluginRuntime {
    app.state.providers.runtime().clone()
}

async fn pay(env: &Env, provider: &str, key: &str) -> (u16, Value) {
    let body = json!({"lease_id": env.lease_id, "amount": 1000, "currency": "EUR",
                      "provider": provider, "payment_method": "tok_attack"});
    let response = env.pay(key, &body).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Polls until `check` holds (or `within` passes).
async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- egress: addresses, not only names ----

#[tokio::test]
async fn a_granted_name_resolving_to_loopback_is_refused_unless_private_is_allowed() {
    let peer = Counter::start().await;
    let origin = format!("http://localhost:{}", peer.port);
    let target = format!("{origin}/charges");
    let env = env_with(Backend::Sqlite, |c| c.plugins.settings.set("http-ungranted", "target_url", &target)).await;
    // The manifest requests `http://127.0.0.1:*` (an address literal, reachable as granted); the
    // operator also grants the name `localhost`, which resolves to loopback.
    install(&env.app, &own_runtime(&env.app), "http-ungranted", std::slice::from_ref(&origin)).await;

    let (status, payment) = pay(&env, "http-ungranted", "localhost-refused").await;
    assert_eq!(status, 201, "{payment:#}");
    assert_eq!(payment["status"], "failed", "{payment:#}");
    assert_eq!(payment["failure_code"], "provider_egress_denied");
    let message = payment["failure_message"].as_str().unwrap();
    assert!(message.contains(&format!("{origin} refused")) && message.contains("loopback"), "{message}");
    assert_eq!(peer.hits(), 0, "nothing reached the loopback peer");

    // The same name granted with private addresses allowed (`--allow-private`) is reached.
    let registry = env.app.state.providers.registry();
    registry.remove(&"http-ungranted".parse::<PluginRef>().unwrap(), true).await.unwrap();
    install(&env.app, &own_runtime(&env.app), "http-ungranted", &[format!("{origin}+private")]).await;
    let (status, payment) = pay(&env, "http-ungranted", "localhost-allowed").await;
    assert_eq!((status, payment["status"].as_str()), (201, Some("succeeded")), "{payment:#}");
    assert_eq!(peer.hits(), 1);
}

// ---- a denied request is a configuration error ----

async fn a_denied_request_fails_the_payment_at_once(backend: Backend) {
    let env = env_with(backend, |c| {
        c.plugins.settings.set("http-ungranted", "target_url", "http://ungranted.invalid/charges");
    })
    .await;
    install(&env.app, &own_runtime(&env.app), "http-ungranted", &[]).await;
    let metrics = own_runtime(&env.app).metrics().clone();
    let process_calls = || {
        ["ok", "egress_denied", "internal", "sandbox"]
            .iter()
            .map(|outcome| metrics.calls("http-ungranted", "0.1.0", "process", outcome))
            .sum::<u64>()
    };

    let (status, payment) = pay(&env, "http-ungranted", "denied").await;
    assert_eq!(status, 201, "{payment:#}");
    assert_eq!(payment["status"], "failed", "failed at once, not pending: {payment:#}");
    assert_eq!(payment["failure_code"], "provider_egress_denied");
    let message = payment["failure_message"].as_str().unwrap();
    assert!(message.contains("http://ungranted.invalid:80"), "the origin is named: {message}");
    assert_eq!(process_calls(), 1);
    assert_eq!(metrics.calls("http-ungranted", "0.1.0", "process", "egress_denied"), 1);
    assert_eq!(metrics.egress_denied("http-ungranted"), 1);
    let exposed = env.app.client.get(env.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        exposed.lines().any(|l| l == "lessor_plugin_egress_denied_total{plugin=\"http-ungranted\"} 1"),
        "{exposed}"
    );

    // Reconciliation has nothing to ask: the provider is called once, not again for hours.
    let later = chrono::Utc::now() + chrono::Duration::hours(3);
    let report = env.app.state.payments.reconcile_due(later, 100).await.unwrap();
    assert_eq!(report.payments_checked, 0, "{report:?}");
    assert_eq!(process_calls(), 1, "reconciliation did not call the plugin again");
    let id = payment["id"].as_str().unwrap();
    let stored: Value =
        env.app.get_authed(&format!("/api/v1/payments/{id}"), &env.customer).await.json().await.unwrap();
    assert_eq!(stored["status"], "failed");
}

crate::on_each_backend!(a_denied_request_fails_the_payment_at_once);

// ---- plugins cannot write into the host's logs ----

const FORGED: &str = "2026-01-01 INFO forged";
/// `Limits::default().max_log_lines_per_call`, what `host serve` runs with.
const LOG_BUDGET: usize = 100;

/// `host serve` for `op`'s data directory, its standard error captured line by line.
async fn serve_capturing(op: &Operator, format: &str) -> (Child, String, Arc<Mutex<Vec<String>>>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(op.dir.path());
    cmd.envs(op.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.env("LESSOR_ADDR", "127.0.0.1:0").env("LESSOR_LOG_LEVEL", "info").env("LESSOR_LOG_FORMAT", format);
    cmd.arg("serve").stderr(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap()).lines();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = reader.next_line().await.unwrap() {
            let addr = match serde_json::from_str::<Value>(&line) {
                Ok(v) if v["message"] == "listening" => v["addr"].as_str().map(str::to_owned),
                _ => line.split("listening addr=").nth(1).map(|r| r.split_whitespace().next().unwrap().to_owned()),
            };
            lines.lock().unwrap().push(line);
            if let Some(addr) = addr {
                return addr;
            }
        }
        panic!("host exited before listening:\n{}", lines.lock().unwrap().join("\n"));
    })
    .await
    .expect("host listens");
    let sink = lines.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    (child, addr, lines)
}

/// Sends the forger's webhook and returns the log lines written meanwhile.
async fn forged_webhook(addr: &str, lines: &Mutex<Vec<String>>, panic: bool) -> Vec<String> {
    let mark = lines.lock().unwrap().len();
    let mut request = reqwest::Client::new().post(format!("http://{addr}/webhooks/log-forger")).body("{}");
    if panic {
        request = request.header("x-forge", "panic");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 503);
    tokio::time::sleep(Duration::from_millis(300)).await;
    lines.lock().unwrap()[mark..].to_vec()
}

fn assert_no_forgery(lines: &[String]) {
    for line in lines {
        assert!(!line.starts_with(FORGED), "a forged line reached the log: {line:?}");
        assert!(
            !line.contains(['\r', '\u{1b}', '\u{7}', '\0', '\u{2028}']),
            "raw control characters in the log: {line:?}"
        );
    }
}

#[tokio::test]
async fn plugin_text_cannot_forge_host_log_lines() {
    let op = Operator::new(Backend::Sqlite).await;
    op.ok(&["plugin", "install", &pkg("log-forger")]).await;

    let (mut child, addr, lines) = serve_capturing(&op, "text").await;
    for panic in [false, true] {
        let written = forged_webhook(&addr, &lines, panic).await;
        assert_no_forgery(&written);
        let of_the_call = written.iter().filter(|l| l.contains("plugin=log-forger")).count();
        assert!(of_the_call <= LOG_BUDGET, "{of_the_call} lines for one call:\n{}", written.join("\n"));
        assert!(of_the_call >= LOG_BUDGET / 2, "the flood reached the log budget: {of_the_call}");
        let joined = written.join("\n");
        assert!(joined.contains(&format!("hello\\n{FORGED} admin logged in\\r\\u{{1b}}[2K\\u{{7}}")), "{joined}");
        assert!(joined.contains(&format!("value\\n{FORGED} value\\u{{2028}}\\u{{0}}")), "{joined}");
        assert!(joined.contains("plugin HTTP refused"), "denied fetches are logged, within the budget");
        assert!(joined.contains("plugin log limit reached"), "{joined}");
        if panic {
            assert!(joined.contains(&format!("boom\\n{FORGED} panic")), "the panic text, escaped: {joined}");
        }
    }
    child.kill().await.unwrap();

    let (mut child, addr, lines) = serve_capturing(&op, "json").await;
    for panic in [false, true] {
        let written = forged_webhook(&addr, &lines, panic).await;
        assert_no_forgery(&written);
        let parsed: Vec<Value> = written
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {l:?}")))
            .collect();
        let of_the_call = parsed.iter().filter(|v| v["plugin"] == "log-forger").count();
        assert!((LOG_BUDGET / 2..=LOG_BUDGET).contains(&of_the_call), "{of_the_call} lines for one call");
        for v in &parsed {
            for text in v.as_object().unwrap().values().filter_map(Value::as_str) {
                assert!(!text.contains(|c: char| c.is_control()), "a control character survived: {text:?}");
            }
        }
        assert!(parsed.iter().any(|v| v["message"].as_str().is_some_and(|m| m.contains(&format!("\\n{FORGED}")))));
    }
    child.kill().await.unwrap();
}

// ---- slots are held while the sandbox runs ----

fn stripe_card(env: &Env, installment: usize) -> Value {
    json!({"lease_id": env.lease_id, "installment_id": env.installments[installment], "amount": 129900,
           "currency": "EUR", "provider": "stripe", "payment_method": "pm_card_visa"})
}

#[tokio::test]
async fn a_dropped_request_keeps_its_slot_and_a_reload_under_full_slots_waits() {
    let env = env_with(Backend::Sqlite, |c| c.plugins.max_concurrent_calls = 2).await;
    let runtime = own_runtime(&env.app);
    assert_eq!(runtime.free_slots(), 2);
    env.stripe.set_fault(Fault::Slow(Duration::from_millis(1500))).await;

    // A client that gives up mid-call: its request's future is dropped, the sandbox runs on.
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(400)).build().unwrap();
    let gave_up = impatient
        .post(env.app.url("/api/v1/payments"))
        .bearer_auth(&env.customer)
        .header("idempotency-key", "dropped")
        .json(&stripe_card(&env, 0))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client gave up before the answer");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runtime.free_slots(), 1, "the sandbox still waits on the provider: its slot stays taken");
    eventually("the slot is freed when the sandbox ends", Duration::from_secs(5), || runtime.free_slots() == 2).await;

    // Every slot busy with a slow call while a new provider is installed and loaded.
    let busy: Vec<_> = (1..=2)
        .map(|i| {
            let (client, url, token) = (env.app.client.clone(), env.app.url("/api/v1/payments"), env.customer.clone());
            let body = stripe_card(&env, i);
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .header("idempotency-key", format!("busy-{i}"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                response.status().as_u16()
            })
        })
        .collect();
    eventually("both slots taken", Duration::from_secs(5), || runtime.free_slots() == 0).await;
    // Checked by a runtime of its own, as `host plugin install` does in its own process.
    let installer = PluginRuntime::new(RuntimeConfig { cache_dir: Some(shared_cache()), ..RuntimeConfig::default() })
        .expect("installer runtime");
    install(&env.app, &installer, "echo-v1", &[]).await;
    let providers = env.app.state.providers.clone();
    assert!(providers.get("echo").is_ok(), "the reload waited for a slot instead of leaving echo broken");
    for call in busy {
        assert_eq!(call.await.unwrap(), 201);
    }
    env.stripe.set_fault(Fault::Normal).await;
    let (status, payment) = pay(&env, "echo", "after-reload").await;
    assert_eq!((status, payment["status"].as_str()), (201, Some("succeeded")), "{payment:#}");
}

// ---- secrets go only to the publisher they were set for ----

fn public_key(keygen_output: &str, id: &str) -> String {
    let prefix = format!("\"{id}\" = \"");
    keygen_output.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap().trim_end_matches('"').to_owned()
}

#[tokio::test]
async fn a_package_by_another_publisher_is_refused_without_the_flag() {
    let mut op = Operator::new(Backend::Sqlite).await;
    let mut keys = Vec::new();
    for id in ["acme", "mallory"] {
        let file = op.dir.path().join(format!("{id}.key"));
        let out = op.ok(&["plugin", "keygen", "--id", id, "--out", &file.display().to_string()]).await;
        op.set(&format!("LESSOR_PLUGIN_TRUSTED_KEYS__{}", id.to_uppercase()), &public_key(&out, id));
        keys.push(file.display().to_string());
    }
    let acme_v1 = op.copy_package("echo-v1");
    op.ok(&["plugin", "sign", &acme_v1.display().to_string(), "--key", &keys[0]]).await;
    assert!(op.ok(&["plugin", "install", &acme_v1.display().to_string()]).await.contains("trusted key `acme`"));

    // Another trusted key claims the same provider.
    let mallory_v2 = op.copy_package("echo-v2");
    op.ok(&["plugin", "sign", &mallory_v2.display().to_string(), "--key", &keys[1]]).await;
    let mallory_v2 = mallory_v2.display().to_string();
    for command in ["upgrade", "install"] {
        let out = op.run(&["plugin", command, &mallory_v2]).await;
        assert!(!out.ok, "`{command}` must refuse: {}", out.stdout);
        for words in ["echo@1.0.0 is published by key `acme`", "signed by key `mallory`", "--allow-new-publisher"] {
            assert!(out.stderr.contains(words), "`{command}`: expected {words:?} in\n{}", out.stderr);
        }
    }
    // Unsigned after signed.
    op.refused(&["plugin", "upgrade", &pkg("echo-v2")], "but this package is unsigned").await;
    assert_eq!(op.list().await.len(), 1, "nothing refused was installed");

    // The operator's explicit choice.
    let out = op.ok(&["plugin", "upgrade", &mallory_v2, "--allow-new-publisher"]).await;
    assert!(out.contains("upgraded echo: 1.0.0 -> 2.0.0"), "{out}");
    let items = op.list().await;
    assert_eq!(items.iter().find(|i| i["active"] == true).unwrap()["signed_by"], "mallory");
}
