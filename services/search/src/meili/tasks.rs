//! Waiting for a Meilisearch task to finish.

use std::time::Duration;

use meilisearch_sdk::client::Client;
use meilisearch_sdk::errors::MeilisearchError;
use meilisearch_sdk::task_info::TaskInfo;
use meilisearch_sdk::tasks::Task;
use tokio::time::Instant;

use super::error;
use crate::SearchError;

const FIRST_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_millis(200);

/// Why a task did not succeed.
pub(super) enum Failure {
    /// Meilisearch processed the task and failed it.
    Failed(MeilisearchError),
    /// Still enqueued or processing at the deadline.
    TimedOut { uid: u32, after: Duration },
    /// Polling the task itself failed.
    Poll(SearchError),
}

impl Failure {
    pub fn into_search_error(self, action: &str) -> SearchError {
        match self {
            Failure::Failed(err) => error::from_meilisearch(action, &err),
            Failure::TimedOut { uid, after } => {
                SearchError::Unavailable(format!("{action}: task {uid} not finished after {after:?}"))
            }
            Failure::Poll(err) => err,
        }
    }
}

/// Polls the task, with growing pauses, until it succeeded, failed, or `timeout` passed.
pub(super) async fn wait(
    client: &Client,
    task: &TaskInfo,
    request_timeout: Duration,
    timeout: Duration,
) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_POLL;
    loop {
        let polled = tokio::time::timeout(request_timeout, client.get_task(task)).await;
        let status = match polled {
            Ok(Ok(status)) => status,
            Ok(Err(err)) => return Err(Failure::Poll(error::from_sdk("read task", err))),
            Err(_) => {
                let err = SearchError::Unavailable(format!("read task: no answer within {request_timeout:?}"));
                return Err(Failure::Poll(err));
            }
        };
        match status {
            Task::Succeeded { .. } => return Ok(()),
            Task::Failed { content } => return Err(Failure::Failed(content.error)),
            Task::Enqueued { .. } | Task::Processing { .. } => {}
        }
        if Instant::now() + pause > deadline {
            return Err(Failure::TimedOut { uid: task.task_uid, after: timeout });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}
