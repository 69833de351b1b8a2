//! The peer's state: indexes, documents, settings, the task queue and the switches.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

pub struct Peer {
    pub master_key: Option<String>,
    state: Mutex<State>,
}

#[derive(Default)]
pub struct State {
    pub indexes: BTreeMap<String, IndexData>,
    pub tasks: Vec<Task>,
    pub outage: bool,
    pub task_failure: Option<String>,
    pub stalled: bool,
    pub latency: Duration,
    pub requests: Vec<(String, Option<String>)>,
}

pub struct IndexData {
    pub primary_key: Option<String>,
    pub documents: BTreeMap<String, Value>,
    pub settings: Map<String, Value>,
    pub created_at: String,
}

pub struct Task {
    pub uid: u32,
    pub index_uid: String,
    pub kind: TaskKind,
    pub status: &'static str,
    pub error: Value,
    pub details: Value,
    pub enqueued_at: String,
    pub finished_at: Option<String>,
}

pub enum TaskKind {
    IndexCreation { primary_key: Option<String> },
    SettingsUpdate(Map<String, Value>),
    DocumentAddition { documents: Vec<Value>, primary_key: Option<String> },
    DocumentDeletion { ids: Vec<String> },
    DeleteAll,
}

impl TaskKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            TaskKind::IndexCreation { .. } => "indexCreation",
            TaskKind::SettingsUpdate(_) => "settingsUpdate",
            TaskKind::DocumentAddition { .. } => "documentAdditionOrUpdate",
            TaskKind::DocumentDeletion { .. } | TaskKind::DeleteAll => "documentDeletion",
        }
    }
}

pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A Meilisearch error body.
pub fn error_body(message: &str, code: &str, kind: &str) -> Value {
    json!({"message": message, "code": code, "type": kind, "link": format!("https://docs.meilisearch.com/errors#{code}")})
}

impl Peer {
    pub fn new(master_key: Option<String>) -> Peer {
        Peer { master_key, state: Mutex::new(State::default()) }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("peer state"))
    }
}

impl State {
    /// Queues a task and returns its summary, as Meilisearch answers a write with 202.
    pub fn enqueue(&mut self, index_uid: &str, kind: TaskKind) -> Value {
        let uid = self.tasks.len() as u32;
        let details = match &kind {
            TaskKind::IndexCreation { primary_key } => json!({"primaryKey": primary_key}),
            TaskKind::SettingsUpdate(settings) => Value::Object(settings.clone()),
            TaskKind::DocumentAddition { documents, .. } => {
                json!({"receivedDocuments": documents.len(), "indexedDocuments": null})
            }
            TaskKind::DocumentDeletion { ids } => {
                json!({"providedIds": ids.len(), "deletedDocuments": null, "originalFilter": null})
            }
            TaskKind::DeleteAll => json!({"providedIds": 0, "deletedDocuments": null, "originalFilter": null}),
        };
        let task = Task {
            uid,
            index_uid: index_uid.to_owned(),
            kind,
            status: "enqueued",
            error: Value::Null,
            details,
            enqueued_at: now(),
            finished_at: None,
        };
        let summary = json!({
            "taskUid": uid,
            "indexUid": index_uid,
            "status": "enqueued",
            "type": task.kind.type_name(),
            "enqueuedAt": task.enqueued_at,
        });
        self.tasks.push(task);
        summary
    }

    pub fn task_json(&self, uid: usize) -> Option<Value> {
        let task = self.tasks.get(uid)?;
        let finished = task.finished_at.is_some();
        Some(json!({
            "uid": task.uid,
            "batchUid": if finished { json!(task.uid) } else { Value::Null },
            "indexUid": task.index_uid,
            "status": task.status,
            "type": task.kind.type_name(),
            "canceledBy": null,
            "details": task.details,
            "error": task.error,
            "duration": if finished { json!("PT0.001S") } else { Value::Null },
            "enqueuedAt": task.enqueued_at,
            "startedAt": task.finished_at,
            "finishedAt": task.finished_at,
        }))
    }

    pub fn task_counts(&self) -> (usize, usize, usize) {
        let count = |status| self.tasks.iter().filter(|task| task.status == status).count();
        (count("enqueued"), count("succeeded"), count("failed"))
    }

    /// Processes the oldest enqueued task, if any and if nothing holds the queue.
    fn process_next(&mut self) {
        if self.outage || self.stalled {
            return;
        }
        let Some(position) = self.tasks.iter().position(|task| task.status == "enqueued") else { return };
        let outcome = match &self.task_failure {
            Some(kind) => Err(error_body("the peer was told to fail tasks", "peer_failure", kind)),
            None => {
                let task = &self.tasks[position];
                let index_uid = task.index_uid.clone();
                apply(&mut self.indexes, &index_uid, &task.kind)
            }
        };
        let task = &mut self.tasks[position];
        task.finished_at = Some(now());
        match outcome {
            Ok(done) => {
                task.status = "succeeded";
                if let (Some(details), Some(count)) = (task.details.as_object_mut(), done) {
                    let key =
                        if details.contains_key("indexedDocuments") { "indexedDocuments" } else { "deletedDocuments" };
                    details.insert(key.into(), json!(count));
                }
            }
            Err(error) => {
                task.status = "failed";
                task.error = error;
            }
        }
    }
}

fn new_index(primary_key: Option<String>) -> IndexData {
    IndexData { primary_key, documents: BTreeMap::new(), settings: Map::new(), created_at: now() }
}

/// Applies a task; `Ok(Some(n))` reports documents indexed or deleted.
fn apply(indexes: &mut BTreeMap<String, IndexData>, uid: &str, kind: &TaskKind) -> Result<Option<usize>, Value> {
    let not_found = || error_body(&format!("Index `{uid}` not found."), "index_not_found", "invalid_request");
    match kind {
        TaskKind::IndexCreation { primary_key } => {
            if indexes.contains_key(uid) {
                return Err(error_body(
                    &format!("Index `{uid}` already exists."),
                    "index_already_exists",
                    "invalid_request",
                ));
            }
            indexes.insert(uid.to_owned(), new_index(primary_key.clone()));
            Ok(None)
        }
        TaskKind::SettingsUpdate(settings) => {
            let index = indexes.entry(uid.to_owned()).or_insert_with(|| new_index(None));
            index.settings.extend(settings.clone());
            Ok(None)
        }
        TaskKind::DocumentAddition { documents, primary_key } => {
            let index = indexes.entry(uid.to_owned()).or_insert_with(|| new_index(primary_key.clone()));
            let key =
                index.primary_key.get_or_insert_with(|| primary_key.clone().unwrap_or_else(|| "id".into())).clone();
            let mut keyed = Vec::with_capacity(documents.len());
            for document in documents {
                let id = match document.get(&key) {
                    Some(Value::String(id)) => id.clone(),
                    Some(Value::Number(id)) => id.to_string(),
                    _ => {
                        let message = format!("Document doesn't have a `{key}` attribute.");
                        return Err(error_body(&message, "missing_document_id", "invalid_request"));
                    }
                };
                keyed.push((id, document.clone()));
            }
            let count = keyed.len();
            index.documents.extend(keyed);
            Ok(Some(count))
        }
        TaskKind::DocumentDeletion { ids } => {
            let index = indexes.get_mut(uid).ok_or_else(not_found)?;
            Ok(Some(ids.iter().filter(|id| index.documents.remove(id.as_str()).is_some()).count()))
        }
        TaskKind::DeleteAll => {
            let index = indexes.get_mut(uid).ok_or_else(not_found)?;
            let count = index.documents.len();
            index.documents.clear();
            Ok(Some(count))
        }
    }
}

/// The background loop that processes tasks, one every few milliseconds.
pub async fn process_tasks(peer: Arc<Peer>) {
    let mut tick = tokio::time::interval(Duration::from_millis(3));
    loop {
        tick.tick().await;
        peer.with(State::process_next);
    }
}
