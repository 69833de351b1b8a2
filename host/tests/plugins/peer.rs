//! A local stand-in for a payment provider's API on 127.0.0.1, speaking the `well-behaved`
//! plugin's toy protocol, recording every request it receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    pub body: String,
}

#[derive(Clone, Default)]
struct Shared {
    hits: Arc<Mutex<Vec<Hit>>>,
}

pub struct Peer {
    pub port: u16,
    shared: Shared,
}

impl Peer {
    pub async fn start() -> Self {
        let shared = Shared::default();
        let app = Router::new()
            .route("/charges", post(charge))
            .route("/refunds", post(refund))
            .route("/slow/charges", post(slow))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind peer");
        let port = listener.local_addr().expect("peer address").port();
        tokio::spawn(async move { axum::serve(listener, app).await.expect("peer serves") });
        Self { port, shared }
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().expect("peer lock").clone()
    }
}

fn record(shared: &Shared, path: &str, headers: &HeaderMap, body: &Bytes) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    shared.hits.lock().expect("peer lock").push(Hit {
        path: path.to_owned(),
        authorization: header("authorization"),
        idempotency_key: header("idempotency-key"),
        body: String::from_utf8_lossy(body).into_owned(),
    });
}

/// `200 ch_<payment id>`, or `402 insufficient funds` for an amount of 402 (a test hook).
async fn charge(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    record(&shared, "/charges", &headers, &body);
    let form = String::from_utf8_lossy(&body).into_owned();
    let field =
        |name: &str| form.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}="))).unwrap_or_default().to_owned();
    if field("amount") == "402" {
        return (StatusCode::PAYMENT_REQUIRED, "insufficient funds".into());
    }
    (StatusCode::OK, format!("ch_{}", field("payment_id")))
}

async fn refund(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    record(&shared, "/refunds", &headers, &body);
    (StatusCode::OK, "re_1".into())
}

async fn slow(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    record(&shared, "/slow/charges", &headers, &body);
    tokio::time::sleep(Duration::from_secs(30)).await;
    (StatusCode::OK, "too late".into())
}
