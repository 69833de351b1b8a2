//! Package signatures: ed25519 over `b"lessor-plugin-v1\n" ‖ sha256(plugin.toml) ‖ sha256(component)`
//! (the two digests as raw 32-byte values), so one signature covers the manifest (and with it
//! the hosts, keys and pinned digest) and the component.
//!
//! `plugin.sig` beside `plugin.toml`:
//!
//! ```toml
//! key_id = "acme-2025"
//! signature = "<base64 of 64 bytes>"
//! ```
//!
//! The operator decides with a [`SignaturePolicy`]: which publisher keys are trusted, and whether
//! unsigned packages are refused. A signature that names an untrusted key, or does not verify, is
//! refused whatever the policy.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// What every signature covers, before the two digests.
pub const SIGNING_CONTEXT: &[u8] = b"lessor-plugin-v1\n";

/// The exact bytes a publisher signs for a package.
pub fn signing_message(manifest: &Digest, component: &Digest) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + 64);
    message.extend_from_slice(SIGNING_CONTEXT);
    message.extend_from_slice(manifest.as_bytes());
    message.extend_from_slice(component.as_bytes());
    message
}

/// How a publisher key is named in `plugin.sig` and in the operator's trust list:
/// 1-64 of `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let ok = (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok { Ok(Self(s.to_owned())) } else { Err(KeyError::KeyId(s.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyId {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("`{0}` is not a valid key id: use 1-64 of A-Z, a-z, 0-9, '.', '_' and '-'")]
    KeyId(String),
    #[error("public key of `{id}` is not valid: {reason}")]
    PublicKey { id: String, reason: String },
    #[error("publisher key file: {0}")]
    KeyFile(String),
}

/// A public key the operator trusts to sign packages.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedKey {
    id: KeyId,
    key: VerifyingKey,
}

impl TrustedKey {
    /// `public_key` is the base64 of the 32-byte ed25519 public key (what `host plugin sign`
    /// prints for a publisher key). Weak (small-order) keys are refused.
    pub fn parse(id: &str, public_key: &str) -> Result<Self, KeyError> {
        let id = KeyId::parse(id)?;
        let bad = |reason: &str| KeyError::PublicKey { id: id.to_string(), reason: reason.to_owned() };
        let bytes = BASE64.decode(public_key.trim()).map_err(|_| bad("not base64"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| bad("an ed25519 public key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a point on the curve"))?;
        if key.is_weak() {
            return Err(bad("a weak key"));
        }
        Ok(Self { id, key })
    }

    pub(crate) fn from_parts(id: KeyId, key: VerifyingKey) -> Self {
        Self { id, key }
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The base64 public key, as configured.
    pub fn public_key_base64(&self) -> String {
        BASE64.encode(self.key.as_bytes())
    }
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKey").field("id", &self.id).field("public_key", &self.public_key_base64()).finish()
    }
}

/// As an operator writes it in configuration: `{ id = "acme", public_key = "<base64>" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrustedKey {
    id: String,
    public_key: String,
}

impl<'de> Deserialize<'de> for TrustedKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawTrustedKey::deserialize(deserializer)?;
        Self::parse(&raw.id, &raw.public_key).map_err(serde::de::Error::custom)
    }
}

/// The contents of `plugin.sig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSignature {
    key_id: KeyId,
    signature: Signature,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignature {
    key_id: String,
    signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureFileError {
    #[error("plugin.sig: {0}")]
    Syntax(String),
    #[error("plugin.sig: {0}")]
    KeyId(KeyError),
    #[error("plugin.sig: `signature` must be the base64 of a 64-byte ed25519 signature")]
    Signature,
}

impl PackageSignature {
    pub fn new(key_id: KeyId, signature: Signature) -> Self {
        Self { key_id, signature }
    }

    pub fn from_toml(text: &str) -> Result<Self, SignatureFileError> {
        let raw: RawSignature = toml::from_str(text).map_err(|e| SignatureFileError::Syntax(e.message().to_owned()))?;
        let key_id = KeyId::parse(&raw.key_id).map_err(SignatureFileError::KeyId)?;
        let bytes = BASE64.decode(raw.signature.trim()).map_err(|_| SignatureFileError::Signature)?;
        let bytes: [u8; 64] = bytes.try_into().map_err(|_| SignatureFileError::Signature)?;
        Ok(Self { key_id, signature: Signature::from_bytes(&bytes) })
    }

    pub fn to_toml(&self) -> String {
        let raw = RawSignature { key_id: self.key_id.to_string(), signature: BASE64.encode(self.signature.to_bytes()) };
        toml::to_string(&raw).unwrap_or_else(|e| unreachable!("two strings always serialise: {e}"))
    }

    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }
}

/// Why a package's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefusal {
    #[error(
        "the package is not signed, and this host requires signed packages (add plugin.sig with `host plugin sign`)"
    )]
    Unsigned,
    #[error("the package is signed by key `{key_id}`, which is not among the trusted publisher keys")]
    UntrustedSigner { key_id: KeyId },
    #[error(
        "the signature by key `{key_id}` does not match the package: the manifest or the component was changed after signing"
    )]
    Invalid { key_id: KeyId },
}

/// The operator's rules for package signatures.
#[derive(Debug, Clone, Default)]
pub struct SignaturePolicy {
    /// Refuse unsigned packages.
    pub required: bool,
    pub trusted: Vec<TrustedKey>,
}

impl SignaturePolicy {
    /// Accepts or refuses a package by its digests and signature; returns the signer, if any.
    pub fn verify(
        &self,
        manifest: &Digest,
        component: &Digest,
        signature: Option<&PackageSignature>,
    ) -> Result<Option<KeyId>, SignatureRefusal> {
        let Some(signature) = signature else {
            return if self.required { Err(SignatureRefusal::Unsigned) } else { Ok(None) };
        };
        let key_id = signature.key_id.clone();
        let Some(trusted) = self.trusted.iter().find(|k| k.id == key_id) else {
            return Err(SignatureRefusal::UntrustedSigner { key_id });
        };
        let message = signing_message(manifest, component);
        match trusted.key.verify_strict(&message, &signature.signature) {
            Ok(()) => Ok(Some(key_id)),
            Err(_) => Err(SignatureRefusal::Invalid { key_id }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publisher::PublisherKey;

    fn digests() -> (Digest, Digest) {
        (Digest::of(b"manifest"), Digest::of(b"component"))
    }

    fn policy(required: bool, keys: &[&PublisherKey]) -> SignaturePolicy {
        SignaturePolicy { required, trusted: keys.iter().map(|k| k.trusted_key()).collect() }
    }

    #[test]
    fn a_trusted_signature_is_accepted() {
        let key = PublisherKey::generate(KeyId::parse("acme").unwrap());
        let (m, c) = digests();
        let sig = key.sign(&m, &c);
        assert_eq!(policy(true, &[&key]).verify(&m, &c, Some(&sig)), Ok(Some(KeyId::parse("acme").unwrap())));
    }

    #[test]
    fn unsigned_is_refused_only_when_required() {
        let (m, c) = digests();
        assert_eq!(policy(false, &[]).verify(&m, &c, None), Ok(None));
        assert_eq!(policy(true, &[]).verify(&m, &c, None), Err(SignatureRefusal::Unsigned));
    }

    #[test]
    fn untrusted_and_invalid_signatures_are_always_refused() {
        let trusted = PublisherKey::generate(KeyId::parse("acme").unwrap());
        let stranger = PublisherKey::generate(KeyId::parse("mallory").unwrap());
        let (m, c) = digests();
        let by_stranger = stranger.sign(&m, &c);
        assert!(matches!(
            policy(false, &[&trusted]).verify(&m, &c, Some(&by_stranger)),
            Err(SignatureRefusal::UntrustedSigner { .. })
        ));
        // A key that claims a trusted id but was made by someone else.
        let impostor = PublisherKey::generate(KeyId::parse("acme").unwrap()).sign(&m, &c);
        assert!(matches!(
            policy(false, &[&trusted]).verify(&m, &c, Some(&impostor)),
            Err(SignatureRefusal::Invalid { .. })
        ));
        // A genuine signature over other content.
        let sig = trusted.sign(&m, &c);
        let other = Digest::of(b"component!");
        assert!(matches!(
            policy(false, &[&trusted]).verify(&m, &other, Some(&sig)),
            Err(SignatureRefusal::Invalid { .. })
        ));
        assert!(matches!(
            policy(false, &[&trusted]).verify(&other, &c, Some(&sig)),
            Err(SignatureRefusal::Invalid { .. })
        ));
    }

    #[test]
    fn signature_files_round_trip_and_reject_junk() {
        let key = PublisherKey::generate(KeyId::parse("acme").unwrap());
        let (m, c) = digests();
        let sig = key.sign(&m, &c);
        assert_eq!(PackageSignature::from_toml(&sig.to_toml()).unwrap(), sig);
        assert!(matches!(
            PackageSignature::from_toml("key_id = \"acme\"\nsignature = \"AAAA\""),
            Err(SignatureFileError::Signature)
        ));
        assert!(matches!(
            PackageSignature::from_toml(&format!("{}extra = 1\n", sig.to_toml())),
            Err(SignatureFileError::Syntax(_))
        ));
        assert!(matches!(
            PackageSignature::from_toml("key_id = \"a b\"\nsignature = \"\""),
            Err(SignatureFileError::KeyId(_))
        ));
    }

    #[test]
    fn trusted_keys_parse_from_configuration() {
        let key = PublisherKey::generate(KeyId::parse("acme").unwrap());
        let text = format!("id = \"acme\"\npublic_key = \"{}\"\n", key.public_key_base64());
        let trusted: TrustedKey = toml::from_str(&text).unwrap();
        assert_eq!(trusted, key.trusted_key());
        assert!(matches!(TrustedKey::parse("acme", "not base64!"), Err(KeyError::PublicKey { .. })));
        assert!(matches!(TrustedKey::parse("acme", &BASE64.encode([0u8; 31])), Err(KeyError::PublicKey { .. })));
        // The identity point is a valid encoding but a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(TrustedKey::parse("acme", &BASE64.encode(identity)), Err(KeyError::PublicKey { .. })));
        assert!(matches!(TrustedKey::parse("", &key.public_key_base64()), Err(KeyError::KeyId(_))));
    }

    #[test]
    fn the_signed_message_is_context_then_both_digests() {
        let (m, c) = digests();
        let message = signing_message(&m, &c);
        assert_eq!(message.len(), SIGNING_CONTEXT.len() + 64);
        assert!(message.starts_with(b"lessor-plugin-v1\n"));
        assert_eq!(&message[SIGNING_CONTEXT.len()..SIGNING_CONTEXT.len() + 32], m.as_bytes());
    }
}
