//! The `host` binary itself: start-up on an empty directory, configuration errors, the
//! user command and graceful shutdown.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::PASSWORD;

const HOST: &str = env!("CARGO_BIN_EXE_host");

/// The binary with a clean environment (no inherited `LESSOR_*`), run in `dir`.
fn host(dir: &Path) -> Command {
    let mut cmd = Command::new(HOST);
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(dir).kill_on_drop(true);
    cmd
}

/// Starts `host serve` on port 0 and returns the child and the address it logged.
async fn serve(dir: &Path, extra_env: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = host(dir);
    cmd.arg("serve").env("LESSOR_ADDR", "127.0.0.1:0").stderr(Stdio::piped()).stdout(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("listening addr=").nth(1) {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("host exited before listening");
    })
    .await
    .expect("host listens within 30 s");
    // Keep draining the log so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

async fn sigterm(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn serve_with_no_configuration_starts_on_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path(), &[]).await;
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = reqwest::get(format!("http://{addr}/ready")).await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(dir.path().join("data").join("lessor.db").is_file(), "the SQLite file is created under ./data");

    sigterm(&child).await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "clean exit on SIGTERM, got {status}");
}

async fn start_up_error(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = host(dir);
    cmd.args(args).arg("serve");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output()).await.unwrap().unwrap();
    assert_eq!(out.status.code(), Some(2), "a configuration error exits with 2");
    String::from_utf8(out.stderr).unwrap()
}

#[tokio::test]
async fn unknown_environment_key_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = start_up_error(dir.path(), &[("LESSOR_LISTEN_PORT", "80")], &[]).await;
    assert!(
        err.contains("`listen_port`") && err.contains("LESSOR_LISTEN_PORT") && err.contains("unknown key"),
        "{err}"
    );
    assert!(!dir.path().join("data").exists(), "nothing is created before the configuration is valid");
}

#[tokio::test]
async fn malformed_urls_stop_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let err = start_up_error(dir.path(), &[("LESSOR_DATABASE_URL", "postgres//db:5432")], &[]).await;
    assert!(err.contains("database_url"), "{err}");
    let err = start_up_error(dir.path(), &[("LESSOR_REDIS_URL", "localhost:6379")], &[]).await;
    assert!(err.contains("redis_url"), "{err}");
    let err = start_up_error(dir.path(), &[("LESSOR_TOKEN_TTL_SECS", "soon")], &[]).await;
    assert!(err.contains("token_ttl_secs"), "{err}");
}

#[tokio::test]
async fn config_file_keys_are_checked_and_env_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "addr = \"127.0.0.1:0\"\ncolour = \"blue\"\n").unwrap();
    let err = start_up_error(dir.path(), &[], &["--config", "bad.toml"]).await;
    assert!(err.contains("`colour`"), "{err}");
    let err = start_up_error(dir.path(), &[], &["--config", "missing.toml"]).await;
    assert!(err.contains("missing.toml") && err.contains("not found"), "{err}");

    // The file says one data directory, the environment another: the environment wins.
    std::fs::write(dir.path().join("host.toml"), "data_dir = \"from-file\"\nlog_format = \"json\"\n").unwrap();
    let mut cmd = host(dir.path());
    cmd.args(["--config", "host.toml", "migrate"]).env("LESSOR_DATA_DIR", "from-env");
    let out = cmd.output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("from-env/lessor.db").is_file());
    assert!(!dir.path().join("from-file").exists());
    // log_format = "json" from the file applies: every log line is a JSON object.
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(log.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{log}");
}

#[tokio::test]
async fn secrets_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::helpers::PgTestDb::create("lessor_test").await;
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_password(Some("pw-that-must-not-leak")).unwrap();
    let secret = "jwt-secret-that-must-not-leak-0123456789";
    let mut cmd = host(dir.path());
    cmd.args(["migrate"])
        .env("LESSOR_DATABASE_URL", url.as_str())
        .env("LESSOR_JWT_SECRET", secret)
        .env("LESSOR_LOG_LEVEL", "trace");
    let out = cmd.output().await.unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(!all.contains("pw-that-must-not-leak") && !all.contains(secret), "{all}");
}

#[tokio::test]
async fn user_create_then_login_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let create = |email: &'static str, role: &'static str, password: &'static str| {
        let mut cmd = host(dir.path());
        cmd.args(["user", "create", "--email", email, "--password-stdin", "--role", role])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        async move {
            let mut child = cmd.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(format!("{password}\n").as_bytes()).await.unwrap();
            drop(stdin);
            child.wait_with_output().await.unwrap()
        }
    };
    let out = create("Boss@Example.com", "admin", PASSWORD).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("boss@example.com (admin)"));
    let dup = create("boss@example.com", "customer", PASSWORD).await;
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let weak = create("weak@example.com", "customer", "short").await;
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password"));
    let bad_role = create("x@example.com", "root", PASSWORD).await;
    assert!(!bad_role.status.success());

    let (mut child, addr) = serve(dir.path(), &[]).await;
    let client = reqwest::Client::new();
    let login = client
        .post(format!("http://{addr}/auth/login"))
        .json(&serde_json::json!({"email": "boss@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let token: Value = login.json().await.unwrap();
    let me: Value = client
        .get(format!("http://{addr}/api/v1/me"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "admin");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path(), &[]).await;
    let body = r#"{"email":"nobody@example.com","password":"whatever-it-is"}"#;
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    sigterm(&child).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The server is draining: new connections are refused, ours is still served.
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err(), "no new connections after SIGTERM");
    stream.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn version_is_printed() {
    let out = Command::new(HOST).arg("--version").output().await.unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), format!("host {}", env!("CARGO_PKG_VERSION")));
}

async fn create_user_cli(dir: &Path, email: &str, role: &str) {
    let mut cmd = host(dir);
    cmd.args(["user", "create", "--email", email, "--password-stdin", "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn login_at(addr: &str, email: &str) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!("http://{addr}/auth/login"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn search_count(addr: &str, token: &str, q: &str) -> usize {
    let body: Value = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/leases?q={q}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn search_reindex_rebuilds_the_embedded_index_from_the_database() {
    let dir = tempfile::tempdir().unwrap();
    create_user_cli(dir.path(), "ops@example.com", "operator").await;
    let (mut child, addr) = serve(dir.path(), &[]).await;
    let token = login_at(&addr, "ops@example.com").await;
    for vin in ["WDD2220821A000001", "WDD2220821A000002"] {
        let lease = crate::leases::lease_body(vin, "Mercedes-Benz", "S 580", "luxury");
        let response = reqwest::Client::new()
            .post(format!("http://{addr}/api/v1/leases"))
            .bearer_auth(&token)
            .json(&lease)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }

    // While the server holds the embedded index, a rebuild is refused with a reason.
    let busy = host(dir.path()).args(["search", "reindex"]).output().await.unwrap();
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("another host"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    sigterm(&child).await;
    child.wait().await.unwrap();

    // Lose the index entirely, rebuild it from the database, and search again.
    std::fs::remove_dir_all(dir.path().join("data/search")).unwrap();
    let out = host(dir.path()).args(["search", "reindex"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-indexed 2 leases into tantivy"));

    let (mut child, addr) = serve(dir.path(), &[]).await;
    let token = login_at(&addr, "ops@example.com").await;
    assert_eq!(search_count(&addr, &token, "luxary").await, 2);
    child.kill().await.unwrap();
}
