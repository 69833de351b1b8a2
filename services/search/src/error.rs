//! The one error type of every engine.

/// What went wrong with a search engine call. Every variant fails the call as a whole: an
/// `upsert` or `delete` that returns any of them may have been applied in part or not at all,
/// and is safe to repeat.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// The engine is down, answered 5xx, or did not finish in time: retry later. (503)
    #[error("search engine unavailable: {0}")]
    Unavailable(String),
    /// The engine refused the request or failed the task it was given, e.g. a wrong API key
    /// or a document it would not index. Retrying unchanged will likely fail again. (500)
    #[error("search engine rejected the request: {0}")]
    Rejected(String),
    /// A fault on our side: an index that cannot be read, a response we cannot parse. (500)
    #[error("search engine error: {0}")]
    Internal(String),
    /// The query itself is out of bounds, e.g. a limit of 0; the caller's fault. (422)
    #[error("invalid search query: {0}")]
    InvalidQuery(String),
}

impl SearchError {
    /// Whether the same call may succeed later without any change: only outages.
    pub fn is_transient(&self) -> bool {
        matches!(self, SearchError::Unavailable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_outages_are_transient() {
        assert!(SearchError::Unavailable("503".into()).is_transient());
        assert!(!SearchError::Rejected("bad key".into()).is_transient());
        assert!(!SearchError::Internal("corrupt".into()).is_transient());
        assert!(!SearchError::InvalidQuery("limit".into()).is_transient());
    }
}
