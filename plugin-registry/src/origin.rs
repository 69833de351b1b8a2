//! Origins a plugin may reach over HTTP, in the syntax the host's grants use:
//! `scheme://host[:port]` with `http` or `https`, nothing after the authority, and `:*` for any
//! port on that host (`http://127.0.0.1:*`). Host names are normalised by the `url` crate
//! (lower case, IDNA, IPv6 in brackets), so two spellings of one origin compare equal.
//!
//! An operator's grant may end in `+private` (`http://stripe-mock.internal:12111+private`, or
//! `--grant-host … --allow-private`): the host then lets that grant's name resolve to loopback,
//! private, link-local and other non-public addresses, which it otherwise refuses. A manifest can
//! never ask for that (see `Manifest`); grants stored without the suffix keep their meaning.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }
}

/// One exact origin, e.g. `https://api.stripe.com:443`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute `http`/`https` URL; URLs with credentials are refused.
    pub fn of_url(url: &Url) -> Result<Self, OriginError> {
        let scheme = Scheme::parse(url.scheme()).ok_or_else(|| OriginError::Scheme(url.scheme().to_owned()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OriginError::Credentials);
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or(OriginError::NoHost)?;
        let port = url.port_or_known_default().ok_or(OriginError::NoHost)?;
        Ok(Self { scheme, host: host.to_owned(), port })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

impl FromStr for Origin {
    type Err = OriginError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = Url::parse(s).map_err(|e| OriginError::Syntax(format!("`{s}`: {e}")))?;
        let bare = url.path() == "/" && !s.ends_with('/') && url.query().is_none() && url.fragment().is_none();
        if !bare {
            return Err(OriginError::Syntax(format!("`{s}`: an origin has no path, query or fragment")));
        }
        Self::of_url(&url)
    }
}

/// How a grant that may reach non-public addresses is written and stored.
const PRIVATE_SUFFIX: &str = "+private";

/// An origin whose port may be "any" (`:*`): what a manifest requests and an operator grants.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OriginPattern {
    pub scheme: Scheme,
    pub host: String,
    /// `None` is `:*`, any port.
    pub port: Option<u16>,
    /// The operator allowed this name to resolve to non-public addresses (`+private`).
    pub allow_private: bool,
}

impl OriginPattern {
    pub fn covers(&self, origin: &Origin) -> bool {
        self.scheme == origin.scheme && self.host == origin.host && self.port.is_none_or(|p| p == origin.port)
    }

    /// The same pattern, allowed (or not) to reach non-public addresses.
    pub fn with_private(self, allow_private: bool) -> Self {
        Self { allow_private, ..self }
    }

    /// The exact origin, when the pattern names one port.
    pub fn exact(&self) -> Option<Origin> {
        self.port.map(|port| Origin { scheme: self.scheme, host: self.host.clone(), port })
    }

    /// An operator's `--grant-host`: an origin pattern as in a manifest, or a bare
    /// `HOST[:PORT]` (or `HOST:*`), which means `https`; either may end in `+private`.
    pub fn parse_grant(s: &str) -> Result<Self, OriginError> {
        if s.contains("://") { s.parse() } else { format!("https://{s}").parse() }
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}://{}:{port}", self.scheme.as_str(), self.host)?,
            None => write!(f, "{}://{}:*", self.scheme.as_str(), self.host)?,
        }
        if self.allow_private { f.write_str(PRIVATE_SUFFIX) } else { Ok(()) }
    }
}

impl FromStr for OriginPattern {
    type Err = OriginError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (s, allow_private) = match s.strip_suffix(PRIVATE_SUFFIX) {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        let (origin, any_port) = match s.strip_suffix(":*") {
            Some(rest) => (rest.parse::<Origin>()?, true),
            None => (s.parse::<Origin>()?, false),
        };
        Ok(Self { scheme: origin.scheme, host: origin.host, port: (!any_port).then_some(origin.port), allow_private })
    }
}

/// The pattern that covers exactly this origin.
impl From<Origin> for OriginPattern {
    fn from(o: Origin) -> Self {
        Self { scheme: o.scheme, host: o.host, port: Some(o.port), allow_private: false }
    }
}

/// Stored and exchanged as its display string.
impl Serialize for OriginPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OriginPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("invalid origin {0}")]
    Syntax(String),
    #[error("scheme `{0}` is not allowed (only http and https)")]
    Scheme(String),
    #[error("URLs with credentials are not allowed")]
    Credentials,
    #[error("URL has no host")]
    NoHost,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> OriginPattern {
        s.parse().unwrap()
    }

    #[test]
    fn patterns_parse_like_the_host_grants() {
        assert_eq!(pattern("https://api.stripe.com").to_string(), "https://api.stripe.com:443");
        assert_eq!(pattern("http://127.0.0.1:*").to_string(), "http://127.0.0.1:*");
        assert_eq!(pattern("HTTPS://API.Stripe.COM:443"), pattern("https://api.stripe.com"));
        for bad in ["https://api.stripe.com/", "https://api.stripe.com/v1", "ftp://x.test", "https://u:p@x.test", "x"] {
            assert!(bad.parse::<OriginPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn any_port_covers_every_port_of_that_host_only() {
        let any = pattern("http://127.0.0.1:*");
        assert!(any.covers(&"http://127.0.0.1:9000".parse().unwrap()));
        assert!(!any.covers(&"https://127.0.0.1:9000".parse().unwrap()));
        assert!(!any.covers(&"http://localhost:9000".parse().unwrap()));
        assert_eq!(any.exact(), None);
        assert_eq!(pattern("https://a.test").exact().unwrap().port, 443);
    }

    #[test]
    fn grants_default_to_https() {
        assert_eq!(
            OriginPattern::parse_grant("sandbox.bank.test").unwrap().to_string(),
            "https://sandbox.bank.test:443"
        );
        assert_eq!(OriginPattern::parse_grant("sandbox.bank.test:8443").unwrap().port, Some(8443));
        assert_eq!(OriginPattern::parse_grant("[::1]:*").unwrap().to_string(), "https://[::1]:*");
        assert_eq!(OriginPattern::parse_grant("http://127.0.0.1:8080").unwrap().scheme, Scheme::Http);
        assert!(OriginPattern::parse_grant("bank.test/path").is_err());
    }

    #[test]
    fn serde_uses_the_display_form() {
        let json = serde_json::to_string(&vec![pattern("http://127.0.0.1:*")]).unwrap();
        assert_eq!(json, r#"["http://127.0.0.1:*"]"#);
        let back: Vec<OriginPattern> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vec![pattern("http://127.0.0.1:*")]);
        assert!(serde_json::from_str::<Vec<OriginPattern>>(r#"["file:///x"]"#).is_err());
    }

    #[test]
    fn a_grant_may_allow_private_addresses_and_says_so() {
        let private = OriginPattern::parse_grant("http://stripe-mock.internal:12111+private").unwrap();
        assert!(private.allow_private);
        assert_eq!(private.to_string(), "http://stripe-mock.internal:12111+private");
        assert_eq!(private.to_string().parse::<OriginPattern>().unwrap(), private);
        let any = OriginPattern::parse_grant("mock.internal:*+private").unwrap();
        assert_eq!((any.port, any.allow_private), (None, true));
        // Stored grants without the suffix keep their meaning: no private addresses.
        let stored: Vec<OriginPattern> = serde_json::from_str(r#"["https://api.stripe.com:443"]"#).unwrap();
        assert!(!stored[0].allow_private);
        assert!(private.covers(&"http://stripe-mock.internal:12111".parse().unwrap()));
    }
}
