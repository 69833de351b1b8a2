//! argon2id password hashing. Hashing is CPU-bound: callers run it on a blocking thread.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use secrecy::{ExposeSecret, SecretString};

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Hashing cost grows with input; refuse absurd inputs before hashing them. Counted in
/// characters, as the API documents it (at most 1 KiB of UTF-8).
pub const MAX_PASSWORD_CHARS: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("must be at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// argon2id with the OWASP-recommended defaults of the `argon2` crate (19 MiB, t=2, p=1).
#[derive(Clone, Default)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
}

impl PasswordHasher {
    /// Checks the policy for a new password, then hashes it to a PHC string.
    pub fn hash_new(&self, password: &SecretString) -> Result<String, PasswordError> {
        let p = password.expose_secret();
        let chars = p.chars().count();
        if chars > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        let salt = SaltString::generate(&mut OsRng);
        self.argon
            .hash_password(p.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    /// Constant-time verification against a stored PHC string; malformed hashes never match.
    pub fn verify(&self, password: &SecretString, stored: &str) -> bool {
        let p = password.expose_secret();
        if p.len() > 4 * MAX_PASSWORD_CHARS || p.chars().count() > MAX_PASSWORD_CHARS {
            return false;
        }
        match PasswordHash::new(stored) {
            Ok(parsed) => self.argon.verify_password(p.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn hashes_with_argon2id_and_verifies() {
        let h = PasswordHasher::default();
        let stored = h.hash_new(&secret("correct horse battery")).unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(h.verify(&secret("correct horse battery"), &stored));
        assert!(!h.verify(&secret("correct horse batterY"), &stored));
        assert!(!h.verify(&secret("correct horse battery"), "not a hash"));
    }

    #[test]
    fn policy_refuses_short_and_huge_passwords() {
        let h = PasswordHasher::default();
        assert_eq!(h.hash_new(&secret("short")), Err(PasswordError::TooShort));
        assert_eq!(h.hash_new(&secret(&"x".repeat(2000))), Err(PasswordError::TooLong));
    }
}
