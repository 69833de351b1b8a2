//! What a provider's tokens look like (`[token-formats]` in `plugin.toml`), so that a real token
//! that happens to look like a card number is not refused as one.
//!
//! ```toml
//! [token-formats]
//! card = "[0-9]{16}"     # e.g. Adyen's storedPaymentMethodId: 16 digits, ~1 in 10 pass Luhn
//! ```
//!
//! Each entry names a payment method kind (`[a-z0-9_-]`) and a regular expression (the `regex`
//! crate's syntax, ASCII classes such as `[0-9]`) that a whole token must match. The host accepts
//! a request's `payment_method` for that provider when it matches one of them, even if it passes
//! Luhn; every other value in the request is still checked for card numbers.

use std::collections::BTreeMap;
use std::fmt;

/// The longest pattern a manifest may declare.
pub const MAX_PATTERN_CHARS: usize = 256;
/// At most this many formats per manifest.
pub const MAX_FORMATS: usize = 16;

/// One declared format: the pattern as written and its compiled, anchored form.
#[derive(Clone)]
pub struct TokenFormat {
    pattern: String,
    regex: regex::Regex,
}

impl TokenFormat {
    /// Compiles `pattern` to match whole tokens only. The compiled program is size-limited, so
    /// a manifest cannot make the host build a huge automaton.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() || pattern.chars().count() > MAX_PATTERN_CHARS {
            return Err(format!("must be 1-{MAX_PATTERN_CHARS} characters"));
        }
        let regex = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 16)
            .dfa_size_limit(1 << 16)
            .build()
            .map_err(|e| format!("is not a valid pattern: {}", e.to_string().lines().last().unwrap_or("")))?;
        Ok(Self { pattern: pattern.to_owned(), regex })
    }

    /// The pattern as the manifest wrote it.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the whole of `token` has this format.
    pub fn matches(&self, token: &str) -> bool {
        self.regex.is_match(token)
    }
}

impl PartialEq for TokenFormat {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for TokenFormat {}

impl fmt::Debug for TokenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.pattern)
    }
}

/// A manifest's `[token-formats]`, by payment method kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFormats(BTreeMap<String, TokenFormat>);

impl TokenFormats {
    pub fn parse(raw: BTreeMap<String, String>) -> Result<Self, (String, String)> {
        if raw.len() > MAX_FORMATS {
            return Err((String::new(), format!("declares more than {MAX_FORMATS} formats")));
        }
        let kind_ok = |k: &str| {
            !k.is_empty()
                && k.len() <= 64
                && k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        let mut formats = BTreeMap::new();
        for (kind, pattern) in raw {
            if !kind_ok(&kind) {
                return Err((kind, "is not a payment method kind (1-64 of a-z, 0-9, _ and -)".to_owned()));
            }
            let format = TokenFormat::new(&pattern).map_err(|reason| (kind.clone(), reason))?;
            formats.insert(kind, format);
        }
        Ok(Self(formats))
    }

    /// The kind whose format `token` has, if any.
    pub fn kind_of(&self, token: &str) -> Option<&str> {
        self.0.iter().find(|(_, f)| f.matches(token)).map(|(kind, _)| kind.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `(kind, pattern)` in kind order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, f)| (k.as_str(), f.pattern()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formats(pairs: &[(&str, &str)]) -> Result<TokenFormats, (String, String)> {
        TokenFormats::parse(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn a_format_matches_whole_tokens_only() {
        let f = formats(&[("card", "[0-9]{16}")]).unwrap();
        assert_eq!(f.kind_of("4111111111111111"), Some("card"));
        assert_eq!(f.kind_of("x4111111111111111"), None, "anchored at the start");
        assert_eq!(f.kind_of("41111111111111112"), None, "anchored at the end");
        assert_eq!(f.kind_of("4111 1111 1111 1111"), None);
        // An alternation cannot escape the anchors.
        let f = formats(&[("card", "[0-9]{16}|pm_.*")]).unwrap();
        assert_eq!(f.kind_of("pm_x"), Some("card"));
        assert_eq!(f.kind_of("4111111111111111 and more"), None);
    }

    #[test]
    fn bad_declarations_are_refused_with_a_reason() {
        assert_eq!(formats(&[("Card", "[0-9]+")]).unwrap_err().0, "Card");
        assert!(formats(&[("card", "")]).unwrap_err().1.contains("1-256"));
        assert!(formats(&[("card", "[0-9")]).unwrap_err().1.contains("not a valid pattern"));
        assert!(formats(&[("card", &"a".repeat(257))]).is_err());
        // A pattern whose automaton would be huge is refused, not built.
        assert!(formats(&[("card", "(([0-9a-f]{50}){50}){10}")]).is_err());
        let many: Vec<(String, String)> = (0..17).map(|i| (format!("k{i}"), "x".to_owned())).collect();
        assert!(TokenFormats::parse(many.into_iter().collect()).is_err());
    }
}
