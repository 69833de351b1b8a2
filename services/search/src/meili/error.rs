//! Maps `meilisearch-sdk` errors onto [`SearchError`].

use meilisearch_sdk::errors::{Error, ErrorType, MeilisearchError};

use crate::SearchError;

/// Errors of one call, `action` naming it (`"add documents"`, `"search"`, …).
pub(super) fn from_sdk(action: &str, err: Error) -> SearchError {
    match err {
        Error::Meilisearch(err) => from_meilisearch(action, &err),
        Error::MeilisearchCommunication(err) if err.status_code >= 500 => {
            SearchError::Unavailable(format!("{action}: Meilisearch answered {}", err.status_code))
        }
        Error::MeilisearchCommunication(err) => {
            SearchError::Rejected(format!("{action}: Meilisearch answered {}", err.status_code))
        }
        Error::HttpError(err) => SearchError::Unavailable(format!("{action}: {err}")),
        Error::Timeout => SearchError::Unavailable(format!("{action}: Meilisearch did not finish in time")),
        Error::ParseError(err) => SearchError::Internal(format!("{action}: unexpected Meilisearch response: {err}")),
        // The rest come from features this adapter does not use (tenant tokens, keys, …).
        other => SearchError::Internal(format!("{action}: {other}")),
    }
}

/// An error Meilisearch reported, for a request or for a task it failed.
pub(super) fn from_meilisearch(action: &str, err: &MeilisearchError) -> SearchError {
    let detail = format!("{action}: {} ({})", err.error_message, err.error_code);
    match err.error_type {
        ErrorType::Internal => SearchError::Unavailable(detail),
        ErrorType::InvalidRequest | ErrorType::Auth | ErrorType::Unknown => SearchError::Rejected(detail),
        // `ErrorType` is non-exhaustive: a kind added later is treated like a refusal.
        _ => SearchError::Rejected(detail),
    }
}

#[cfg(test)]
mod tests {
    use meilisearch_sdk::errors::MeilisearchCommunicationError;

    use super::*;

    fn communication(status_code: u16) -> Error {
        Error::MeilisearchCommunication(MeilisearchCommunicationError { status_code, message: None, url: "u".into() })
    }

    fn meilisearch(kind: &str) -> Error {
        let body = format!(r#"{{"message":"m","code":"some_code","type":"{kind}","link":"l"}}"#);
        Error::Meilisearch(serde_json::from_str(&body).unwrap())
    }

    #[test]
    fn server_errors_and_timeouts_are_outages() {
        for err in [communication(503), communication(500), meilisearch("internal"), Error::Timeout] {
            assert!(matches!(from_sdk("add documents", err), SearchError::Unavailable(_)));
        }
    }

    #[test]
    fn refusals_are_rejections() {
        for err in [communication(401), communication(404), meilisearch("auth"), meilisearch("invalid_request")] {
            assert!(matches!(from_sdk("search", err), SearchError::Rejected(_)));
        }
    }

    #[test]
    fn unparsable_answers_are_internal() {
        let err = Error::ParseError(serde_json::from_str::<u8>("x").unwrap_err());
        assert!(matches!(from_sdk("search", err), SearchError::Internal(_)));
    }
}
