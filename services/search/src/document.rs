//! What the index holds and how it is asked.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::SearchError;

/// The most results one page may ask for.
pub const MAX_LIMIT: usize = 100;
/// How deep paging may go: `offset + limit` stays within this (Meilisearch's default
/// `maxTotalHits`), so that both engines page alike and a deep offset stays cheap.
pub const MAX_WINDOW: usize = 1_000;
/// The longest query text, in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// One lease as the search index sees it: what is matched, filtered and sorted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseDocument {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// The lease status wire name, e.g. `"active"`.
    pub status: String,
    /// The vehicle category wire name, e.g. `"luxury"`.
    pub category: String,
    pub make: String,
    pub model: String,
    pub vin: String,
    pub year: u16,
    /// `YYYY-MM-DD`.
    pub start_date: String,
    /// In minor units of `currency`.
    pub monthly_amount: i64,
    pub currency: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A search: free text plus exact filters. Filters are combined with AND; the host sets
/// `owner_id` for customers so that they only ever see their own leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Words to match; empty lists everything the filters allow, newest first.
    pub text: String,
    pub owner_id: Option<Uuid>,
    pub status: Option<String>,
    pub category: Option<String>,
    /// `1..=MAX_LIMIT`.
    pub limit: usize,
    pub offset: usize,
}

impl Default for SearchQuery {
    /// No text, no filter, the first 20 results.
    fn default() -> Self {
        SearchQuery { text: String::new(), owner_id: None, status: None, category: None, limit: 20, offset: 0 }
    }
}

impl SearchQuery {
    /// A query for `text` with no filter and the default page.
    pub fn text(text: impl Into<String>) -> Self {
        SearchQuery { text: text.into(), ..SearchQuery::default() }
    }

    /// Checks the bounds every engine relies on.
    pub fn validate(&self) -> Result<(), SearchError> {
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(SearchError::InvalidQuery(format!("limit must be within 1..={MAX_LIMIT}")));
        }
        if self.offset.saturating_add(self.limit) > MAX_WINDOW {
            return Err(SearchError::InvalidQuery(format!("offset + limit must not exceed {MAX_WINDOW}")));
        }
        if self.text.chars().count() > MAX_TEXT_CHARS {
            return Err(SearchError::InvalidQuery(format!("text must not exceed {MAX_TEXT_CHARS} characters")));
        }
        Ok(())
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchPage {
    /// Lease ids, best first.
    pub ids: Vec<Uuid>,
    /// How many leases match in all; an engine may estimate.
    pub estimated_total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_query_is_valid() {
        assert_eq!(SearchQuery::text("bmw").validate(), Ok(()));
    }

    #[test]
    fn limit_out_of_bounds_is_refused() {
        for limit in [0, MAX_LIMIT + 1] {
            let query = SearchQuery { limit, ..SearchQuery::default() };
            assert!(matches!(query.validate(), Err(SearchError::InvalidQuery(_))), "limit {limit}");
        }
    }

    #[test]
    fn paging_past_the_window_is_refused() {
        let last_page = SearchQuery { limit: 100, offset: MAX_WINDOW - 100, ..SearchQuery::default() };
        assert_eq!(last_page.validate(), Ok(()));
        let beyond = SearchQuery { offset: MAX_WINDOW - 99, ..last_page.clone() };
        assert!(matches!(beyond.validate(), Err(SearchError::InvalidQuery(_))));
        let overflow = SearchQuery { offset: usize::MAX, ..last_page };
        assert!(matches!(overflow.validate(), Err(SearchError::InvalidQuery(_))));
    }

    #[test]
    fn overlong_text_is_refused() {
        assert_eq!(SearchQuery::text("é".repeat(MAX_TEXT_CHARS)).validate(), Ok(()));
        assert!(matches!(
            SearchQuery::text("a".repeat(MAX_TEXT_CHARS + 1)).validate(),
            Err(SearchError::InvalidQuery(_))
        ));
    }

    #[test]
    fn document_serialises_with_snake_case_fields() {
        let doc = LeaseDocument {
            id: Uuid::nil(),
            owner_id: Uuid::nil(),
            status: "active".into(),
            category: "luxury".into(),
            make: "BMW".into(),
            model: "X5".into(),
            vin: "WBA00000000000000".into(),
            year: 2024,
            start_date: "2025-01-01".into(),
            monthly_amount: 89_900,
            currency: "EUR".into(),
            created_at: 1_700_000_000_000,
        };
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["owner_id"], "00000000-0000-0000-0000-000000000000");
        assert_eq!(json["monthly_amount"], 89_900);
        assert_eq!(serde_json::from_value::<LeaseDocument>(json).unwrap(), doc);
    }
}
