//! Attacks past login: request floods per token, per address and per webhook provider (429 with
//! `Retry-After`, counted in memory or in Redis), webhooks that cannot be genuine refused before a
//! sandbox exists, and 5xx answers that must not tell an attacker what broke inside.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use host::plugins::{Origin, PluginRuntime, RuntimeChecker, RuntimeConfig};
use lessor_auth::Role;
use lessor_plugin_registry::{OriginPattern, Package};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_problem, raw_http};
use crate::on_each_backend;
use crate::plugin_build::packages_dir;

/// Limits count in one-minute windows: start a test's count early in one.
async fn fresh_window() {
    let into = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() % 60;
    if into > 45 {
        tokio::time::sleep(Duration::from_secs(61 - into)).await;
    }
}

async fn assert_limited(response: reqwest::Response) {
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_problem(response, 429, "too-many-requests").await;
}

fn counter(text: &str, prefix: &str, labels: &[&str]) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

async fn metrics(app: &TestApp) -> String {
    app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap()
}

on_each_backend!(
    api_requests_are_limited_per_token,
    api_requests_are_limited_per_address,
    limits_count_in_order_and_a_refusal_counts_no_further
);

async fn api_requests_are_limited_per_token(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.rate_limits.per_token = 5;
        c.rate_limits.per_address = 0;
    })
    .await;
    let (token, other) = (app.token_for(Role::Customer).await, app.token_for(Role::Customer).await);
    fresh_window().await;
    for i in 0..5 {
        assert_eq!(app.get_authed("/api/v1/me", &token).await.status(), 200, "request {i}");
    }
    assert_limited(app.get_authed("/api/v1/me", &token).await).await;
    // Per token, whatever the route.
    assert_limited(app.get_authed("/api/v1/leases", &token).await).await;
    assert_eq!(app.get_authed("/api/v1/me", &other).await.status(), 200, "another token has its own count");
    assert!(counter(&metrics(&app).await, "lessor_http_rate_limited_total", &[r#"scope="token""#]) >= 2);
    if let Some(redis) = &app.state.redis {
        // Counted in Redis (shared by replicas), under the namespace, never by the token itself.
        let mut conn = redis.conn().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg(redis.key("rate:token:*")).query_async(&mut conn).await.unwrap();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys.iter().all(|k| !k.contains(&token) && !k.contains(&other)), "{keys:?}");
    }
}

async fn api_requests_are_limited_per_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.rate_limits.per_token = 0;
        c.rate_limits.per_address = 6;
    })
    .await;
    let emails = [app.create_user(Role::Customer).await, app.create_user(Role::Customer).await];
    fresh_window().await;
    // One login each (counted: /auth is limited per address too), then four more requests.
    let mut tokens = Vec::new();
    for email in &emails {
        let body: Value = app.login(email, crate::helpers::PASSWORD).await.json().await.unwrap();
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
    }
    for i in 0..4 {
        assert_eq!(app.get_authed("/api/v1/me", &tokens[i % 2]).await.status(), 200, "request {i}");
    }
    // New tokens do not help: the address is spent.
    assert_limited(app.get_authed("/api/v1/me", &tokens[1]).await).await;
    assert_limited(app.login(&emails[0], crate::helpers::PASSWORD).await).await;
    assert_limited(app.client.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    // Probes are not limited.
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), 200);
}

/// The address is counted first, then the token (one Redis round trip for both): a request the
/// token limit refuses still counted against the address, one the address limit refuses is not
/// counted against the token.
async fn limits_count_in_order_and_a_refusal_counts_no_further(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.rate_limits.per_token = 3;
        c.rate_limits.per_address = 5;
    })
    .await;
    fresh_window().await;
    let token = app.token_for(Role::Customer).await; // the login: address 1
    for i in 0..3 {
        assert_eq!(app.get_authed("/api/v1/me", &token).await.status(), 200, "request {i}"); // address 2..4, token 1..3
    }
    assert_limited(app.get_authed("/api/v1/me", &token).await).await; // address 5, token 4: the token's limit
    assert_limited(app.get_authed("/api/v1/me", &token).await).await; // address 6: the address's limit
    let text = metrics(&app).await;
    assert_eq!(counter(&text, "lessor_http_rate_limited_total", &[r#"scope="token""#]), 1, "{text}");
    assert_eq!(counter(&text, "lessor_http_rate_limited_total", &[r#"scope="address""#]), 1, "{text}");
    if let Some(redis) = &app.state.redis {
        let mut conn = redis.conn().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg(redis.key("rate:token:*")).query_async(&mut conn).await.unwrap();
        assert_eq!(keys.len(), 1, "{keys:?}");
        let count: u32 = redis::cmd("GET").arg(&keys[0]).query_async(&mut conn).await.unwrap();
        assert_eq!(count, 4, "the request the address limit refused was not counted against the token");
        let ttl: i64 = redis::cmd("TTL").arg(&keys[0]).query_async(&mut conn).await.unwrap();
        assert!((1..=61).contains(&ttl), "the counter expires with its window: TTL {ttl}");
    }
}

fn stripe_headers(signature: &str) -> Vec<(String, String)> {
    vec![("content-type".into(), "application/json".into()), ("stripe-signature".into(), signature.into())]
}

async fn webhook_floods_are_limited_per_provider_and_address(backend: Backend) {
    let env = crate::payments::env_with(backend, |c| c.rate_limits.webhook = 10).await;
    fresh_window().await;
    let forged = stripe_headers("t=1,v1=00");
    for _ in 0..10 {
        assert_problem(webhook(&env.app, "stripe", &forged, "{}").await, 400, "webhook-signature-invalid").await;
    }
    assert_limited(webhook(&env.app, "stripe", &forged, "{}").await).await;
    // Another provider from the same address has its own count.
    let bank = vec![("x-bank-signature".to_owned(), "00".to_owned()), ("x-bank-timestamp".to_owned(), "1".to_owned())];
    assert_problem(webhook(&env.app, "bank", &bank, "{}").await, 400, "webhook-signature-invalid").await;
    let text = metrics(&env.app).await;
    let refused = "lessor_webhooks_refused_total";
    assert_eq!(counter(&text, refused, &[r#"provider="stripe""#, r#"reason="rate_limited""#]), 1, "{text}");
    assert_eq!(counter(&text, refused, &[r#"provider="stripe""#, r#"reason="signature_invalid""#]), 10);
}

#[tokio::test]
async fn webhook_floods_are_limited_per_provider_and_address_in_memory() {
    webhook_floods_are_limited_per_provider_and_address(Backend::Sqlite).await;
}

#[tokio::test]
async fn webhook_floods_are_limited_per_provider_and_address_in_redis() {
    webhook_floods_are_limited_per_provider_and_address(Backend::PostgresRedis).await;
}

async fn webhook(app: &TestApp, provider: &str, headers: &[(String, String)], body: &str) -> reqwest::Response {
    let mut request = app.client.post(app.url(&format!("/webhooks/{provider}"))).body(body.to_owned());
    for (k, v) in headers {
        request = request.header(k, v);
    }
    request.send().await.unwrap()
}

fn parse_webhook_calls(text: &str) -> u64 {
    counter(text, "lessor_plugin_calls_total", &[r#"function="parse_webhook""#])
}

#[tokio::test]
async fn webhooks_that_cannot_be_genuine_never_reach_a_sandbox() {
    let env = crate::payments::env(Backend::Sqlite).await;
    let before = parse_webhook_calls(&metrics(&env.app).await);

    // No signature header (Stripe's, then the bank's).
    let unsigned = vec![("content-type".to_owned(), "application/json".to_owned())];
    let r = assert_problem(webhook(&env.app, "stripe", &unsigned, "{}").await, 400, "webhook-signature-invalid").await;
    assert!(r["detail"].as_str().unwrap().contains("stripe-signature"), "{r}");
    assert_problem(webhook(&env.app, "bank", &unsigned, "{}").await, 400, "webhook-signature-invalid").await;
    // Past the declared cap, announced by Content-Length…
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(70_000));
    assert_problem(webhook(&env.app, "stripe", &stripe_headers("t=1,v1=00"), &big).await, 413, "webhook-too-large")
        .await;
    // …or sent chunked without one.
    let mut request = b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=1,v1=00\r\n\
Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for chunk in big.as_bytes().chunks(8192) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_http(&env.app.base, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("/problems/webhook-too-large"), "{answer}");

    let text = metrics(&env.app).await;
    assert_eq!(parse_webhook_calls(&text), before, "a plugin was called for a webhook that cannot be genuine");
    let refused = "lessor_webhooks_refused_total";
    assert_eq!(counter(&text, refused, &[r#"reason="signature_missing""#]), 2, "{text}");
    assert_eq!(counter(&text, refused, &[r#"reason="too_large""#]), 2, "{text}");

    // The metric is the right one: a webhook that could be genuine does reach the plugin.
    assert_problem(
        webhook(&env.app, "stripe", &stripe_headers("t=1,v1=00"), "{}").await,
        400,
        "webhook-signature-invalid",
    )
    .await;
    assert_eq!(parse_webhook_calls(&metrics(&env.app).await), before + 1);
}

/// What a 5xx body must never contain: sandbox and storage internals, paths.
fn assert_says_nothing_internal(body: &Value, request_id: &str) {
    let text = body.to_string().to_lowercase();
    for word in ["wasm", "wasmtime", "sqlx", "pool", "trap", "memory", "stripe@", "lessor_test", "relation", ".rs"] {
        assert!(!text.contains(word), "`{word}` in {body}");
    }
    let detail = body["detail"].as_str().unwrap_or("");
    assert!(!detail.contains('/') && !detail.contains('\\'), "a path in {body}");
    assert_eq!(body["request_id"], request_id, "the request id in {body}");
}

async fn problem_with_id(response: reqwest::Response) -> (u16, Value, String) {
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap(), id)
}

#[tokio::test]
async fn a_stopped_database_is_a_503_that_names_nothing() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let token = app.token_for(Role::Customer).await;
    app.pg.as_ref().unwrap().drop_now().await;
    let (status, body, id) = problem_with_id(app.get_authed("/api/v1/leases", &token).await).await;
    assert!(status >= 500, "{status} {body}");
    assert_says_nothing_internal(&body, &id);
    let (status, body, id) = problem_with_id(app.login("someone@example.com", "whatever password").await).await;
    assert!(status >= 500, "{status} {body}");
    assert_says_nothing_internal(&body, &id);
}

#[tokio::test]
async fn a_plugin_that_cannot_load_is_a_503_that_names_nothing() {
    // The host runs plugins in 1 MiB: the Stripe plugin (admitted by a roomier checker) cannot load.
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.plugins.memory_bytes = 1 << 20;
        c.plugins.cache_dir = Some(crate::plugins::shared_cache());
        c.plugins.reload_interval = Duration::from_millis(100);
    })
    .await;
    let roomy =
        PluginRuntime::new(RuntimeConfig { cache_dir: Some(crate::plugins::shared_cache()), ..Default::default() })
            .unwrap();
    let package = Package::load(&packages_dir().join("stripe")).unwrap();
    let grant = OriginPattern::from("http://127.0.0.1:9".parse::<Origin>().unwrap());
    app.state.providers.registry().install(&package, &[grant], &RuntimeChecker::new(roomy)).await.unwrap();
    app.state.providers.refresh().await.unwrap();
    let plugins: Value =
        app.get_authed("/api/v1/plugins", &app.token_for(Role::Admin).await).await.json().await.unwrap();
    assert!(plugins.to_string().contains("broken") || plugins.to_string().contains("error"), "{plugins}");

    let customer = app.token_for(Role::Customer).await;
    let operator = app.token_for(Role::Operator).await;
    let lease = crate::payments::active_lease(&app, &customer, &operator).await;
    let schedule: Value =
        app.get_authed(&format!("/api/v1/leases/{lease}/schedule"), &customer).await.json().await.unwrap();
    let payment = json!({
        "lease_id": lease,
        "installment_id": schedule["installments"][0]["id"],
        "amount": 129900,
        "currency": "EUR",
        "provider": "stripe",
        "payment_method": "pm_card_visa",
    });
    let response = app
        .client
        .post(app.url("/api/v1/payments"))
        .bearer_auth(&customer)
        .header("idempotency-key", "broken-1")
        .json(&payment)
        .send()
        .await
        .unwrap();
    let (status, body, id) = problem_with_id(response).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "/problems/provider-unavailable");
    assert_says_nothing_internal(&body, &id);

    let webhook = app.client.post(app.url("/webhooks/stripe")).header("stripe-signature", "t=1,v1=00").body("{}");
    let (status, body, id) = problem_with_id(webhook.send().await.unwrap()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "/problems/provider-unavailable");
    assert_says_nothing_internal(&body, &id);
}
