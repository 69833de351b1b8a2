//! The HTTP side of the peer: routes, the outage and key checks, and the handlers.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::search;
use super::state::{Peer, TaskKind, error_body};

type Shared = State<Arc<Peer>>;

const SETTINGS_KEYS: [&str; 6] = [
    "searchableAttributes",
    "filterableAttributes",
    "sortableAttributes",
    "rankingRules",
    "typoTolerance",
    "pagination",
];

pub fn router(peer: Arc<Peer>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/indexes", post(create_index))
        .route("/indexes/{uid}", get(read_index))
        .route("/indexes/{uid}/settings", axum::routing::patch(update_settings))
        .route("/indexes/{uid}/documents", post(add_documents).delete(delete_all))
        .route("/indexes/{uid}/documents/delete-batch", post(delete_batch))
        .route("/indexes/{uid}/search", post(search_index))
        .route("/tasks/{uid}", get(read_task))
        .layer(middleware::from_fn_with_state(Arc::clone(&peer), gate))
        .with_state(peer)
}

fn meili_error(status: StatusCode, message: &str, code: &str, kind: &str) -> Response {
    (status, axum::Json(error_body(message, code, kind))).into_response()
}

fn bad_request(message: &str) -> Response {
    meili_error(StatusCode::BAD_REQUEST, message, "bad_request", "invalid_request")
}

/// Records the request, then applies latency, the outage and the key check.
async fn gate(State(peer): Shared, request: Request, next: Next) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let line = format!("{} {}", request.method(), request.uri().path());
    let (latency, outage) = peer.with(|state| {
        state.requests.push((line, authorization.clone()));
        (state.latency, state.outage)
    });
    tokio::time::sleep(latency).await;
    if outage {
        return (StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable").into_response();
    }
    if let Some(key) = &peer.master_key
        && request.uri().path() != "/health"
    {
        match authorization.as_deref().and_then(|value| value.strip_prefix("Bearer ")) {
            None => {
                let message = "The Authorization header is missing.";
                return meili_error(StatusCode::UNAUTHORIZED, message, "missing_authorization_header", "auth");
            }
            Some(given) if given != key => {
                return meili_error(
                    StatusCode::FORBIDDEN,
                    "The provided API key is invalid.",
                    "invalid_api_key",
                    "auth",
                );
            }
            Some(_) => {}
        }
    }
    next.run(request).await
}

async fn health() -> Response {
    axum::Json(json!({"status": "available"})).into_response()
}

/// The body as `T`, or the 400 Meilisearch answers to a body it cannot read.
fn parse_json<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|err| Box::new(bad_request(&format!("invalid JSON: {err}"))))
}

fn accepted(summary: Value) -> Response {
    (StatusCode::ACCEPTED, axum::Json(summary)).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateIndex {
    uid: String,
    primary_key: Option<String>,
}

async fn create_index(State(peer): Shared, body: Bytes) -> Response {
    let create: CreateIndex = match parse_json(&body) {
        Ok(create) => create,
        Err(response) => return *response,
    };
    let kind = TaskKind::IndexCreation { primary_key: create.primary_key };
    accepted(peer.with(|state| state.enqueue(&create.uid, kind)))
}

async fn read_index(State(peer): Shared, Path(uid): Path<String>) -> Response {
    let found = peer.with(|state| {
        state.indexes.get(&uid).map(|index| {
            json!({"uid": uid, "primaryKey": index.primary_key, "createdAt": index.created_at, "updatedAt": index.created_at})
        })
    });
    match found {
        Some(index) => axum::Json(index).into_response(),
        None => meili_error(
            StatusCode::NOT_FOUND,
            &format!("Index `{uid}` not found."),
            "index_not_found",
            "invalid_request",
        ),
    }
}

async fn update_settings(State(peer): Shared, Path(uid): Path<String>, body: Bytes) -> Response {
    let settings: Map<String, Value> = match parse_json(&body) {
        Ok(settings) => settings,
        Err(response) => return *response,
    };
    if let Some(unknown) = settings.keys().find(|key| !SETTINGS_KEYS.contains(&key.as_str())) {
        return bad_request(&format!("Unknown field `{unknown}`: this peer supports {SETTINGS_KEYS:?}"));
    }
    accepted(peer.with(|state| state.enqueue(&uid, TaskKind::SettingsUpdate(settings))))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DocumentsParams {
    primary_key: Option<String>,
}

async fn add_documents(
    State(peer): Shared,
    Path(uid): Path<String>,
    Query(params): Query<DocumentsParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.starts_with("application/json") {
        let message = format!("The Content-Type `{content_type}` is not supported by this peer.");
        return meili_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, &message, "invalid_content_type", "invalid_request");
    }
    let documents: Vec<Value> = match parse_json(&body) {
        Ok(documents) => documents,
        Err(response) => return *response,
    };
    let kind = TaskKind::DocumentAddition { documents, primary_key: params.primary_key };
    accepted(peer.with(|state| state.enqueue(&uid, kind)))
}

async fn delete_batch(State(peer): Shared, Path(uid): Path<String>, body: Bytes) -> Response {
    let ids: Vec<Value> = match parse_json(&body) {
        Ok(ids) => ids,
        Err(response) => return *response,
    };
    let ids = ids
        .into_iter()
        .map(|id| match id {
            Value::String(id) => id,
            other => other.to_string(),
        })
        .collect();
    accepted(peer.with(|state| state.enqueue(&uid, TaskKind::DocumentDeletion { ids })))
}

async fn delete_all(State(peer): Shared, Path(uid): Path<String>) -> Response {
    accepted(peer.with(|state| state.enqueue(&uid, TaskKind::DeleteAll)))
}

async fn search_index(State(peer): Shared, Path(uid): Path<String>, body: Bytes) -> Response {
    let request: search::Request = match parse_json(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    peer.with(|state| match state.indexes.get(&uid) {
        None => meili_error(
            StatusCode::NOT_FOUND,
            &format!("Index `{uid}` not found."),
            "index_not_found",
            "invalid_request",
        ),
        Some(index) => match search::run(index, &request) {
            Ok(results) => axum::Json(results).into_response(),
            Err((code, message)) => meili_error(StatusCode::BAD_REQUEST, &message, code, "invalid_request"),
        },
    })
}

async fn read_task(State(peer): Shared, Path(uid): Path<usize>) -> Response {
    match peer.with(|state| state.task_json(uid)) {
        Some(task) => axum::Json(task).into_response(),
        None => {
            meili_error(StatusCode::NOT_FOUND, &format!("Task `{uid}` not found."), "task_not_found", "invalid_request")
        }
    }
}
