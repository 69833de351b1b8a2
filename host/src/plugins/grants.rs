//! Outbound HTTP capability, deny by default: a plugin reaches an origin (scheme, host, port)
//! only when the operator granted it. The registry records the grants at install: the origins
//! the manifest requests, which the operator accepts by installing, plus any `--grant-host`
//! extras. Origins and patterns are the registry's types ([`Origin`], [`OriginPattern`]).

use std::collections::BTreeSet;

use lessor_plugin_registry::{Origin, OriginPattern};
use url::Url;

/// The origins one plugin may reach. Empty (the default) denies every request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    patterns: BTreeSet<OriginPattern>,
}

impl Grants {
    pub fn none() -> Self {
        Self::default()
    }

    /// Grants exact origins or `:*` patterns (any port on that host).
    pub fn new<P: Into<OriginPattern>>(patterns: impl IntoIterator<Item = P>) -> Self {
        Self { patterns: patterns.into_iter().map(Into::into).collect() }
    }

    pub fn patterns(&self) -> impl Iterator<Item = &OriginPattern> {
        self.patterns.iter()
    }

    /// Parses `url` and allows it only when a granted pattern covers its origin. Where the
    /// name may resolve to is checked when connecting (`address.rs`), unless a covering grant
    /// says `+private`.
    pub fn check(&self, url: &str) -> Result<Granted, Denial> {
        let parsed = Url::parse(url).map_err(|e| Denial::InvalidUrl(format!("`{url}`: {e}")))?;
        let origin = Origin::of_url(&parsed).map_err(|e| Denial::InvalidUrl(e.to_string()))?;
        let mut covering = self.patterns.iter().filter(|p| p.covers(&origin)).peekable();
        if covering.peek().is_none() {
            return Err(Denial::NotGranted(origin));
        }
        let allow_private = covering.any(|p| p.allow_private);
        Ok(Granted { url: parsed, origin, allow_private })
    }
}

/// A request URL some grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub url: Url,
    pub origin: Origin,
    /// A covering grant lets the name resolve to non-public addresses.
    pub allow_private: bool,
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

    fn pattern(s: &str) -> OriginPattern {
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
    fn a_port_wildcard_covers_that_host_and_scheme_only() {
        let grants = Grants::new([pattern("http://127.0.0.1:*")]);
        assert!(grants.check("http://127.0.0.1:1234/x").is_ok());
        assert!(grants.check("http://127.0.0.1/x").is_ok());
        assert!(matches!(grants.check("https://127.0.0.1:1234/x"), Err(Denial::NotGranted(_))));
        assert!(matches!(grants.check("http://127.0.0.2:1234/x"), Err(Denial::NotGranted(_))));
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
    fn only_a_private_grant_lets_a_name_reach_private_addresses() {
        let grants = Grants::new([pattern("http://mock.internal:9000+private"), pattern("https://api.stripe.com")]);
        assert!(grants.check("http://mock.internal:9000/x").unwrap().allow_private);
        assert!(!grants.check("https://api.stripe.com/v1").unwrap().allow_private);
    }
}
