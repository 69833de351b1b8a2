//! Lease identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The identity of a lease: a random (version 4) UUID, serialised as its hyphenated string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseId(Uuid);

impl LeaseId {
    /// A fresh random identifier.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        LeaseId(Uuid::new_v4())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        LeaseId(uuid)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl FromStr for LeaseId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(LeaseId)
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_differ() {
        assert_ne!(LeaseId::new(), LeaseId::new());
    }

    #[test]
    fn round_trips_through_text_and_json() {
        let text = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        let id: LeaseId = text.parse().unwrap();
        assert_eq!(id.to_string(), text);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<LeaseId>(&format!("\"{text}\"")).unwrap(), id);
        assert!("not-a-uuid".parse::<LeaseId>().is_err());
    }
}
