//! Lease search behind one trait, [`SearchIndex`], with two real engines:
//!
//! - [`MeiliIndex`]: a Meilisearch server through `meilisearch-sdk`, for several replicas;
//! - [`TantivyIndex`]: an embedded tantivy index in a local folder, the default without setup.
//!
//! The database stays the source of truth: the host's outbox and indexer feed the index and
//! replay whatever an engine did not accept, so every write method here fails unless the engine
//! durably took the change.

mod document;
mod error;

pub mod embedded;
pub mod meili;

pub use document::{LeaseDocument, MAX_LIMIT, MAX_TEXT_CHARS, MAX_WINDOW, SearchPage, SearchQuery};
pub use embedded::{TantivyIndex, WriterConfig};
pub use error::SearchError;
pub use meili::{MeiliConfigError, MeiliIndex};

use async_trait::async_trait;
use uuid::Uuid;

/// A full-text index of leases.
///
/// Text matching covers make, model, VIN, category and year: every query word must match
/// (a typo is allowed in words of 5+ letters, two from 9), and the last word also matches
/// as a prefix. Results come best first, then newest `created_at`; an empty text lists
/// everything the filters allow, newest first.
#[async_trait]
pub trait SearchIndex: Send + Sync {
    /// A stable engine name for logs and metrics: `"meilisearch"` or `"tantivy"`.
    fn engine(&self) -> &'static str;
    /// Adds the documents or replaces those with the same id. `Ok` only once the engine
    /// has durably accepted every one of them.
    async fn upsert(&self, docs: &[LeaseDocument]) -> Result<(), SearchError>;
    /// Removes the documents with these ids; unknown ids are not an error.
    async fn delete(&self, ids: &[Uuid]) -> Result<(), SearchError>;
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError>;
    /// Removes every document, e.g. before a full re-index.
    async fn clear(&self) -> Result<(), SearchError>;
    /// Whether the engine answers, for readiness checks.
    async fn ping(&self) -> Result<(), SearchError>;
}
