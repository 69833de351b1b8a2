//! Opaque keyset cursors: the position after the last lease of a page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Where the next page starts: after (`created_at`, `id`) in newest-first order, or after
/// `offset` hits of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    After { created_at: DateTime<Utc>, id: Uuid },
    Offset(u32),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a cursor this API issued")]
pub struct CursorError;

impl Cursor {
    pub fn encode(&self) -> String {
        let raw = match self {
            Self::After { created_at, id } => format!("k:{}:{id}", created_at.timestamp_micros()),
            Self::Offset(n) => format!("o:{n}"),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(s: &str) -> Result<Self, CursorError> {
        if s.len() > 128 {
            return Err(CursorError);
        }
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).map_err(|_| CursorError)?).map_err(|_| CursorError)?;
        match raw.split(':').collect::<Vec<_>>().as_slice() {
            ["k", micros, id] => {
                let micros: i64 = micros.parse().map_err(|_| CursorError)?;
                let created_at = DateTime::from_timestamp_micros(micros).ok_or(CursorError)?;
                Ok(Self::After { created_at, id: id.parse().map_err(|_| CursorError)? })
            }
            ["o", n] => Ok(Self::Offset(n.parse().map_err(|_| CursorError)?)),
            _ => Err(CursorError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let after = Cursor::After { created_at: crate::now_micros(), id: Uuid::new_v4() };
        assert_eq!(Cursor::decode(&after.encode()), Ok(after));
        assert_eq!(Cursor::decode(&Cursor::Offset(40).encode()), Ok(Cursor::Offset(40)));
    }

    #[test]
    fn refuses_foreign_strings() {
        let encoded = |s: &str| URL_SAFE_NO_PAD.encode(s);
        for bad in [
            "",
            "!!!",
            &"a".repeat(500),
            &encoded("k:x:y"),
            &encoded("o:-1"),
            &encoded("k:1:not-a-uuid"),
            &encoded("z:1"),
        ] {
            assert_eq!(Cursor::decode(bad), Err(CursorError), "{bad}");
        }
    }
}
