//! Where the database lives: parsed from configuration before anything connects.

use std::fmt;
use std::path::{Path, PathBuf};

use url::Url;

/// The file name of the embedded database inside the data directory.
pub const SQLITE_FILE: &str = "lessor.db";

/// A database to connect to. `Debug` and `Display` never show a password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Postgres(Url),
    Sqlite(PathBuf),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("not a URL: {0}")]
    Malformed(String),
    #[error("unsupported scheme `{0}` (expected postgres:// or sqlite://)")]
    UnsupportedScheme(String),
    #[error("a postgres URL needs a host")]
    MissingHost,
}

impl DatabaseTarget {
    /// Parses a configured database URL; `None` means the embedded file in `data_dir`.
    pub fn from_config(url: Option<&str>, data_dir: &Path) -> Result<Self, TargetError> {
        let Some(raw) = url.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(Self::Sqlite(data_dir.join(SQLITE_FILE)));
        };
        let parsed = Url::parse(raw).map_err(|e| TargetError::Malformed(e.to_string()))?;
        match parsed.scheme() {
            "postgres" | "postgresql" => {
                if parsed.host_str().is_none_or(str::is_empty) {
                    return Err(TargetError::MissingHost);
                }
                Ok(Self::Postgres(parsed))
            }
            "sqlite" => {
                let path = raw.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or_default();
                if path.is_empty() {
                    return Err(TargetError::Malformed("sqlite URL without a path".into()));
                }
                Ok(Self::Sqlite(PathBuf::from(path)))
            }
            other => Err(TargetError::UnsupportedScheme(other.to_owned())),
        }
    }
}

/// The URL with its password replaced, safe for logs.
pub(crate) fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

impl fmt::Display for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres(url) => f.write_str(&redacted(url)),
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
        }
    }
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseTarget({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_configured_means_the_embedded_file() {
        let t = DatabaseTarget::from_config(None, Path::new("/srv/lessor")).unwrap();
        assert_eq!(t, DatabaseTarget::Sqlite(PathBuf::from("/srv/lessor/lessor.db")));
    }

    #[test]
    fn postgres_url_is_accepted_and_its_password_never_printed() {
        let t = DatabaseTarget::from_config(Some("postgres://app:hunter2@db:5432/lessor"), Path::new(".")).unwrap();
        assert!(matches!(t, DatabaseTarget::Postgres(_)));
        assert!(!format!("{t:?}").contains("hunter2"));
        assert!(!t.to_string().contains("hunter2"));
        assert!(t.to_string().contains("***"));
    }

    #[test]
    fn malformed_and_foreign_urls_are_refused() {
        let dir = Path::new(".");
        assert!(matches!(DatabaseTarget::from_config(Some("postgres//nope"), dir), Err(TargetError::Malformed(_))));
        assert_eq!(
            DatabaseTarget::from_config(Some("mysql://h/db"), dir),
            Err(TargetError::UnsupportedScheme("mysql".into()))
        );
        assert!(DatabaseTarget::from_config(Some("postgres:///db"), dir).is_err());
    }

    #[test]
    fn sqlite_url_names_a_file() {
        let t = DatabaseTarget::from_config(Some("sqlite:///tmp/x.db"), Path::new(".")).unwrap();
        assert_eq!(t, DatabaseTarget::Sqlite(PathBuf::from("/tmp/x.db")));
    }
}
