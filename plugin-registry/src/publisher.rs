//! A publisher's signing key, for `host plugin sign`. The key file is TOML:
//!
//! ```toml
//! # Lessor plugin publisher key. Keep this file secret; operators need only public_key.
//! key_id = "acme-2025"
//! public_key = "<base64 of 32 bytes>"
//! secret_key = "<base64 of the 32-byte ed25519 seed>"
//! ```
//!
//! Operators trust the public half by configuring `{ id = key_id, public_key = … }`.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::package::Package;
use crate::signature::{KeyError, KeyId, PackageSignature, TrustedKey, signing_message};

/// An ed25519 signing key with its id. `Debug` never shows the secret half.
pub struct PublisherKey {
    id: KeyId,
    signing: SigningKey,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyFile {
    key_id: String,
    public_key: String,
    secret_key: String,
}

const KEY_FILE_HEADER: &str = "# Lessor plugin publisher key. Keep this file secret; operators need only public_key.\n";

impl PublisherKey {
    /// A new key from the operating system's random source.
    pub fn generate(id: KeyId) -> Self {
        Self { id, signing: SigningKey::generate(&mut rand::rngs::OsRng) }
    }

    /// Reads a key file; its public key must match its secret key.
    pub fn from_toml(text: &str) -> Result<Self, KeyError> {
        let file = |reason: &str| KeyError::KeyFile(reason.to_owned());
        let raw: RawKeyFile = toml::from_str(text).map_err(|e| file(e.message()))?;
        let id = KeyId::parse(&raw.key_id)?;
        let seed = BASE64.decode(raw.secret_key.trim()).map_err(|_| file("`secret_key` is not base64"))?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| file("`secret_key` must be 32 bytes"))?;
        let signing = SigningKey::from_bytes(&seed);
        let key = Self { id, signing };
        if key.public_key_base64() != raw.public_key.trim() {
            return Err(file("`public_key` does not belong to `secret_key`"));
        }
        Ok(key)
    }

    /// The key file's text. It holds the secret key: write it where only the publisher reads.
    pub fn to_toml(&self) -> String {
        let raw = RawKeyFile {
            key_id: self.id.to_string(),
            public_key: self.public_key_base64(),
            secret_key: BASE64.encode(self.signing.to_bytes()),
        };
        let body = toml::to_string(&raw).unwrap_or_else(|e| unreachable!("three strings always serialise: {e}"));
        format!("{KEY_FILE_HEADER}{body}")
    }

    /// Writes a new key file readable by its owner only; refuses to overwrite an existing file.
    pub fn write_new(&self, path: &Path) -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(self.to_toml().as_bytes())?;
        file.sync_all()
    }

    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError::KeyFile(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text)
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    pub fn public_key_base64(&self) -> String {
        BASE64.encode(self.signing.verifying_key().as_bytes())
    }

    /// The entry an operator adds to the trusted keys.
    pub fn trusted_key(&self) -> TrustedKey {
        TrustedKey::from_parts(self.id.clone(), self.signing.verifying_key())
    }

    /// Signs a manifest and component by their digests.
    pub fn sign(&self, manifest: &Digest, component: &Digest) -> PackageSignature {
        PackageSignature::new(self.id.clone(), self.signing.sign(&signing_message(manifest, component)))
    }

    /// Signs a loaded package (its existing signature, if any, is ignored): the `plugin.sig` to
    /// write beside its `plugin.toml`.
    pub fn sign_package(&self, package: &Package) -> PackageSignature {
        self.sign(&package.manifest_digest(), &package.component_digest())
    }
}

impl fmt::Debug for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublisherKey")
            .field("id", &self.id)
            .field("public_key", &self.public_key_base64())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PublisherKey {
        PublisherKey::generate(KeyId::parse("acme-2025").unwrap())
    }

    #[test]
    fn key_files_round_trip() {
        let key = key();
        let back = PublisherKey::from_toml(&key.to_toml()).unwrap();
        assert_eq!(back.id(), key.id());
        assert_eq!(back.public_key_base64(), key.public_key_base64());
        let (m, c) = (Digest::of(b"m"), Digest::of(b"c"));
        assert_eq!(back.sign(&m, &c), key.sign(&m, &c));
    }

    #[test]
    fn a_key_file_with_a_foreign_public_key_is_refused() {
        let text = key().to_toml();
        let other = key().public_key_base64();
        let mixed: String = text
            .lines()
            .map(|l| if l.starts_with("public_key") { format!("public_key = \"{other}\"") } else { l.to_owned() })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(matches!(PublisherKey::from_toml(&mixed), Err(KeyError::KeyFile(_))));
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = key();
        let secret = BASE64.encode(key.signing.to_bytes());
        assert!(!format!("{key:?}").contains(&secret));
    }

    #[test]
    fn write_new_refuses_to_overwrite_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("publisher.key");
        let key = key();
        key.write_new(&path).unwrap();
        assert!(key.write_new(&path).is_err());
        assert_eq!(PublisherKey::read(&path).unwrap().public_key_base64(), key.public_key_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
