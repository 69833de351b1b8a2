//! Outbound HTTP capability, deny by default: a plugin reaches an origin (scheme, host, port) only
//! when its manifest requests it and the operator granted it at install.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// One exact origin, e.g. `https://api.stripe.com:443`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub scheme: Scheme,
    /// Lower-case host name or IP literal (IPv6 in brackets), as the `url` crate normalises it.
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute `http`/`https` URL. URLs carrying credentials are refused.
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

    /// `scheme://host[:port]`, nothing after the authority.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = Url::parse(s).map_err(|e| OriginError::Syntax(format!("`{s}`: {e}")))?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || s.ends_with('/') {
            return Err(OriginError::Syntax(format!("`{s}`: an origin has no path, query or fragment")));
        }
        Self::of_url(&url)
    }
}

/// What a manifest requests: an origin whose port may be `*` (any port on that host), e.g. a
/// sandbox endpoint whose port the operator picks at install.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OriginPattern {
    pub scheme: Scheme,
    pub host: String,
    pub port: Option<u16>,
}

impl OriginPattern {
    pub fn covers(&self, origin: &Origin) -> bool {
        self.scheme == origin.scheme && self.host == origin.host && self.port.is_none_or(|p| p == origin.port)
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}://{}:{port}", self.scheme.as_str(), self.host),
            None => write!(f, "{}://{}:*", self.scheme.as_str(), self.host),
        }
    }
}

impl FromStr for OriginPattern {
    type Err = OriginError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_suffix(":*") {
            Some(rest) => {
                let origin: Origin = rest.parse()?;
                Ok(Self { scheme: origin.scheme, host: origin.host, port: None })
            }
            None => {
                let origin: Origin = s.parse()?;
                Ok(Self { scheme: origin.scheme, host: origin.host, port: Some(origin.port) })
            }
        }
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

/// The origins the operator granted one plugin. Empty (the default) denies every request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    origins: BTreeSet<Origin>,
}

impl Grants {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn new(origins: impl IntoIterator<Item = Origin>) -> Self {
        Self { origins: origins.into_iter().collect() }
    }

    pub fn origins(&self) -> impl Iterator<Item = &Origin> {
        self.origins.iter()
    }

    /// Parses `url` and allows it only when its exact origin was granted.
    pub fn check(&self, url: &str) -> Result<Url, Denial> {
        let parsed = Url::parse(url).map_err(|e| Denial::InvalidUrl(format!("`{url}`: {e}")))?;
        let origin = Origin::of_url(&parsed).map_err(|e| Denial::InvalidUrl(e.to_string()))?;
        if self.origins.contains(&origin) { Ok(parsed) } else { Err(Denial::NotGranted(origin)) }
    }
}

/// Why the host refused to send a plugin's request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("{0} was not granted")]
    NotGranted(Origin),
    #[error("invalid URL {0}")]
    InvalidUrl(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> Origin {
        s.parse().unwrap()
    }

    #[test]
    fn nothing_granted_denies_everything() {
        let grants = Grants::none();
        assert!(matches!(grants.check("https://api.stripe.com/v1/charges"), Err(Denial::NotGranted(_))));
        assert!(matches!(grants.check("http://127.0.0.1:8080/"), Err(Denial::NotGranted(_))));
    }

    #[test]
    fn only_the_exact_origin_is_allowed() {
        let grants = Grants::new([origin("https://api.stripe.com")]);
        assert!(grants.check("https://api.stripe.com/v1/charges?x=1").is_ok());
        assert!(grants.check("https://API.Stripe.com:443/v1").is_ok());
        for denied in [
            "http://api.stripe.com/v1",
            "https://api.stripe.com:8443/v1",
            "https://evil.stripe.com/v1",
            "https://api.stripe.com.evil.test/v1",
        ] {
            assert!(matches!(grants.check(denied), Err(Denial::NotGranted(_))), "{denied} should be denied");
        }
    }

    #[test]
    fn odd_urls_are_refused() {
        let grants = Grants::new([origin("http://127.0.0.1:9000")]);
        for bad in ["file:///etc/passwd", "http://user:pw@127.0.0.1:9000/", "not a url", "/relative"] {
            assert!(matches!(grants.check(bad), Err(Denial::InvalidUrl(_))), "{bad} should be invalid");
        }
        // Another spelling of the same host is a different origin: deny rather than resolve.
        assert!(matches!(grants.check("http://localhost:9000/"), Err(Denial::NotGranted(_))));
    }

    #[test]
    fn origins_parse_strictly() {
        assert_eq!(origin("https://api.stripe.com").port, 443);
        assert_eq!(origin("http://127.0.0.1:8080").to_string(), "http://127.0.0.1:8080");
        assert!("https://api.stripe.com/v1".parse::<Origin>().is_err());
        assert!("ftp://files.test".parse::<Origin>().is_err());
    }

    #[test]
    fn patterns_cover_any_port_only_when_asked() {
        let any: OriginPattern = "http://127.0.0.1:*".parse().unwrap();
        let exact: OriginPattern = "https://api.stripe.com".parse().unwrap();
        assert!(any.covers(&origin("http://127.0.0.1:1234")));
        assert!(!any.covers(&origin("https://127.0.0.1:1234")));
        assert!(exact.covers(&origin("https://api.stripe.com:443")));
        assert!(!exact.covers(&origin("https://api.stripe.com:444")));
        assert_eq!(any.to_string(), "http://127.0.0.1:*");
    }
}
