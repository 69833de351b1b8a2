//! Lease search: the index finds ids, the database (the source of truth) supplies leases.

use std::time::Instant;

use lessor_leases::repo::{Cursor, LeaseFilter};
use lessor_leases::{Page, Viewer};
use lessor_search::{MAX_WINDOW, SearchError, SearchQuery};

use super::AppState;
use super::error::ApiError;

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::InvalidQuery(reason) => Self::field("q", reason),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

pub async fn search_leases(
    state: &AppState,
    viewer: Viewer,
    text: &Option<String>,
    filter: LeaseFilter,
    category: Option<String>,
    cursor: Option<Cursor>,
    limit: u32,
) -> Result<Page, ApiError> {
    let offset = match cursor {
        None => 0,
        Some(Cursor::Offset(n)) => n as usize,
        Some(Cursor::After { .. }) => return Err(ApiError::field("cursor", "this cursor belongs to a listing")),
    };
    // Customers search their own leases only, whatever they ask for.
    let owner_id = if viewer.is_staff {
        filter.owner_id
    } else if filter.owner_id.is_some_and(|o| o != viewer.user_id) {
        return Ok(Page { items: Vec::new(), next: None });
    } else {
        Some(viewer.user_id)
    };
    let limit = limit as usize;
    if offset + limit > MAX_WINDOW {
        return Ok(Page { items: Vec::new(), next: None });
    }
    let query = SearchQuery {
        text: text.clone().unwrap_or_default(),
        owner_id,
        status: filter.status.map(|s| s.as_str().to_owned()),
        category,
        limit,
        offset,
    };
    let started = Instant::now();
    let hits = state.search.search(&query).await?;
    state.metrics.observe_search(state.search.engine(), started.elapsed());

    let more =
        hits.ids.len() == limit && ((offset + limit) as u64) < hits.estimated_total && offset + limit < MAX_WINDOW;
    let items = state.leases.get_many_visible(viewer, &hits.ids).await?;
    Ok(Page { items, next: more.then(|| Cursor::Offset((offset + limit) as u32)) })
}
