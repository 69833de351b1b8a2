//! The embedded engine: a tantivy index in a local folder, or in memory for tests.
//!
//! One `IndexWriter` sits behind a mutex: each `upsert`, `delete` or `clear` is one commit,
//! after which the reader is reloaded, so a search that starts after a write returned sees it.
//! All tantivy work runs on tokio's blocking pool.

mod open;
mod query;
mod schema;
mod search;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyError, Term};
use uuid::Uuid;

use self::schema::Fields;
use crate::{LeaseDocument, SearchError, SearchIndex, SearchPage, SearchQuery};

/// How the index writer may use the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// Indexing threads; 1 suits the host's small batches, more helps bulk re-indexing.
    pub threads: usize,
    /// Memory the writer buffers before it flushes a segment, over all threads
    /// (tantivy wants at least 15 MB per thread).
    pub memory_bytes: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig { threads: 1, memory_bytes: 64 << 20 }
    }
}

/// A full-text index of leases kept by tantivy in this process.
#[derive(Clone)]
pub struct TantivyIndex {
    inner: Arc<Inner>,
    recreated: bool,
}

struct Inner {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
}

impl TantivyIndex {
    /// Opens the index in `dir` (created if missing) with the default writer.
    pub fn open(dir: &Path) -> Result<Self, SearchError> {
        TantivyIndex::open_with(dir, WriterConfig::default())
    }

    /// Opens the index in `dir`. An index with another schema, or that cannot be read, is
    /// wiped and created empty; [`TantivyIndex::recreated`] then says so.
    pub fn open_with(dir: &Path, config: WriterConfig) -> Result<Self, SearchError> {
        let (schema, _) = Fields::schema();
        let opened = open::open_or_rebuild(dir, &schema)?;
        TantivyIndex::start(opened.index, config, opened.recreated)
    }

    /// An index in memory, for tests.
    pub fn in_memory() -> Result<Self, SearchError> {
        let (schema, _) = Fields::schema();
        TantivyIndex::start(Index::create_in_ram(schema), WriterConfig { threads: 1, memory_bytes: 15 << 20 }, true)
    }

    /// Whether opening found no usable index and made an empty one: the host should then
    /// feed it every lease from the database.
    pub fn recreated(&self) -> bool {
        self.recreated
    }

    fn start(index: Index, config: WriterConfig, recreated: bool) -> Result<Self, SearchError> {
        schema::register_analyzer(&index);
        let fields = Fields::of(&index.schema()).map_err(engine_error)?;
        let writer = index.writer_with_num_threads(config.threads.max(1), config.memory_bytes).map_err(engine_error)?;
        let reader =
            index.reader_builder().reload_policy(ReloadPolicy::OnCommitWithDelay).try_into().map_err(engine_error)?;
        Ok(TantivyIndex { inner: Arc::new(Inner { reader, writer: Mutex::new(writer), fields }), recreated })
    }

    /// Runs `work` on the blocking pool.
    async fn blocking<T, F>(&self, work: F) -> Result<T, SearchError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, SearchError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|err| SearchError::Internal(format!("search task failed: {err}")))?
    }
}

impl Inner {
    /// Applies `change` and commits it, or rolls every part of it back.
    fn write(&self, change: impl FnOnce(&IndexWriter, &Fields) -> tantivy::Result<()>) -> Result<(), SearchError> {
        let mut writer = self.lock_writer()?;
        let committed = change(&writer, &self.fields).and_then(|()| writer.commit());
        if let Err(err) = committed {
            if let Err(rollback) = writer.rollback() {
                tracing::error!(error = %rollback, "search index rollback failed");
            }
            return Err(engine_error(err));
        }
        drop(writer);
        self.reader.reload().map_err(engine_error)
    }

    /// The writer; after a panic elsewhere, with whatever that left uncommitted rolled back.
    fn lock_writer(&self) -> Result<MutexGuard<'_, IndexWriter>, SearchError> {
        match self.writer.lock() {
            Ok(writer) => Ok(writer),
            Err(poisoned) => {
                self.writer.clear_poison();
                let mut writer = poisoned.into_inner();
                writer.rollback().map_err(engine_error)?;
                Ok(writer)
            }
        }
    }
}

fn id_term(fields: &Fields, id: Uuid) -> Term {
    Term::from_field_text(fields.id, &id.to_string())
}

/// Local storage trouble may pass; anything else is a fault of the index or of this code.
pub(super) fn engine_error(err: TantivyError) -> SearchError {
    match err {
        TantivyError::IoError(_)
        | TantivyError::OpenDirectoryError(_)
        | TantivyError::OpenReadError(_)
        | TantivyError::OpenWriteError(_)
        | TantivyError::LockFailure(..) => SearchError::Unavailable(format!("search index storage: {err}")),
        other => SearchError::Internal(format!("search index: {other}")),
    }
}

#[async_trait]
impl SearchIndex for TantivyIndex {
    fn engine(&self) -> &'static str {
        "tantivy"
    }

    #[tracing::instrument(name = "search.upsert", skip_all, fields(engine = "tantivy", count = docs.len()))]
    async fn upsert(&self, docs: &[LeaseDocument]) -> Result<(), SearchError> {
        if docs.is_empty() {
            return Ok(());
        }
        let docs = docs.to_vec();
        self.blocking(move |inner| {
            inner.write(|writer, fields| {
                for doc in &docs {
                    writer.delete_term(id_term(fields, doc.id));
                    writer.add_document(fields.document(doc))?;
                }
                Ok(())
            })
        })
        .await
    }

    #[tracing::instrument(name = "search.delete", skip_all, fields(engine = "tantivy", count = ids.len()))]
    async fn delete(&self, ids: &[Uuid]) -> Result<(), SearchError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.blocking(move |inner| {
            inner.write(|writer, fields| {
                for id in ids {
                    writer.delete_term(id_term(fields, id));
                }
                Ok(())
            })
        })
        .await
    }

    #[tracing::instrument(name = "search.query", skip_all, fields(engine = "tantivy"))]
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError> {
        query.validate()?;
        let query = query.clone();
        self.blocking(move |inner| search::run(&inner.reader.searcher(), &inner.fields, &query)).await
    }

    #[tracing::instrument(name = "search.clear", skip_all, fields(engine = "tantivy"))]
    async fn clear(&self) -> Result<(), SearchError> {
        self.blocking(|inner| inner.write(|writer, _| writer.delete_all_documents().map(drop))).await
    }

    /// The index is in this process: it answers if its reader does, without waiting for a commit.
    async fn ping(&self) -> Result<(), SearchError> {
        self.inner.reader.searcher().num_docs();
        Ok(())
    }
}
