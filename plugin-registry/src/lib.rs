//! Plugin packages and what is installed: the registry half of Lessor's plugin platform.
//! No WebAssembly runtime here; the host injects one as a [`ComponentChecker`].
//!
//! Code map:
//! - [`manifest`]: `plugin.toml` ([`Manifest`]); [`origin`]: the origin patterns it requests.
//! - [`package`] + `archive`: a [`Package`] from a directory or a `.tar`/`.tar.gz`, with the
//!   SHA-256 [`Digest`]s of its component and manifest.
//! - [`signature`]: ed25519 package signatures and the operator's [`SignaturePolicy`];
//!   [`publisher`]: a publisher's [`PublisherKey`] for `host plugin sign`.
//! - [`store`]: packages on disk by digest ([`PackageStore`]), verified when read.
//! - [`records`] + [`repo`]: the `plugins` table on both engines ([`SqlPlugins`]) and the
//!   revision counter replicas poll.
//! - [`registry`]: [`Registry`], the rules of install/upgrade/rollback/…; [`RegistryError`]
//!   says why something was refused.

mod archive;
pub mod checker;
pub mod digest;
pub mod error;
pub mod manifest;
pub mod names;
pub mod origin;
pub mod package;
pub mod publisher;
pub mod records;
pub mod registry;
pub mod repo;
pub mod signature;
pub mod store;
#[cfg(test)]
mod testing;
pub mod token_format;

pub use archive::{MAX_CONTENT_BYTES, MAX_ENTRIES};
pub use checker::{ComponentChecker, ComponentRefusal};
pub use digest::{Digest, DigestError};
pub use error::RegistryError;
pub use manifest::{Manifest, ManifestError, WebhookRules};
pub use names::{NameError, PluginName, PluginRef, ProviderId, Version};
pub use origin::{Origin, OriginError, OriginPattern, Scheme};
pub use package::{MAX_COMPONENT_BYTES, Package, PackageError, write_signature};
pub use publisher::PublisherKey;
pub use records::{Activation, ActivePlugin, ActiveSet, NewPlugin, PluginRecord, Removal, Revision, StoredParts};
pub use registry::{Admission, GrantsChanged, Installed, Registry};
pub use repo::{GrantChange, InsertMode, Inserted, PluginRepository, RepoError, SqlPlugins};
pub use signature::{
    KeyError, KeyId, PackageSignature, SignatureFileError, SignaturePolicy, SignatureRefusal, TrustedKey,
};
pub use store::{PackageStore, PackageStoreError};
pub use token_format::{TokenFormat, TokenFormats};
