//! The tantivy schema for leases, the text analyzer, and document conversion.

use tantivy::schema::{FAST, Field, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};
use tantivy::{Index, TantivyDocument};

use crate::LeaseDocument;

/// The name the text analyzer is registered under in every index.
const TEXT_TOKENIZER: &str = "lessor_text";
/// Longer tokens are dropped: nothing real is that long, and they would bloat the dictionary.
const MAX_TOKEN_BYTES: usize = 40;

/// The fields of the lease schema.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields {
    /// Hyphenated lease id: indexed to delete by id, a fast column to read hits without the doc store.
    pub id: Field,
    pub owner_id: Field,
    pub status: Field,
    pub category: Field,
    /// Make, model, category and year, all in one analyzed field: a query word may match any of them.
    pub text: Field,
    /// The VIN apart: its many near-identical terms get neither typos nor short prefixes.
    pub vin: Field,
    /// Unix millis, a fast column for the newest-first order.
    pub created_at: Field,
}

pub(super) const CREATED_AT: &str = "created_at";
pub(super) const ID: &str = "id";

impl Fields {
    pub fn schema() -> (Schema, Fields) {
        let mut builder = Schema::builder();
        let text_indexing = TextFieldIndexing::default()
            .set_tokenizer(TEXT_TOKENIZER)
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false);
        let fields = Fields {
            id: builder.add_text_field(ID, STRING | FAST),
            owner_id: builder.add_text_field("owner_id", STRING),
            status: builder.add_text_field("status", STRING),
            category: builder.add_text_field("category", STRING),
            text: builder.add_text_field("text", TextOptions::default().set_indexing_options(text_indexing.clone())),
            vin: builder.add_text_field("vin", TextOptions::default().set_indexing_options(text_indexing)),
            created_at: builder.add_i64_field(CREATED_AT, FAST),
        };
        (builder.build(), fields)
    }

    /// Looks the fields up in an index opened with [`Fields::schema`].
    pub fn of(schema: &Schema) -> tantivy::Result<Fields> {
        Ok(Fields {
            id: schema.get_field(ID)?,
            owner_id: schema.get_field("owner_id")?,
            status: schema.get_field("status")?,
            category: schema.get_field("category")?,
            text: schema.get_field("text")?,
            vin: schema.get_field("vin")?,
            created_at: schema.get_field(CREATED_AT)?,
        })
    }

    pub fn document(&self, lease: &LeaseDocument) -> TantivyDocument {
        let mut doc = TantivyDocument::new();
        doc.add_text(self.id, lease.id.to_string());
        doc.add_text(self.owner_id, lease.owner_id.to_string());
        doc.add_text(self.status, filter_value(&lease.status));
        doc.add_text(self.category, filter_value(&lease.category));
        for text in [lease.make.as_str(), lease.model.as_str(), lease.category.as_str()] {
            doc.add_text(self.text, text);
        }
        doc.add_text(self.text, lease.year.to_string());
        doc.add_text(self.vin, &lease.vin);
        doc.add_i64(self.created_at, lease.created_at);
        doc
    }
}

/// Filter values compare without regard to case, as Meilisearch filters do.
pub(super) fn filter_value(value: &str) -> String {
    value.to_lowercase()
}

/// Splits on anything not alphanumeric, lowercases and folds to ASCII where it can:
/// `Mercedes-Benz` gives `mercedes` and `benz`, `Škoda` gives `skoda`.
pub(super) fn text_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

pub(super) fn register_analyzer(index: &Index) {
    index.tokenizers().register(TEXT_TOKENIZER, text_analyzer());
}

/// The words of `text` as the index stores them.
pub(super) fn words(text: &str) -> Vec<String> {
    let mut analyzer = text_analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut words = Vec::new();
    while stream.advance() {
        words.push(stream.token().text.clone());
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_split_lowercased_and_folded() {
        assert_eq!(words("Mercedes-Benz GLE 350d"), ["mercedes", "benz", "gle", "350d"]);
        assert_eq!(words("Škoda Citroën"), ["skoda", "citroen"]);
        assert_eq!(words("  --  "), Vec::<String>::new());
    }

    #[test]
    fn overlong_tokens_are_dropped() {
        assert_eq!(words(&format!("{} bmw", "x".repeat(MAX_TOKEN_BYTES + 1))), ["bmw"]);
    }

    #[test]
    fn filter_values_ignore_case() {
        assert_eq!(filter_value("Active"), "active");
    }
}
