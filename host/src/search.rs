//! Choosing and preparing the lease search engine, and the indexer worker.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lessor_leases::indexer::SearchIndexer;
use lessor_leases::repo::LeaseRepository;
use lessor_search::{MeiliIndex, SearchIndex, TantivyIndex};
use secrecy::ExposeSecret;
use tokio::sync::Notify;

use crate::config::Config;
use crate::metrics::Metrics;

/// How often the indexer looks at the outbox when nothing woke it (other replicas' writes).
const POLL: Duration = Duration::from_millis(500);

/// The configured engine: Meilisearch when `meili_url` is set, else the embedded index
/// under `data_dir/search`. A newly created embedded index is refilled from the database.
/// Meilisearch settings are applied now when `setup_now`, else in the background (retrying
/// while it is unreachable, so the host starts during a search outage).
pub async fn open_index(
    config: &Config,
    repo: &Arc<dyn LeaseRepository>,
    setup_now: bool,
) -> anyhow::Result<Arc<dyn SearchIndex>> {
    match &config.meili {
        Some(meili) => {
            let key = meili.api_key.as_ref().map(|k| k.expose_secret().to_owned());
            let index = Arc::new(MeiliIndex::new(&meili.url, key.as_deref(), &meili.index).context("meili_url")?);
            if setup_now {
                index.configure().await.context("configuring the Meilisearch index")?;
            } else {
                tokio::spawn(configure_meili(index.clone()));
            }
            Ok(index)
        }
        None => {
            let dir = config.data_dir.join("search");
            let index = tokio::task::spawn_blocking(move || TantivyIndex::open(&dir)).await?.with_context(|| {
                format!(
                    "opening the search index in {} (is another host using this data directory?)",
                    config.data_dir.join("search").display()
                )
            })?;
            if index.recreated() {
                let queued = repo.enqueue_all(chrono::Utc::now().timestamp_millis()).await?;
                if queued > 0 {
                    tracing::info!(leases = queued, "search index created: re-indexing every lease");
                }
            }
            Ok(Arc::new(index))
        }
    }
}

/// Applies the index settings, retrying while Meilisearch is unreachable.
async fn configure_meili(index: Arc<MeiliIndex>) {
    let mut delay = Duration::from_millis(500);
    loop {
        match index.configure().await {
            Ok(()) => return tracing::info!("meilisearch index configured"),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "meilisearch not configured yet")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Runs the indexer until `stop` resolves.
pub async fn run_indexer(
    repo: Arc<dyn LeaseRepository>,
    index: Arc<dyn SearchIndex>,
    changed: Arc<Notify>,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    SearchIndexer::new(repo, index).run(changed, POLL, move |pass| metrics.observe_indexer_pass(pass), stop).await;
}

/// Rebuilds the index from the database: clears it, then indexes every lease.
pub async fn reindex(repo: &Arc<dyn LeaseRepository>, index: &Arc<dyn SearchIndex>) -> anyhow::Result<u64> {
    index.clear().await.context("clearing the index")?;
    let mut done = 0u64;
    let mut after = None;
    loop {
        let filter = lessor_leases::repo::LeaseFilter::default();
        let page = repo.list(&filter, after.as_ref(), 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(lessor_leases::repo::Cursor::After { created_at: last.created_at, id: last.id });
        let docs: Vec<_> = page.iter().map(lessor_leases::indexer::document).collect();
        index.upsert(&docs).await.context("indexing")?;
        done += docs.len() as u64;
    }
    Ok(done)
}
