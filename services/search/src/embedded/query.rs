//! Turns a [`SearchQuery`] into a tantivy query.
//!
//! Every query word must match a word of the lease text (AND). A word matches exactly, or,
//! from 5 characters, with one typo (two from 9; a transposition counts as one; none in a
//! word with a digit); the last word also matches as a prefix (with one typo from 5
//! characters). The VIN matches exactly, or as a prefix of 3+ characters for the last word:
//! a fleet's VINs share their first characters, so a short or fuzzy prefix there would match
//! thousands of terms and no lease anyone meant.
//!
//! Each way of matching has a fixed score, so that ranking is by how well the words matched,
//! not by term statistics: exact beats prefix beats typo, and ties fall to the newest lease.

use tantivy::Term;
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, DisjunctionMaxQuery, FuzzyTermQuery, Occur, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};

use super::schema::{Fields, filter_value, words};
use crate::SearchQuery;

/// Words past this many are ignored, as Meilisearch does.
pub(super) const MAX_WORDS: usize = 10;
/// The shortest last word matched as a prefix of a VIN.
const MIN_VIN_PREFIX: usize = 3;

const EXACT: f32 = 4.0;
const PREFIX: f32 = 3.0;
const TYPO: f32 = 2.0;
const TYPO_PREFIX: f32 = 1.0;

/// A built query and whether its hits are ranked by score (text) or only by date (no text).
pub(super) struct Plan {
    pub query: Box<dyn Query>,
    pub ranked: bool,
}

/// How many typos a query word may carry: none below 5 characters, one from 5, two from 9;
/// none in a word with a digit, an identifier such as a VIN, where a near miss is another car.
pub(super) fn typo_budget(word: &str) -> u8 {
    if word.bytes().any(|b| b.is_ascii_digit()) {
        return 0;
    }
    match word.chars().count() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

pub(super) fn plan(fields: &Fields, query: &SearchQuery) -> Plan {
    let mut words = words(&query.text);
    words.truncate(MAX_WORDS);
    let last = words.len().saturating_sub(1);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = words
        .iter()
        .enumerate()
        .map(|(position, word)| (Occur::Must, word_query(fields, word, position == last)))
        .collect();
    let ranked = !clauses.is_empty();
    let filters = [
        (fields.owner_id, query.owner_id.map(|owner| owner.to_string())),
        (fields.status, query.status.as_deref().map(filter_value)),
        (fields.category, query.category.as_deref().map(filter_value)),
    ];
    for (field, value) in filters {
        if let Some(value) = value {
            let term = TermQuery::new(Term::from_field_text(field, &value), IndexRecordOption::Basic);
            clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(Box::new(term), 0.0))));
        }
    }
    let query: Box<dyn Query> =
        if clauses.is_empty() { Box::new(AllQuery) } else { Box::new(BooleanQuery::new(clauses)) };
    Plan { query, ranked }
}

/// The ways one word may match, scored by the best of them.
fn word_query(fields: &Fields, word: &str, is_last: bool) -> Box<dyn Query> {
    let mut ways = text_ways(fields.text, word, is_last);
    let vin = Term::from_field_text(fields.vin, word);
    ways.push(scored(Box::new(TermQuery::new(vin.clone(), IndexRecordOption::Basic)), EXACT));
    if is_last && word.chars().count() >= MIN_VIN_PREFIX {
        ways.push(scored(Box::new(FuzzyTermQuery::new_prefix(vin, 0, true)), PREFIX));
    }
    Box::new(DisjunctionMaxQuery::new(ways))
}

fn text_ways(field: Field, word: &str, is_last: bool) -> Vec<Box<dyn Query>> {
    let term = Term::from_field_text(field, word);
    let typos = typo_budget(word);
    let mut ways: Vec<Box<dyn Query>> =
        vec![scored(Box::new(TermQuery::new(term.clone(), IndexRecordOption::Basic)), EXACT)];
    if typos > 0 {
        ways.push(scored(Box::new(FuzzyTermQuery::new(term.clone(), typos, true)), TYPO));
    }
    if is_last {
        ways.push(scored(Box::new(FuzzyTermQuery::new_prefix(term.clone(), 0, true)), PREFIX));
        if typos > 0 {
            ways.push(scored(Box::new(FuzzyTermQuery::new_prefix(term, 1, true)), TYPO_PREFIX));
        }
    }
    ways
}

fn scored(query: Box<dyn Query>, score: f32) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(query, score))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_grow_with_word_length() {
        assert_eq!(typo_budget("audi"), 0);
        assert_eq!(typo_budget("camry"), 1);
        assert_eq!(typo_budget("corvette"), 1);
        assert_eq!(typo_budget("cabriolet"), 2);
        assert_eq!(typo_budget("škoda"), 1, "characters, not bytes");
    }

    #[test]
    fn words_with_digits_allow_no_typo() {
        assert_eq!(typo_budget("wdb00000000000003"), 0);
        assert_eq!(typo_budget("gle350"), 0);
    }

    #[test]
    fn empty_text_is_not_ranked() {
        let (_, fields) = Fields::schema();
        assert!(!plan(&fields, &SearchQuery::default()).ranked);
        assert!(!plan(&fields, &SearchQuery::text(" - ")).ranked);
        assert!(plan(&fields, &SearchQuery::text("bmw")).ranked);
    }
}
