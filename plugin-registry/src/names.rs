//! The names a plugin goes by: its package name, the provider id payments are routed by, its
//! version, and `provider[@version]` as an operator types it.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("`{0}` is not a valid name: use 1-64 of a-z, 0-9 and -")]
    Name(String),
    #[error("`{0}` is not a valid version: use a version such as 1.2.0")]
    Version(String),
}

fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_version(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// A string newtype whose constructor checks the syntax.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $valid:ident, $error:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, NameError> {
                if $valid(s) { Ok(Self(s.to_owned())) } else { Err(NameError::$error(s.to_owned())) }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

checked_string!(
    /// A package name (`stripe`): 1-64 of `a-z`, `0-9`, `-`.
    PluginName,
    is_name,
    Name
);
checked_string!(
    /// The provider id payments are routed by (`stripe`): 1-64 of `a-z`, `0-9`, `-`.
    ProviderId,
    is_name,
    Name
);
checked_string!(
    /// A plugin version (`1.2.0`, `2.0.0-rc.1`): starts with a digit; letters, digits, `._+-`.
    /// Versions are labels: the registry orders them by when they were installed, not by value.
    Version,
    is_version,
    Version
);

/// `provider` or `provider@version`, as the CLI takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    pub provider: ProviderId,
    pub version: Option<Version>,
}

impl FromStr for PluginRef {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('@') {
            Some((provider, version)) => {
                Ok(Self { provider: ProviderId::parse(provider)?, version: Some(Version::parse(version)?) })
            }
            None => Ok(Self { provider: ProviderId::parse(s)?, version: None }),
        }
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.provider),
            None => write!(f, "{}", self.provider),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_words() {
        assert!(ProviderId::parse("bank-transfer").is_ok());
        for bad in ["", "Stripe", "a_b", "a b", &"x".repeat(65)] {
            assert!(matches!(ProviderId::parse(bad), Err(NameError::Name(_))), "{bad}");
        }
    }

    #[test]
    fn versions_start_with_a_digit() {
        assert!(Version::parse("1.2.0-rc.1+build.5").is_ok());
        for bad in ["", "v1", "1.0 beta", "1@2", &"1".repeat(65)] {
            assert!(matches!(Version::parse(bad), Err(NameError::Version(_))), "{bad}");
        }
    }

    #[test]
    fn references_take_an_optional_version() {
        let r: PluginRef = "stripe@1.2.0".parse().unwrap();
        assert_eq!((r.provider.as_str(), r.version.as_ref().map(Version::as_str)), ("stripe", Some("1.2.0")));
        assert_eq!(r.to_string(), "stripe@1.2.0");
        assert_eq!("stripe".parse::<PluginRef>().unwrap().version, None);
        assert!("stripe@".parse::<PluginRef>().is_err());
        assert!("@1.0.0".parse::<PluginRef>().is_err());
    }
}
