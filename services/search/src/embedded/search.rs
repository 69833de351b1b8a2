//! Runs a planned query: the page of hits, the total, and the lease ids of the hits.

use tantivy::collector::sort_key::{SortBySimilarityScore, SortByStaticFastValue};
use tantivy::collector::{Count, TopDocs};
use tantivy::columnar::StrColumn;
use tantivy::{DocAddress, Order, Searcher};
use uuid::Uuid;

use super::engine_error;
use super::query::plan;
use super::schema::{CREATED_AT, Fields, ID};
use crate::{SearchError, SearchPage, SearchQuery};

pub(super) fn run(searcher: &Searcher, fields: &Fields, query: &SearchQuery) -> Result<SearchPage, SearchError> {
    let plan = plan(fields, query);
    let page = TopDocs::with_limit(query.limit).and_offset(query.offset);
    let newest = (SortByStaticFastValue::<i64>::for_field(CREATED_AT), Order::Desc);
    let (total, hits): (usize, Vec<DocAddress>) = if plan.ranked {
        let collector = page.order_by(((SortBySimilarityScore, Order::Desc), newest));
        let (total, hits) = searcher.search(&plan.query, &(Count, collector)).map_err(engine_error)?;
        (total, hits.into_iter().map(|(_, address)| address).collect())
    } else {
        let (total, hits) = searcher.search(&plan.query, &(Count, page.order_by(newest))).map_err(engine_error)?;
        (total, hits.into_iter().map(|(_, address)| address).collect())
    };
    Ok(SearchPage { ids: lease_ids(searcher, &hits)?, estimated_total: total as u64 })
}

/// Reads the ids of the hits from the `id` fast column, one column per segment.
fn lease_ids(searcher: &Searcher, hits: &[DocAddress]) -> Result<Vec<Uuid>, SearchError> {
    let mut columns: Vec<Option<StrColumn>> = vec![None; searcher.segment_readers().len()];
    let mut text = String::with_capacity(36);
    hits.iter()
        .map(|hit| {
            let slot = &mut columns[hit.segment_ord as usize];
            if slot.is_none() {
                let segment = searcher.segment_reader(hit.segment_ord);
                *slot = segment.fast_fields().str(ID).map_err(engine_error)?;
            }
            let column = slot.as_ref().ok_or_else(|| missing_id(hit))?;
            let ordinal = column.term_ords(hit.doc_id).next().ok_or_else(|| missing_id(hit))?;
            text.clear();
            let found = column
                .ord_to_str(ordinal, &mut text)
                .map_err(|err| SearchError::Internal(format!("search index id column: {err}")))?;
            if !found {
                return Err(missing_id(hit));
            }
            Uuid::parse_str(&text).map_err(|err| SearchError::Internal(format!("search index holds a bad id: {err}")))
        })
        .collect()
}

fn missing_id(hit: &DocAddress) -> SearchError {
    SearchError::Internal(format!("search index hit {hit:?} has no id"))
}
