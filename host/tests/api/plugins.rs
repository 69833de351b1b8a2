//! The plugin platform end to end: `host plugin …` over both storage engines with each refusal
//! in the operator's words, `GET /api/v1/plugins`, and live changes reaching a running server
//! (and a second replica on the same database) with no restart and no failed call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use host::plugins::{LiveProviders, RuntimeChecker};
use lessor_auth::Role;
use lessor_payments::{Currency, MethodKind, PaymentRequest};
use lessor_plugin_registry::Package;
use serde_json::Value;
use tokio::process::Command;

use crate::helpers::{Backend, PgTestDb, TestApp, assert_problem};
use crate::plugin_build::packages_dir;

const HOST: &str = env!("CARGO_BIN_EXE_host");

/// Precompiled components shared by every test of this binary (keyed by digest and engine).
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("api-plugin-cache")
}

/// Runs `host` commands against one data directory and database, as an operator would.
pub(crate) struct Operator {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) env: Vec<(String, String)>,
    _pg: Option<PgTestDb>,
}

pub(crate) struct Output {
    pub(crate) ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Operator {
    pub(crate) async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env = vec![
            ("LESSOR_DATA_DIR".to_owned(), dir.path().join("data").display().to_string()),
            ("LESSOR_PLUGIN_CACHE_DIR".to_owned(), shared_cache().display().to_string()),
            ("LESSOR_LOG_LEVEL".to_owned(), "warn".to_owned()),
        ];
        let mut pg = None;
        if backend != Backend::Sqlite {
            let db = PgTestDb::create("lessor_plugins").await;
            env.push(("LESSOR_DATABASE_URL".to_owned(), db.url.clone()));
            pg = Some(db);
        }
        Self { dir, env, _pg: pg }
    }

    pub(crate) fn set(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(HOST);
        cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(self.dir.path());
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.args(args).output()).await.unwrap().unwrap();
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(out.ok, "`host {}` failed:\n{}\n{}", args.join(" "), out.stdout, out.stderr);
        out.stdout
    }

    /// The command fails, and says `words` on stderr.
    pub(crate) async fn refused(&self, args: &[&str], words: &str) {
        let out = self.run(args).await;
        assert!(!out.ok, "`host {}` should fail:\n{}", args.join(" "), out.stdout);
        assert!(out.stderr.contains(words), "`host {}`: expected {words:?} in\n{}", args.join(" "), out.stderr);
    }

    pub(crate) async fn list(&self) -> Vec<Value> {
        let text = self.ok(&["plugin", "list", "--json"]).await;
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("list --json: {e}: {text}"));
        v["items"].as_array().unwrap().clone()
    }

    /// A copy of a built package in this operator's directory, to tamper with.
    pub(crate) fn copy_package(&self, name: &str) -> PathBuf {
        let to = self.dir.path().join("packages").join(name);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(packages_dir().join(name)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
        to
    }
}

pub(crate) fn pkg(name: &str) -> String {
    packages_dir().join(name).display().to_string()
}

fn summary(items: &[Value]) -> Vec<(String, String, bool, bool)> {
    items
        .iter()
        .map(|i| {
            (
                i["provider"].as_str().unwrap().to_owned(),
                i["version"].as_str().unwrap().to_owned(),
                i["enabled"].as_bool().unwrap(),
                i["active"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn row(provider: &str, version: &str, enabled: bool, active: bool) -> (String, String, bool, bool) {
    (provider.to_owned(), version.to_owned(), enabled, active)
}

async fn plugin_life_cycle_over_the_cli(backend: Backend) {
    let op = Operator::new(backend).await;
    let out = op.ok(&["plugin", "install", &pkg("echo-v1")]).await;
    assert!(out.contains("installed echo@1.0.0 (active"), "{out}");
    assert!(out.contains("requests no network access"), "{out}");
    assert_eq!(summary(&op.list().await), vec![row("echo", "1.0.0", true, true)]);

    op.refused(&["plugin", "install", &pkg("echo-v1")], "echo@1.0.0 is already installed").await;

    let out = op.ok(&["plugin", "upgrade", &pkg("echo-v2")]).await;
    assert!(out.contains("upgraded echo: 1.0.0 -> 2.0.0"), "{out}");
    assert_eq!(summary(&op.list().await), vec![row("echo", "1.0.0", true, false), row("echo", "2.0.0", true, true)]);

    let inspect: Value = serde_json::from_str(&op.ok(&["plugin", "inspect", "echo@2.0.0", "--json"]).await).unwrap();
    assert_eq!(inspect["items"].as_array().unwrap().len(), 1);
    assert_eq!(inspect["items"][0]["wit"], "lessor:payments@0.2.0");
    assert!(inspect["items"][0]["digest"].as_str().unwrap().starts_with("sha256:"));
    let text = op.ok(&["plugin", "inspect", "echo"]).await;
    assert!(text.contains("echo@1.0.0") && text.contains("echo@2.0.0"), "{text}");

    assert!(op.ok(&["plugin", "disable", "echo"]).await.contains("disabled echo"));
    assert!(summary(&op.list().await).iter().all(|(_, _, enabled, _)| !enabled));
    assert!(op.ok(&["plugin", "enable", "echo"]).await.contains("enabled echo"));

    let out = op.ok(&["plugin", "rollback", "echo"]).await;
    assert!(out.contains("rolled back echo: 2.0.0 -> 1.0.0"), "{out}");
    assert_eq!(summary(&op.list().await), vec![row("echo", "1.0.0", true, true), row("echo", "2.0.0", true, false)]);

    op.refused(&["plugin", "remove", "echo@1.0.0"], "is the active version").await;
    assert!(op.ok(&["plugin", "remove", "echo@2.0.0"]).await.contains("removed echo 2.0.0"));
    op.refused(&["plugin", "rollback", "echo"], "no previously active version").await;
    op.refused(&["plugin", "upgrade", &pkg("well-behaved")], "install it first").await;
    op.refused(&["plugin", "disable", "nope"], "no plugin is installed for provider `nope`").await;
    assert!(op.ok(&["plugin", "remove", "echo", "--force"]).await.contains("removed echo 1.0.0"));
    assert!(op.list().await.is_empty());
}

async fn refusals_say_why(backend: Backend) {
    let mut op = Operator::new(backend).await;
    // Wrong world: the component claims a WIT version this host does not run.
    op.refused(&["plugin", "install", &pkg("unknown-version")], "unknown WIT version lessor:payments@0.9.0").await;

    // Missing export: a valid but empty component.
    let empty = op.copy_package("minimal");
    std::fs::write(empty.join("minimal.wasm"), b"\0asm\x0d\x00\x01\x00").unwrap();
    op.refused(&["plugin", "install", &empty.display().to_string()], "missing export lessor:payments/provider@0.2.0")
        .await;

    // Bad digest: the manifest pins one, the component (one byte changed) no longer matches.
    let pinned = op.copy_package("echo-v1");
    let wasm = pinned.join("echo-v1.wasm");
    let digest = lessor_plugin_registry::Digest::of(&std::fs::read(&wasm).unwrap());
    let manifest = std::fs::read_to_string(pinned.join("plugin.toml")).unwrap();
    std::fs::write(pinned.join("plugin.toml"), format!("{manifest}digest = \"{digest}\"\n")).unwrap();
    flip_a_byte(&wasm);
    op.refused(&["plugin", "install", &pinned.display().to_string()], "but plugin.toml pins").await;

    // Signatures: a publisher key, trusted by the operator, and signatures required.
    let key = op.dir.path().join("acme.key");
    let out = op.ok(&["plugin", "keygen", "--id", "acme", "--out", &key.display().to_string()]).await;
    let public = out.lines().find_map(|l| l.strip_prefix("\"acme\" = \"")).unwrap().trim_end_matches('"').to_owned();
    let other_key = op.dir.path().join("mallory.key");
    op.ok(&["plugin", "keygen", "--id", "mallory", "--out", &other_key.display().to_string()]).await;
    op.set("LESSOR_PLUGIN_TRUSTED_KEYS__ACME", &public);
    op.set("LESSOR_PLUGIN_REQUIRE_SIGNATURES", "true");

    op.refused(&["plugin", "install", &pkg("echo-v1")], "not signed").await;

    let untrusted = op.copy_package("echo-v1");
    op.ok(&["plugin", "sign", &untrusted.display().to_string(), "--key", &other_key.display().to_string()]).await;
    op.refused(
        &["plugin", "install", &untrusted.display().to_string()],
        "key `mallory`, which is not among the trusted",
    )
    .await;

    let tampered = op.dir.path().join("packages").join("tampered");
    std::fs::create_dir_all(&tampered).unwrap();
    let signed = op.copy_package("echo-v2");
    op.ok(&["plugin", "sign", &signed.display().to_string(), "--key", &key.display().to_string()]).await;
    for entry in std::fs::read_dir(&signed).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tampered.join(entry.file_name())).unwrap();
    }
    flip_a_byte(&tampered.join("echo-v2.wasm"));
    op.refused(&["plugin", "install", &tampered.display().to_string()], "does not match the package").await;

    let out = op.ok(&["plugin", "install", &signed.display().to_string()]).await;
    assert!(out.contains("signed by trusted key `acme`"), "{out}");
    let items = op.list().await;
    assert_eq!(summary(&items), vec![row("echo", "2.0.0", true, true)]);
    assert_eq!(items[0]["signed_by"], "acme");

    // Nothing refused left a trace.
    op.refused(&["plugin", "inspect", "minimal"], "no plugin is installed for provider `minimal`").await;
}

/// Commands print their result (stdout) or their error, once (stderr), not log lines; the
/// publisher's commands work whatever the operator's signature settings.
#[tokio::test]
async fn commands_print_results_and_each_error_once() {
    let mut op = Operator::new(Backend::Sqlite).await;
    // Log lines would show at info; a command shows only warnings and errors unless --verbose.
    op.set("LESSOR_LOG_LEVEL", "info");
    // Signatures required and no key trusted yet: keygen must still work (it is how one starts).
    op.set("LESSOR_PLUGIN_REQUIRE_SIGNATURES", "true");
    let key = op.dir.path().join("acme.key");
    let out = op.run(&["plugin", "keygen", "--id", "acme", "--out", &key.display().to_string()]).await;
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.stderr, "", "no log lines");
    let public = out.stdout.lines().find_map(|l| l.strip_prefix("\"acme\" = \"")).unwrap().trim_end_matches('"');
    assert!(out.stdout.contains(&format!("LESSOR_PLUGIN_TRUSTED_KEYS__ACME={public}")), "{}", out.stdout);

    let missing = op.dir.path().join("no-such-folder").join("k.key");
    op.refused(
        &["plugin", "keygen", "--id", "acme", "--out", &missing.display().to_string()],
        "does not exist; create it first",
    )
    .await;
    op.refused(&["plugin", "keygen", "--id", "acme", "--out", &key.display().to_string()], "already exists").await;

    // The operator's commands do need a configuration that holds together.
    op.refused(&["plugin", "list"], "names no publisher key").await;
    op.set("LESSOR_PLUGIN_REQUIRE_SIGNATURES", "false");
    let out = op.run(&["plugin", "list"]).await;
    assert!(out.ok && out.stdout.contains("no plugins installed"), "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stderr, "", "no log lines");
    let out = op.run(&["plugin", "disable", "nope"]).await;
    assert!(!out.ok);
    assert_eq!(out.stderr, "error: no plugin is installed for provider `nope`\n", "the error, once");
    let out = op.run(&["plugin", "install", &pkg("echo-v1")]).await;
    assert!(out.ok && out.stdout.contains("installed echo@1.0.0"), "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stderr, "", "no log lines");
    // --verbose brings the log lines back.
    let out = op.run(&["--verbose", "plugin", "disable", "echo"]).await;
    assert!(out.ok && out.stdout.contains("disabled echo"), "{}", out.stdout);
    assert!(out.stderr.contains("INFO") && out.stderr.contains("plugin provider switched"), "{}", out.stderr);
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

crate::on_each_backend!(plugin_life_cycle_over_the_cli, refusals_say_why);

fn request(n: u64) -> PaymentRequest {
    PaymentRequest {
        payment_id: uuid::Uuid::from_u128(u128::from(n)),
        lease_id: uuid::Uuid::nil(),
        installment_id: None,
        amount: 1000,
        currency: Currency::parse("EUR").unwrap(),
        method_kind: MethodKind::Token,
        payment_method: "tok".into(),
        idempotency_key: format!("k{n}"),
        metadata: vec![],
    }
}

async fn install(providers: &LiveProviders, name: &str, upgrade: bool) {
    let package = Package::load(&packages_dir().join(name)).unwrap();
    let checker = RuntimeChecker::new(providers.runtime().clone());
    let registry = providers.registry();
    if upgrade {
        registry.upgrade(&package, &[], &checker).await.unwrap();
    } else {
        registry.install(&package, &[], &checker).await.unwrap();
    }
}

/// Polls until `check` holds (or 10 s pass).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn plugins_json(app: &TestApp, token: &str) -> Vec<(String, String, bool, bool)> {
    let response = app.get_authed("/api/v1/plugins", token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    summary(body["items"].as_array().unwrap())
}

/// Install, upgrade, disable and rollback reach a running server (and a second replica on the
/// same database) without a restart, while a stream of calls goes on and none fails.
async fn live_changes_reach_running_servers(backend: Backend) {
    let fast = |c: &mut host::Config| {
        c.plugins.reload_interval = Duration::from_millis(100);
        c.plugins.cache_dir = Some(shared_cache());
    };
    let app = TestApp::spawn_with(backend, fast).await;
    let token = app.token_for(Role::Operator).await;
    let customer = app.token_for(Role::Customer).await;
    assert_problem(app.get_authed("/api/v1/plugins", &customer).await, 403, "forbidden").await;
    assert!(plugins_json(&app, &token).await.is_empty());

    // A second replica on the same database (PostgreSQL only: SQLite is one process's file).
    let replica = match &app.pg {
        Some(pg) => {
            let url = pg.url.clone();
            Some(
                TestApp::spawn_with(backend, move |c| {
                    fast(c);
                    c.database = lessor_store::DatabaseTarget::from_config(Some(&url), &c.data_dir).unwrap();
                })
                .await,
            )
        }
        None => None,
    };

    let providers = app.state.providers.clone();
    install(&providers, "echo-v1", false).await;
    eventually("echo 1.0.0 served", async || providers.get("echo").is_ok()).await;
    assert_eq!(plugins_json(&app, &token).await, vec![row("echo", "1.0.0", true, true)]);
    if let Some(replica) = &replica {
        let p = replica.state.providers.clone();
        eventually("the replica serves echo 1.0.0", async || p.get("echo").is_ok_and(|e| e.version() == "1.0.0")).await;
    }

    // A stream of payments over HTTP through the echo provider while it is upgraded.
    let customer_token = app.token_for(Role::Customer).await;
    let lease_id = crate::payments::active_lease(&app, &customer_token, &token).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (seen_v1, seen_v2) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let seen_v1 = seen_v1.clone();
        let (client, url, customer, lease_id) =
            (app.client.clone(), app.url("/api/v1/payments"), customer_token.clone(), lease_id.clone());
        let (stop, calls, failures, seen_v2) = (stop.clone(), calls.clone(), failures.clone(), seen_v2.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = serde_json::json!({"lease_id": lease_id, "amount": 1000, "currency": "EUR",
                                              "provider": "echo", "payment_method": "tok_stream"});
                let response = client
                    .post(&url)
                    .bearer_auth(&customer)
                    .header("idempotency-key", format!("stream-{w}-{n}"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                calls.fetch_add(1, Ordering::Relaxed);
                let status = response.status();
                let payment: Value = response.json().await.unwrap();
                match (status.as_u16(), payment["status"].as_str(), payment["provider_tx_id"].as_str()) {
                    (201, Some("succeeded"), Some(tx)) if tx.starts_with("echo-2.0.0-") => {
                        seen_v2.fetch_add(1, Ordering::Relaxed);
                    }
                    (201, Some("succeeded"), Some(tx)) if tx.starts_with("echo-1.0.0-") => {
                        seen_v1.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("payment failed: {status} {payment}");
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    install(&providers, "echo-v2", true).await;
    eventually("calls served by 2.0.0", async || seen_v2.load(Ordering::Relaxed) > 20).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no call failed during the upgrade");
    let (v1, v2) = (seen_v1.load(Ordering::Relaxed), seen_v2.load(Ordering::Relaxed));
    assert!(v1 > 0 && v2 > 20, "the stream ran across the switch: {v1} on 1.0.0, {v2} on 2.0.0");
    assert_eq!(calls.load(Ordering::Relaxed), v1 + v2);
    assert_eq!(
        plugins_json(&app, &token).await,
        vec![row("echo", "1.0.0", true, false), row("echo", "2.0.0", true, true)]
    );

    // Disable: refused at once everywhere; enable and roll back.
    providers.registry().disable(&"echo".parse().unwrap()).await.unwrap();
    eventually("echo disabled", async || providers.get("echo").is_err()).await;
    assert_eq!(
        plugins_json(&app, &token).await,
        vec![row("echo", "1.0.0", false, false), row("echo", "2.0.0", false, false)]
    );
    providers.registry().enable(&"echo".parse().unwrap()).await.unwrap();
    providers.registry().rollback(&"echo".parse().unwrap()).await.unwrap();
    eventually("echo rolled back", async || providers.get("echo").is_ok_and(|e| e.version() == "1.0.0")).await;
    if let Some(replica) = &replica {
        let p = replica.state.providers.clone();
        eventually("the replica rolled back", async || p.get("echo").is_ok_and(|e| e.version() == "1.0.0")).await;
    }
    let outcome = providers.get("echo").unwrap().process(request(1)).await.unwrap();
    assert_eq!(outcome.provider_tx_id, format!("echo-1.0.0-{}", uuid::Uuid::from_u128(1)));

    // Per plugin and version, in the host's /metrics.
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for version in ["1.0.0", "2.0.0"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("lessor_plugin_calls_total{")
                    && l.contains("plugin=\"echo-v")
                    && l.contains(&format!("version=\"{version}\""))
                    && l.contains("function=\"process\"")
                    && l.contains("outcome=\"ok\"")
            })
            .unwrap_or_else(|| panic!("no process calls of {version} in /metrics:\n{metrics}"));
        let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(count >= 1.0, "{line}");
    }
}

crate::on_each_backend!(live_changes_reach_running_servers);
