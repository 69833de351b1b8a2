//! Local stand-ins for the payment providers' real systems, for tests only. They are not Stripe
//! and not a bank: each speaks just the protocol its plugin uses, strictly enough that a wrong
//! field, header or signature fails the test.
//!
//! - [`stripe::StripePeer`]: the subset of Stripe's API the `stripe` plugin uses
//!   (plugins/stripe/README.md), plus [`stripe::sign_webhook`].
//! - [`bank::BankPeer`]: the bank API of the `bank` plugin (plugins/bank/README.md), plus
//!   [`bank::signed_webhook`].
//!
//! Each is an axum server on `127.0.0.1:0` that records every request ([`RecordedRequest`]) and
//! can be switched into a [`Fault`] at run time. Include it from a test target with
//! `#[path = "peers/mod.rs"] mod peers;` (`"../peers/mod.rs"` from a directory target such as
//! `tests/api/`). Peers must be started inside a tokio runtime and live as long as the test
//! needs them; dropping one shuts its server down.
#![allow(dead_code)]

pub mod bank;
pub mod stripe;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a peer misbehaves, switchable while it runs ([`stripe::StripePeer::set_fault`],
/// [`bank::BankPeer::set_fault`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Answers as the real system would.
    #[default]
    Normal,
    /// Refuses connections: the listener is closed and open connections are cut.
    Down,
    /// Waits this long before handling each request (then handles it normally, as a slow real
    /// system would: a client that gave up may still have caused the effect).
    Slow(Duration),
    /// `500` with a JSON error body, without handling the request.
    Status500,
    /// `200` with an HTML body (a misconfigured proxy), without handling the request.
    Garbage,
}

/// One request a peer received, whatever it answered.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Names lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The fault in force when it arrived.
    pub fault: Fault,
}

impl RecordedRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as `application/x-www-form-urlencoded`, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// HMAC-SHA256 (RFC 2104), written out over `sha2` so the peers check the plugins' signatures
/// with an implementation independent of the `hmac` crate the plugins use.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Unix seconds now, by the machine's clock.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

/// The server under a peer: listener, fault switch, request log.
struct Server {
    port: u16,
    shared: Arc<ServerShared>,
    router: Router,
    task: Mutex<Option<JoinHandle<()>>>,
}

struct ServerShared {
    fault: Mutex<Fault>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Bumped to cut every open connection (see [`KillableStream`]).
    generation: watch::Sender<u64>,
    status_500_body: &'static str,
}

impl Server {
    async fn start(app: Router, status_500_body: &'static str) -> Self {
        let shared = Arc::new(ServerShared {
            fault: Mutex::new(Fault::Normal),
            requests: Mutex::new(Vec::new()),
            generation: watch::Sender::new(0),
            status_500_body,
        });
        let router = app.layer(axum::middleware::from_fn_with_state(shared.clone(), record_and_misbehave));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a peer on 127.0.0.1");
        let port = listener.local_addr().expect("peer address").port();
        let task = spawn_server(listener, router.clone(), &shared);
        Self { port, shared, router, task: Mutex::new(Some(task)) }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().expect("peer lock").clone()
    }

    async fn set_fault(&self, fault: Fault) {
        let running = self.task.lock().expect("peer lock").take();
        match (fault, running) {
            (Fault::Down, Some(task)) => {
                task.abort();
                let _ = task.await; // the listener is closed once the task is gone
                self.shared.generation.send_modify(|g| *g += 1);
            }
            (Fault::Down, None) => {}
            (_, Some(task)) => *self.task.lock().expect("peer lock") = Some(task),
            (_, None) => {
                let listener = TcpListener::bind(("127.0.0.1", self.port)).await.expect("rebind the peer's port");
                *self.task.lock().expect("peer lock") = Some(spawn_server(listener, self.router.clone(), &self.shared));
            }
        }
        *self.shared.fault.lock().expect("peer lock") = fault;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().map(|mut t| t.take()).ok().flatten() {
            task.abort();
        }
        self.shared.generation.send_modify(|g| *g += 1);
    }
}

fn spawn_server(listener: TcpListener, router: Router, shared: &ServerShared) -> JoinHandle<()> {
    let listener = KillableListener { inner: listener, generation: shared.generation.subscribe() };
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

/// Records the request, then applies the fault in force.
async fn record_and_misbehave(State(shared): State<Arc<ServerShared>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 4 << 20).await.unwrap_or_default();
    let fault = *shared.fault.lock().expect("peer lock");
    shared.requests.lock().expect("peer lock").push(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
        fault,
    });
    match fault {
        Fault::Slow(delay) => tokio::time::sleep(delay).await,
        Fault::Status500 => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "application/json")],
                shared.status_500_body,
            )
                .into_response();
        }
        Fault::Garbage => {
            let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
            return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], html).into_response();
        }
        Fault::Normal | Fault::Down => {}
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// A listener whose connections all break when the peer goes down, so a client's pooled
/// keep-alive connection cannot outlive the "outage".
struct KillableListener {
    inner: TcpListener,
    generation: watch::Receiver<u64>,
}

impl axum::serve::Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let mut generation = self.generation.clone();
        let born = *generation.borrow_and_update();
        let killed = Box::pin(async move {
            while *generation.borrow_and_update() == born {
                if generation.changed().await.is_err() {
                    return;
                }
            }
        });
        (KillableStream { stream, killed, dead: false }, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

struct KillableStream {
    stream: TcpStream,
    killed: Pin<Box<dyn Future<Output = ()> + Send>>,
    dead: bool,
}

impl KillableStream {
    fn is_dead(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.dead && self.killed.as_mut().poll(cx).is_ready() {
            self.dead = true;
        }
        self.dead
    }
}

fn cut() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer went down")
}

impl AsyncRead for KillableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.is_dead(cx) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.is_dead(cx) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
