//! Attacks on the HTTP server itself: slow sockets (slowloris heads, stalled bodies), and the
//! conventions a browser-facing API must keep (headers, CORS, who reads `/metrics`, a `/ready`
//! that cannot be used to load the database).

use std::time::{Duration, Instant};

use lessor_auth::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, assert_problem};

/// Raises this process's open-file soft limit to the hard limit; returns the soft limit.
fn raise_nofile() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscalls on a struct we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    limit.rlim_cur as u64
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// A fresh connection each time, so the measure includes connecting and no pooled socket
/// can have been closed under it.
async fn timed_health(app: &TestApp) -> Duration {
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(10)).build().unwrap();
    let started = Instant::now();
    let response = client.get(app.url("/health")).send().await.expect("a normal client is served");
    assert_eq!(response.status(), 200);
    started.elapsed()
}

const SLOW_SOCKETS: usize = 2_000;

/// 2,000 connections each send one byte of a request head every 10 s; a normal client is
/// answered within 1 s throughout, with the default cap and with a cap far below 2,000 (when
/// the connections waiting longest for a head make room).
async fn slow_sockets_do_not_lock_out_a_normal_client(max_connections: usize) {
    let limit = raise_nofile();
    assert!(limit >= (SLOW_SOCKETS as u64) * 2 + 512, "open-file limit {limit} too low for this test");
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.http.header_read_timeout = Duration::from_secs(60);
        c.http.max_connections = max_connections;
    })
    .await;
    let request = b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Padding: ";
    let mut sockets = Vec::with_capacity(SLOW_SOCKETS);
    for _ in 0..SLOW_SOCKETS {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        s.write_all(&request[..1]).await.unwrap();
        sockets.push(s);
    }
    let trickle = tokio::spawn(async move {
        let mut sent = 1;
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            for s in &mut sockets {
                // Evicted or timed-out sockets fail here; the rest trickle on.
                let _ = s.write_all(&request[sent % request.len()..][..1]).await;
            }
            sent += 1;
        }
    });
    let mut worst = Duration::ZERO;
    // Across one trickle round: right away, then every 2 s for 12 s.
    for _ in 0..7 {
        worst = worst.max(timed_health(&app).await);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    trickle.abort();
    eprintln!(
        "max_connections {max_connections}: slowest normal request beside {SLOW_SOCKETS} slow sockets: {worst:?}"
    );
    assert!(worst < Duration::from_secs(1), "a normal request took {worst:?} beside {SLOW_SOCKETS} slow sockets");
}

#[tokio::test]
async fn slow_sockets_do_not_lock_out_a_normal_client_with_the_default_cap() {
    slow_sockets_do_not_lock_out_a_normal_client(host::Config::defaults().http.max_connections).await;
}

#[tokio::test]
async fn slow_sockets_do_not_lock_out_a_normal_client_past_a_small_cap() {
    slow_sockets_do_not_lock_out_a_normal_client(200).await;
}

#[tokio::test]
async fn busy_connections_are_not_evicted_and_a_full_server_says_503() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.http.max_connections = 2;
        c.http.body_read_timeout = Duration::from_secs(5);
    })
    .await;
    // Two connections each inside a request (their heads were read, the bodies never come).
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        s.write_all(
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{",
        )
        .await
        .unwrap();
        busy.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = TcpStream::connect(addr(&app)).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    // Once the busy clients go away, the server takes new connections again.
    drop(busy);
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        match app.client.get(app.url("/metrics")).send().await {
            Ok(r) if r.status() == 200 => break r.text().await.unwrap(),
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("the server did not recover: {other:?}"),
        }
    };
    assert!(text.contains("lessor_http_connections_refused_total 1"), "{text}");
}

#[tokio::test]
async fn a_stalled_head_is_closed_after_the_header_timeout() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.http.header_read_timeout = Duration::from_secs(2)).await;
    let started = Instant::now();
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: slow\r\n").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(8), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection is still open after 8 s");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1500), "closed after {elapsed:?}, before the timeout");
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
    // An idle kept-alive connection is closed the same way.
    let mut idle = TcpStream::connect(addr(&app)).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(8), idle.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "an idle connection outlived the header timeout");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_stalled_body_gets_408_after_the_body_timeout() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.http.body_read_timeout = Duration::from_secs(2)).await;
    let started = Instant::now();
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(started.elapsed() >= Duration::from_millis(1500), "answered before the body timeout: {answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("/problems/body-timeout"), "{answer}");
}

#[tokio::test]
async fn every_response_carries_the_conventional_headers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token_for(Role::Customer).await;
    let me = app.get_authed("/api/v1/me", &token).await;
    assert_eq!(me.status(), 200);
    let h = me.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let login = app.login("nobody@example.com", "wrong password").await;
    assert_eq!(login.headers()["cache-control"], "no-store");
    assert_eq!(login.headers()["x-content-type-options"], "nosniff");
    let missing = app.client.get(app.url("/no/such/route")).send().await.unwrap();
    assert_eq!(missing.headers()["x-content-type-options"], "nosniff");
    assert_eq!(missing.headers()["referrer-policy"], "no-referrer");
}

fn has_cors(response: &reqwest::Response) -> bool {
    response.headers().keys().any(|k| k.as_str().starts_with("access-control-"))
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/leases"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_is_off_by_default_and_exact_when_configured() {
    let closed = TestApp::spawn(Backend::Sqlite).await;
    let get =
        closed.client.get(closed.url("/health")).header("origin", "https://app.example.com").send().await.unwrap();
    assert!(!has_cors(&get), "{:?}", get.headers());
    assert!(!has_cors(&preflight(&closed, "https://app.example.com").await));

    let open = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.http.cors_origins = vec!["https://app.example.com".parse().unwrap()];
    })
    .await;
    let token = open.token_for(Role::Customer).await;
    let allowed = open
        .client
        .get(open.url("/api/v1/me"))
        .bearer_auth(&token)
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example.com");
    let pre = preflight(&open, "https://app.example.com").await;
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(pre.headers()["access-control-allow-origin"], "https://app.example.com");
    assert!(pre.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(pre.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));

    let other = open
        .client
        .get(open.url("/api/v1/me"))
        .bearer_auth(&token)
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none(), "{:?}", other.headers());
    let pre = preflight(&open, "https://evil.example.com").await;
    assert!(pre.headers().get("access-control-allow-origin").is_none(), "{:?}", pre.headers());
}

const METRICS_TOKEN: &str = "metrics-token-0123456789";

#[tokio::test]
async fn metrics_need_the_operator_token_when_one_is_set() {
    let app =
        TestApp::spawn_with(Backend::Sqlite, |c| c.http.metrics_token = Some(METRICS_TOKEN.to_owned().into())).await;
    assert_problem(app.client.get(app.url("/metrics")).send().await.unwrap(), 401, "unauthenticated").await;
    let wrong = app.client.get(app.url("/metrics")).bearer_auth("metrics-token-9876543210").send().await.unwrap();
    assert_problem(wrong, 401, "unauthenticated").await;
    let customer = app.token_for(Role::Admin).await;
    let user_token = app.client.get(app.url("/metrics")).bearer_auth(customer).send().await.unwrap();
    assert_eq!(user_token.status(), 401, "an API token is not the metrics token");
    let ok = app.client.get(app.url("/metrics")).bearer_auth(METRICS_TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("lessor_http_requests_total"));
}

#[tokio::test]
async fn metrics_by_default_answer_only_local_unproxied_clients() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(app.client.get(app.url("/metrics")).send().await.unwrap().status(), 200);
    let proxied = app.client.get(app.url("/metrics")).header("x-forwarded-for", "203.0.113.9").send().await.unwrap();
    assert_problem(proxied, 403, "metrics-forbidden").await;
    let forwarded = app.client.get(app.url("/metrics")).header("forwarded", "for=203.0.113.9").send().await.unwrap();
    assert_problem(forwarded, 403, "metrics-forbidden").await;
}

#[tokio::test]
async fn metrics_on_their_own_listener_are_gone_from_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, _pg) = crate::helpers::test_config(Backend::Sqlite, &dir).await;
    config.http.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let app = host::Application::build(config).await.unwrap();
    let api = format!("http://127.0.0.1:{}", app.port());
    let metrics = format!("http://{}", app.metrics_addr().expect("a metrics listener"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    client.get(format!("{api}/health")).send().await.unwrap();
    assert_problem(client.get(format!("{api}/metrics")).send().await.unwrap(), 404, "not-found").await;
    let scraped = client.get(format!("{metrics}/metrics")).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains(r#"route="/health""#));
    // Nothing else is served there.
    assert_eq!(client.get(format!("{metrics}/api/v1/me")).send().await.unwrap().status(), 404);
    drop(stop);
}

fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

crate::on_each_backend!(ready_hammered_probes_at_most_once_a_second);

async fn ready_hammered_probes_at_most_once_a_second(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let started = Instant::now();
    let mut answered = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        let batch: Vec<_> = (0..50).map(|_| app.client.get(app.url("/ready")).send()).collect();
        for r in futures_join(batch).await {
            assert_eq!(r.unwrap().status(), 200);
            answered += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let probes = counter(&text, "lessor_ready_probes_total");
    assert!(answered >= 200, "only {answered} answers");
    assert!(
        probes >= 1 && (probes as f64) <= elapsed.ceil() + 1.0,
        "{probes} probes in {elapsed:.1} s for {answered} calls"
    );
}

async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output>
where
    F: Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_spec_documents_what_the_edge_answers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let spec: serde_json::Value =
        app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let responses = |path: &str, method: &str| spec["paths"][path][method]["responses"].clone();
    for (path, method) in [("/api/v1/me", "get"), ("/auth/login", "post"), ("/webhooks/{provider}", "post")] {
        for status in ["429", "503"] {
            assert!(responses(path, method)[status].is_object(), "{status} undocumented on {method} {path}");
        }
    }
    assert!(responses("/auth/login", "post")["408"].is_object());
    assert!(responses("/health", "get")["429"].is_null(), "probes are not rate-limited");
}
