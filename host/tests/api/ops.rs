use serde_json::Value;

use crate::helpers::{Backend, TestApp, assert_problem, raw_http};
use crate::on_each_backend;

on_each_backend!(health_and_ready_answer, bodies_past_the_limit_are_413, unreadable_bodies_are_refused_clearly);

async fn health_and_ready_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));

    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "up");
    let expected_redis = if backend == Backend::PostgresRedis { Value::from("up") } else { Value::Null };
    assert_eq!(body["checks"]["redis"], expected_redis);
}

async fn bodies_past_the_limit_are_413(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.max_body_bytes = 4096).await;
    let big = format!(r#"{{"email":"a@example.com","password":"{}"}}"#, "x".repeat(10_000));
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_problem(response, 413, "payload-too-large").await;

    // Without Content-Length (chunked), the limit still holds.
    let mut request = b"POST /auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for chunk in big.as_bytes().chunks(1000) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_http(&app.base, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("/problems/payload-too-large"), "{answer}");
}

async fn unreadable_bodies_are_refused_clearly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let post = |body: &'static str, content_type: &'static str| {
        app.client.post(app.url("/auth/login")).header("content-type", content_type).body(body).send()
    };
    assert_problem(post(r#"{"email":"a@example.com"}"#, "text/plain").await.unwrap(), 415, "unsupported-media-type")
        .await;
    assert_problem(post(r#"{"email": "#, "application/json").await.unwrap(), 400, "bad-request").await;
    let missing =
        assert_problem(post(r#"{"email":"a@example.com"}"#, "application/json").await.unwrap(), 422, "validation")
            .await;
    assert_eq!(missing["errors"][0]["field"], "password");
    let wrong_type =
        assert_problem(post(r#"{"email":7,"password":"x"}"#, "application/json").await.unwrap(), 422, "validation")
            .await;
    assert_eq!(wrong_type["errors"][0]["field"], "email");
}

#[tokio::test]
async fn request_ids_are_kept_when_plain_and_replaced_when_hostile() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let kept = app.client.get(app.url("/health")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "abc-123");
    let hostile = "x".repeat(200);
    let replaced = app.client.get(app.url("/health")).header("x-request-id", &hostile).send().await.unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, hostile);
    assert!(uuid::Uuid::parse_str(id).is_ok());
    // Errors carry it too.
    let missing = app.client.get(app.url("/no/such/route")).send().await.unwrap();
    assert!(missing.headers().contains_key("x-request-id"));
    assert_problem(missing, 404, "not-found").await;
    let wrong_method = app.client.delete(app.url("/health")).send().await.unwrap();
    assert_problem(wrong_method, 405, "method-not-allowed").await;
}

#[tokio::test]
async fn ready_is_503_naming_redis_when_redis_is_unreachable() {
    let app = TestApp::spawn_with(Backend::PostgresRedis, |c| {
        // Nothing listens on port 1.
        c.redis = Some(host::config::RedisTarget(url::Url::parse("redis://127.0.0.1:1").unwrap()));
    })
    .await;
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["redis"], "down");
    assert_eq!(body["checks"]["database"], "up");
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn ready_is_503_naming_the_database_when_it_is_gone() {
    let app = TestApp::spawn(Backend::Postgres).await;
    assert_eq!(app.client.get(app.url("/ready")).send().await.unwrap().status(), 200);
    app.pg.as_ref().unwrap().drop_now().await;
    // Readiness is answered from a probe at most a second old.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let ready = loop {
        let ready = app.client.get(app.url("/ready")).send().await.unwrap();
        if ready.status() == 503 || std::time::Instant::now() > deadline {
            break ready;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "down");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for _ in 0..3 {
        app.client.get(app.url("/health")).send().await.unwrap();
    }
    app.client.get(app.url("/users/../../etc/passwd")).send().await.unwrap();
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    assert!(text.contains(r#"lessor_http_requests_total{method="GET",route="/health",status="200"} 3"#), "{text}");
    assert!(text.contains(
        r#"lessor_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/health",status="200"}"#
    ));
    // Unmatched paths share one label value instead of growing the series.
    assert!(text.contains(r#"route="unmatched",status="404""#));
    assert!(!text.contains("passwd"));
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let spec: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().unwrap();
    for (path, method) in [
        ("/auth/login", "post"),
        ("/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/{id}", "get"),
        ("/api/v1/leases", "post"),
        ("/api/v1/leases", "get"),
        ("/api/v1/leases/{id}", "get"),
        ("/api/v1/leases/{id}", "patch"),
        ("/api/v1/leases/{id}/schedule", "get"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing from the spec");
    }
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    assert!(spec["components"]["schemas"]["Problem"].is_object());
}
