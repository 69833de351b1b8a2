//! The index settings `configure` applies.

use meilisearch_sdk::settings::{MinWordSizeForTypos, PaginationSetting, Settings, TypoToleranceSettings};

use crate::MAX_WINDOW;

pub(super) const PRIMARY_KEY: &str = "id";
/// The same fields the embedded index matches text against.
pub(super) const SEARCHABLE: [&str; 5] = ["make", "model", "vin", "category", "year"];
pub(super) const FILTERABLE: [&str; 3] = ["status", "owner_id", "category"];
pub(super) const SORTABLE: [&str; 1] = ["created_at"];
pub(super) const NO_TYPOS: [&str; 1] = ["vin"];
/// Meilisearch's relevance rules first, the `sort` parameter (newest first) only to break ties.
pub(super) const RANKING_RULES: [&str; 6] = ["words", "typo", "proximity", "attribute", "exactness", "sort"];
/// Every search sorts newest first within equal relevance.
pub(super) const SORT_NEWEST: [&str; 1] = ["created_at:desc"];
/// Hits carry only the id; the host loads leases from the database.
pub(super) const RETRIEVE: [&str; 1] = ["id"];

pub(super) fn lease_settings() -> Settings {
    Settings::new()
        .with_searchable_attributes(SEARCHABLE)
        .with_filterable_attributes(FILTERABLE)
        .with_sortable_attributes(SORTABLE)
        .with_ranking_rules(RANKING_RULES)
        .with_pagination(PaginationSetting { max_total_hits: MAX_WINDOW })
        .with_typo_tolerance(TypoToleranceSettings {
            enabled: Some(true),
            min_word_size_for_typos: Some(MinWordSizeForTypos { one_typo: Some(5), two_typos: Some(9) }),
            // A VIN one character off is another car.
            disable_on_attributes: Some(NO_TYPOS.map(String::from).to_vec()),
            ..TypoToleranceSettings::default()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_serialise_as_meilisearch_expects() {
        let json = serde_json::to_value(lease_settings()).unwrap();
        assert_eq!(json["searchableAttributes"], serde_json::json!(SEARCHABLE));
        assert_eq!(json["filterableAttributes"], serde_json::json!(FILTERABLE));
        assert_eq!(json["sortableAttributes"], serde_json::json!(SORTABLE));
        assert_eq!(json["typoTolerance"]["minWordSizeForTypos"], serde_json::json!({"oneTypo": 5, "twoTypos": 9}));
        assert_eq!(json["typoTolerance"]["disableOnAttributes"], serde_json::json!(NO_TYPOS));
        assert_eq!(json["pagination"]["maxTotalHits"], MAX_WINDOW);
    }
}
