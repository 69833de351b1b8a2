//! A stand-in Meilisearch server for the adapter's tests: axum on 127.0.0.1:0, state in memory.
//!
//! It implements exactly the subset of the Meilisearch HTTP API that `MeiliIndex` uses, with
//! Meilisearch's JSON shapes (camelCase fields, `{message, code, type, link}` errors):
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /health` | 200 `{"status":"available"}`; needs no key, as in Meilisearch |
//! | `GET /indexes/{uid}` | 200 the index, or 404 `index_not_found` |
//! | `POST /indexes` `{uid, primaryKey}` | 202 summarized task `indexCreation`; fails `index_already_exists` |
//! | `PATCH /indexes/{uid}/settings` | 202 task `settingsUpdate`; the supported keys are `searchableAttributes`, `filterableAttributes`, `sortableAttributes`, `rankingRules`, `typoTolerance`, `pagination` (others: 400 `bad_request`); creates the index if missing |
//! | `POST /indexes/{uid}/documents?primaryKey=id` | 202 task `documentAdditionOrUpdate`: add or replace; creates the index if missing; a document without its primary key fails the task `missing_document_id` |
//! | `POST /indexes/{uid}/documents/delete-batch` `["id", …]` | 202 task `documentDeletion` |
//! | `DELETE /indexes/{uid}/documents` | 202 task `documentDeletion` of every document |
//! | `POST /indexes/{uid}/search` | 200 `{hits, query, processingTimeMs, limit, offset, estimatedTotalHits}`; body fields `q`, `offset`, `limit`, `filter` (string), `sort`, `attributesToRetrieve` (others: 400 `bad_request`) |
//! | `GET /tasks/{uid}` | 200 the task: `enqueued`, then `succeeded` or `failed` with its `error`; 404 `task_not_found` |
//!
//! Tasks are processed in order, one every few milliseconds, by a background loop, so a
//! client sees them `enqueued` first and must poll. Search follows the settings: words match
//! in the searchable attributes exactly, with typos by `minWordSizeForTypos` (none in
//! `disableOnAttributes`), the last word also as a prefix; hits rank by fewer typos, then
//! more exact words, then `sort`. The filter grammar is the subset the adapter emits:
//! `attribute = "value"` clauses joined by ` AND `, `\` escaping the next character inside
//! the quotes, on filterable attributes only, compared without case (else 400
//! `invalid_search_filter`); `sort` takes `attribute:asc|desc` on sortable attributes.
//!
//! With a master key, every endpoint but `/health` wants `Authorization: Bearer <key>`:
//! missing is 401 `missing_authorization_header`, wrong is 403 `invalid_api_key`.
//!
//! Switches for failure tests: an outage (every endpoint answers 503 with a plain body, as a
//! proxy in front of a dead server would, and no task is processed), failing tasks, stalled
//! tasks, and slow answers.

mod routes;
mod search;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;
use url::Url;

pub use self::state::Peer;

/// A running peer; stops when dropped.
pub struct MeiliPeer {
    addr: SocketAddr,
    peer: Arc<Peer>,
    server: JoinHandle<()>,
    worker: JoinHandle<()>,
}

impl MeiliPeer {
    /// Starts a peer; with `master_key`, requests need it as a Bearer token.
    pub async fn start(master_key: Option<&str>) -> MeiliPeer {
        let peer = Arc::new(Peer::new(master_key.map(str::to_owned)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the peer");
        let addr = listener.local_addr().expect("peer address");
        let app = routes::router(Arc::clone(&peer));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("peer server");
        });
        let worker = tokio::spawn(state::process_tasks(Arc::clone(&peer)));
        MeiliPeer { addr, peer, server, worker }
    }

    pub fn url(&self) -> Url {
        Url::parse(&format!("http://{}", self.addr)).expect("peer url")
    }

    /// While on, every endpoint answers 503 and no task is processed.
    pub fn set_outage(&self, on: bool) {
        self.peer.with(|state| state.outage = on);
    }

    /// While set, every processed task fails with an error of this Meilisearch `type`
    /// (`"invalid_request"`, `"internal"`, …).
    pub fn set_task_failure(&self, error_type: Option<&str>) {
        self.peer.with(|state| state.task_failure = error_type.map(str::to_owned));
    }

    /// While on, tasks stay enqueued.
    pub fn set_stalled(&self, on: bool) {
        self.peer.with(|state| state.stalled = on);
    }

    /// Every answer waits this long first.
    pub fn set_latency(&self, latency: Duration) {
        self.peer.with(|state| state.latency = latency);
    }

    /// The documents of an index, by primary key.
    pub fn documents(&self, index: &str) -> Vec<Value> {
        self.peer
            .with(|state| state.indexes.get(index).map(|i| i.documents.values().cloned().collect()).unwrap_or_default())
    }

    /// The settings an index was given, as received.
    pub fn settings(&self, index: &str) -> Option<Value> {
        self.peer.with(|state| state.indexes.get(index).map(|i| Value::Object(i.settings.clone())))
    }

    pub fn primary_key(&self, index: &str) -> Option<String> {
        self.peer.with(|state| state.indexes.get(index).and_then(|i| i.primary_key.clone()))
    }

    /// `(method path, Authorization header)` of every request so far.
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.peer.with(|state| state.requests.clone())
    }

    /// How many tasks of each status: `(enqueued, succeeded, failed)`.
    pub fn task_counts(&self) -> (usize, usize, usize) {
        self.peer.with(|state| state.task_counts())
    }
}

impl Drop for MeiliPeer {
    fn drop(&mut self) {
        self.server.abort();
        self.worker.abort();
    }
}
