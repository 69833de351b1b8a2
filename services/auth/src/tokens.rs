//! HS256 access tokens. Only HS256 is accepted when decoding, so `alg: none` and
//! algorithm-confusion tokens fail like any tampered token.

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Role;

pub const ISSUER: &str = "lessor";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub jti: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Signs and verifies access tokens with one secret key. `Debug` never shows the key.
pub struct TokenCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: i64,
}

impl fmt::Debug for TokenCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCodec").field("ttl_secs", &self.ttl_secs).finish_non_exhaustive()
    }
}

impl TokenCodec {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Claims for a new token issued at `now` (Unix seconds).
    pub fn claims_for(&self, user_id: Uuid, role: Role, now: i64) -> Claims {
        Claims { sub: user_id, role, jti: Uuid::new_v4(), iat: now, exp: now + self.ttl_secs, iss: ISSUER.into() }
    }

    pub fn encode(&self, claims: &Claims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    pub fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        // A JWT for us is well under 1 KiB; refuse to parse anything absurd.
        if token.len() > 4096 {
            return Err(TokenError::Invalid);
        }
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(TokenError::Expired),
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> TokenCodec {
        TokenCodec::new(b"0123456789abcdef0123456789abcdef", 3600)
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn round_trip() {
        let c = codec();
        let claims = c.claims_for(Uuid::new_v4(), Role::Operator, now());
        let token = c.encode(&claims).unwrap();
        assert_eq!(c.decode(&token).unwrap(), claims);
    }

    #[test]
    fn expired_is_told_apart() {
        let c = codec();
        let claims = c.claims_for(Uuid::new_v4(), Role::Customer, now() - 7200);
        assert_eq!(c.decode(&c.encode(&claims).unwrap()), Err(TokenError::Expired));
    }

    #[test]
    fn other_key_and_alg_none_are_invalid() {
        let c = codec();
        let claims = c.claims_for(Uuid::new_v4(), Role::Admin, now());
        let foreign = TokenCodec::new(b"another key another key another k", 3600).encode(&claims).unwrap();
        assert_eq!(c.decode(&foreign), Err(TokenError::Invalid));

        let token = c.encode(&claims).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        // {"alg":"none","typ":"JWT"}
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(c.decode(&none), Err(TokenError::Invalid));
        assert_eq!(c.decode("garbage"), Err(TokenError::Invalid));
    }
}
