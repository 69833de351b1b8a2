//! The Meilisearch engine, through `meilisearch-sdk`.
//!
//! Writes are Meilisearch tasks: a write returns only once its task `succeeded`; a task that
//! failed, or did not finish within the task timeout, is an error and the host's indexer
//! retries it. Every HTTP call is bounded by the request timeout.

mod error;
mod filter;
mod settings;
mod tasks;

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use meilisearch_sdk::client::Client;
use meilisearch_sdk::errors::{Error, ErrorCode};
use meilisearch_sdk::indexes::Index;
use meilisearch_sdk::search::{SearchResults, Selectors};
use meilisearch_sdk::task_info::TaskInfo;
use serde::Deserialize;
use url::Url;
use uuid::Uuid;

use crate::{LeaseDocument, SearchError, SearchIndex, SearchPage, SearchQuery};

/// The Meilisearch adapter could not be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeiliConfigError {
    #[error("the Meilisearch URL must be http or https, not `{0}`")]
    Scheme(String),
    #[error("the Meilisearch API key must be printable ASCII")]
    ApiKey,
    #[error("`{0}` is not a Meilisearch index uid: use 1 to 400 of a-z A-Z 0-9 - _")]
    IndexUid(String),
    #[error("the Meilisearch client could not be built: {0}")]
    Client(String),
}

/// Lease search on a Meilisearch server.
pub struct MeiliIndex {
    client: Client,
    index_uid: String,
    request_timeout: Duration,
    task_timeout: Duration,
}

/// A hit as requested: only its id.
#[derive(Deserialize)]
struct Hit {
    id: Uuid,
}

impl MeiliIndex {
    /// An adapter for index `index_uid` of the server at `url`; `api_key` is sent as a
    /// Bearer token. Nothing is sent before the first call.
    pub fn new(url: &Url, api_key: Option<&str>, index_uid: &str) -> Result<Self, MeiliConfigError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(MeiliConfigError::Scheme(url.scheme().to_owned()));
        }
        // The SDK would panic on a key that is not a valid header value.
        if api_key.is_some_and(|key| !key.bytes().all(|b| b.is_ascii_graphic())) {
            return Err(MeiliConfigError::ApiKey);
        }
        // The uid goes into request paths unescaped.
        let uid_ok = (1..=400).contains(&index_uid.len())
            && index_uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !uid_ok {
            return Err(MeiliConfigError::IndexUid(index_uid.to_owned()));
        }
        let host = url.as_str().trim_end_matches('/');
        let client = Client::new(host, api_key).map_err(|err| MeiliConfigError::Client(err.to_string()))?;
        Ok(MeiliIndex {
            client,
            index_uid: index_uid.to_owned(),
            request_timeout: Duration::from_secs(5),
            task_timeout: Duration::from_secs(10),
        })
    }

    /// How long a write may wait for its task to finish (default 10 s).
    pub fn with_task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = timeout;
        self
    }

    /// How long one HTTP call may take (default 5 s).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Creates the index with primary key `id` if it is missing, and applies the searchable,
    /// filterable and sortable attributes, ranking rules and typo tolerance. Safe to run on
    /// every start-up and from several replicas at once.
    #[tracing::instrument(name = "search.configure", skip_all, fields(engine = "meilisearch", index = %self.index_uid))]
    pub async fn configure(&self) -> Result<(), SearchError> {
        match self.timed("read index", self.client.get_raw_index(&self.index_uid)).await? {
            Ok(_) => {}
            Err(Error::Meilisearch(err)) if err.error_code == ErrorCode::IndexNotFound => self.create_index().await?,
            Err(err) => return Err(error::from_sdk("read index", err)),
        }
        let task = self.call("update settings", self.index().set_settings(&settings::lease_settings())).await?;
        self.wait("update settings", task).await
    }

    async fn create_index(&self) -> Result<(), SearchError> {
        let created = self.client.create_index(&self.index_uid, Some(settings::PRIMARY_KEY));
        let task = self.call("create index", created).await?;
        match tasks::wait(&self.client, &task, self.request_timeout, self.task_timeout).await {
            Ok(()) => Ok(()),
            // Another replica created it first.
            Err(tasks::Failure::Failed(err)) if err.error_code == ErrorCode::IndexAlreadyExists => Ok(()),
            Err(failure) => Err(failure.into_search_error("create index")),
        }
    }

    fn index(&self) -> Index {
        self.client.index(&self.index_uid)
    }

    /// One HTTP call, bounded by the request timeout.
    async fn call<T>(&self, action: &str, call: impl Future<Output = Result<T, Error>>) -> Result<T, SearchError> {
        self.timed(action, call).await?.map_err(|err| error::from_sdk(action, err))
    }

    /// One HTTP call, bounded by the request timeout, with the SDK's own error left to the caller.
    async fn timed<T>(
        &self,
        action: &str,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<Result<T, Error>, SearchError> {
        tokio::time::timeout(self.request_timeout, call)
            .await
            .map_err(|_| SearchError::Unavailable(format!("{action}: no answer within {:?}", self.request_timeout)))
    }

    async fn wait(&self, action: &str, task: TaskInfo) -> Result<(), SearchError> {
        tasks::wait(&self.client, &task, self.request_timeout, self.task_timeout)
            .await
            .map_err(|failure| failure.into_search_error(action))
    }
}

#[async_trait]
impl SearchIndex for MeiliIndex {
    fn engine(&self) -> &'static str {
        "meilisearch"
    }

    #[tracing::instrument(name = "search.upsert", skip_all, fields(engine = "meilisearch", count = docs.len()))]
    async fn upsert(&self, docs: &[LeaseDocument]) -> Result<(), SearchError> {
        if docs.is_empty() {
            return Ok(());
        }
        let index = self.index();
        let task = self.call("add documents", index.add_or_replace(docs, Some(settings::PRIMARY_KEY))).await?;
        self.wait("add documents", task).await
    }

    #[tracing::instrument(name = "search.delete", skip_all, fields(engine = "meilisearch", count = ids.len()))]
    async fn delete(&self, ids: &[Uuid]) -> Result<(), SearchError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let index = self.index();
        let task = self.call("delete documents", index.delete_documents(&ids)).await?;
        self.wait("delete documents", task).await
    }

    #[tracing::instrument(name = "search.query", skip_all, fields(engine = "meilisearch"))]
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError> {
        query.validate()?;
        let index = self.index();
        let filter = filter::expression(query);
        let mut search = index.search();
        search
            .with_limit(query.limit)
            .with_offset(query.offset)
            .with_sort(&settings::SORT_NEWEST)
            .with_attributes_to_retrieve(Selectors::Some(&settings::RETRIEVE));
        if !query.text.trim().is_empty() {
            search.with_query(&query.text);
        }
        if let Some(filter) = &filter {
            search.with_filter(filter);
        }
        let results: SearchResults<Hit> = self.call("search", search.execute()).await?;
        let total = results.estimated_total_hits.or(results.total_hits).unwrap_or(results.hits.len());
        Ok(SearchPage {
            ids: results.hits.into_iter().map(|hit| hit.result.id).collect(),
            estimated_total: total as u64,
        })
    }

    #[tracing::instrument(name = "search.clear", skip_all, fields(engine = "meilisearch"))]
    async fn clear(&self) -> Result<(), SearchError> {
        let index = self.index();
        let task = self.call("delete all documents", index.delete_all_documents()).await?;
        self.wait("delete all documents", task).await
    }

    async fn ping(&self) -> Result<(), SearchError> {
        self.call("health", self.client.health()).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn accepts_a_plain_configuration() {
        let index = MeiliIndex::new(&url("http://127.0.0.1:7700/"), Some("masterKey"), "leases").unwrap();
        assert_eq!(index.engine(), "meilisearch");
    }

    #[test]
    fn refuses_other_schemes() {
        let err = MeiliIndex::new(&url("ftp://host"), None, "leases").err();
        assert_eq!(err, Some(MeiliConfigError::Scheme("ftp".into())));
    }

    #[test]
    fn refuses_keys_that_are_no_header_value() {
        for key in ["with space", "new\nline", "é"] {
            let err = MeiliIndex::new(&url("http://h"), Some(key), "leases").err();
            assert_eq!(err, Some(MeiliConfigError::ApiKey), "{key:?}");
        }
    }

    #[test]
    fn refuses_index_uids_that_would_change_the_path() {
        for uid in ["", "leases/../keys", "a b", "l?x=1"] {
            assert!(
                matches!(MeiliIndex::new(&url("http://h"), None, uid), Err(MeiliConfigError::IndexUid(_))),
                "{uid}"
            );
        }
    }
}
