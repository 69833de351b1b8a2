//! The HTTP/1 accept loop: hyper with a header-read timeout (which also ends idle kept-alive
//! connections), a cap on open connections and graceful shutdown.
//!
//! When the cap is reached, the connection that has waited longest for a request head (a slow
//! or idle client) is closed to make room for the newcomer; a connection with a request being
//! answered is never evicted. Only when every connection is busy is the newcomer refused, with a
//! minimal `503` and `Retry-After`, then closed. So slow sockets cannot lock normal clients out,
//! whatever their number.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use crate::metrics::Metrics;

/// What [`serve`] enforces per connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// File descriptors kept for the database pools, Redis, plugins and the package store.
const RESERVED_FDS: u64 = 256;

/// Raises the soft limit on open files to the hard limit; returns how many connections fit.
pub fn connection_capacity(wanted: usize) -> usize {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
                if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                    limit.rlim_cur = limit.rlim_max;
                }
            }
            let fits = (limit.rlim_cur as u64).saturating_sub(RESERVED_FDS).max(16);
            if (wanted as u64) > fits {
                tracing::warn!(
                    max_connections = wanted,
                    open_files = limit.rlim_cur as u64,
                    "LESSOR_MAX_CONNECTIONS is above what the open-file limit allows; capping at {fits}"
                );
                return fits as usize;
            }
        }
    }
    wanted
}

/// One open connection, as the cap sees it.
struct Tracked {
    /// Requests being answered on it now.
    in_flight: AtomicUsize,
    /// Milliseconds since the server started when it last became idle.
    idle_since: AtomicU64,
    evict: Notify,
}

#[derive(Default)]
struct Connections {
    open: Mutex<HashMap<u64, Arc<Tracked>>>,
    next_id: AtomicU64,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection, evicting the longest-idle one when `max` are open already.
    fn admit(&self, max: usize, now_ms: u64) -> Option<(u64, Arc<Tracked>)> {
        let mut open = self.lock();
        if open.len() >= max {
            let idlest = open
                .iter()
                .filter(|(_, t)| t.in_flight.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, t)| t.idle_since.load(Ordering::Relaxed))
                .map(|(id, _)| *id)?;
            if let Some(evicted) = open.remove(&idlest) {
                evicted.evict.notify_one();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked {
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now_ms),
            evict: Notify::new(),
        });
        open.insert(id, tracked.clone());
        Some((id, tracked))
    }
}

/// Marks a connection busy while a request is answered.
struct Busy {
    tracked: Arc<Tracked>,
    started: Instant,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.tracked.idle_since.store(now, Ordering::Relaxed);
        self.tracked.in_flight.fetch_sub(1, Ordering::Release);
    }
}

const FULL: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and lets every
/// connection finish the request it is on (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections = Arc::new(Connections::default());
    let started = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let builder = Arc::new(builder);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    let mut accept_errors_logged = None::<Instant>;
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, usually: wait a moment rather than spin.
                    if accept_errors_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "could not accept a connection");
                        accept_errors_logged = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        let now_ms = started.elapsed().as_millis() as u64;
        let Some((id, tracked)) = connections.admit(limits.max_connections, now_ms) else {
            metrics.connection_refused();
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            id,
            tracked,
            connections: connections.clone(),
            router: router.clone(),
            peer,
            started,
            builder: builder.clone(),
        };
        tasks.spawn(conn.run(stream, stop_rx.clone()));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The server is full of busy connections: say so briefly and close.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(FULL)).await;
    let _ = stream.shutdown().await;
}

struct Connection {
    id: u64,
    tracked: Arc<Tracked>,
    connections: Arc<Connections>,
    router: Router,
    peer: SocketAddr,
    started: Instant,
    builder: Arc<hyper::server::conn::http1::Builder>,
}

impl Connection {
    async fn run(self, stream: TcpStream, mut stop: watch::Receiver<bool>) {
        let Self { id, tracked, connections, router, peer, started, builder } = self;
        let busy_on = tracked.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            busy_on.in_flight.fetch_add(1, Ordering::AcqRel);
            let busy = Busy { tracked: busy_on.clone(), started };
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let response = router.oneshot(req.map(axum::body::Body::new)).await;
                drop(busy);
                Ok::<_, Infallible>(match response {
                    Ok(response) => response,
                    Err(never) => match never {},
                })
            }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let mut stopping = *stop.borrow();
        if stopping {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection ended");
                    }
                    break;
                }
                () = tracked.evict.notified() => {
                    tracing::debug!(%peer, "idle connection closed to make room");
                    break;
                }
                changed = stop.changed(), if !stopping => {
                    stopping = true;
                    if changed.is_ok() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
        connections.lock().remove(&id);
    }
}
