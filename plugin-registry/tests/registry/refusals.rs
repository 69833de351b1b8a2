//! Every refusal, with the words the operator reads, and nothing recorded or stored after it.

use std::fs;

use lessor_plugin_registry::{
    Admission, ComponentRefusal, Digest, Package, PackageError, PackageStoreError, RegistryError, Revision,
    SignaturePolicy, SignatureRefusal, write_signature,
};

use crate::helpers::{Engine, FakeChecker, TestEnv, component_bytes, publisher, sign_dir, write_package};
use crate::on_both_engines;

/// Nothing was recorded and no package was left in the store.
async fn assert_untouched(env: &TestEnv) {
    assert_eq!(env.registry.revision().await.unwrap(), Revision::new(0));
    assert!(env.registry.list().await.unwrap().is_empty());
    let stored = fs::read_dir(env.registry.store().root().join("sha256")).unwrap().count();
    assert_eq!(stored, 0, "no package may stay in the store after a refusal");
}

/// Installs the package directory `dir`, turning a package error into the registry's.
async fn install_dir(env: &TestEnv, dir: &std::path::Path) -> Result<(), RegistryError> {
    let package = Package::load(dir)?;
    env.registry.install(&package, &[], &FakeChecker).await.map(|_| ())
}

fn flip_one_byte(path: &std::path::Path) {
    let mut bytes = fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

async fn a_pinned_digest_that_does_not_match_is_refused(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let dir = env.scratch("pinned");
    let wrong = Digest::of(b"some other build");
    write_package(&dir, "stripe", "1.0.0", &[&format!("digest = \"{wrong}\"")]);
    let err = install_dir(&env, &dir).await.unwrap_err();
    assert!(matches!(err, RegistryError::Package(PackageError::DigestMismatch { .. })), "{err}");
    let actual = Digest::of(&component_bytes("stripe", "1.0.0"));
    assert_eq!(
        err.to_string(),
        format!(
            "invalid package: the component's digest is {actual}, but plugin.toml pins {wrong}: the component was changed or replaced"
        )
    );
    assert_untouched(&env).await;
}

async fn a_component_tampered_after_pinning_is_refused(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let dir = env.scratch("tampered-pinned");
    let genuine = Digest::of(&component_bytes("stripe", "1.0.0"));
    write_package(&dir, "stripe", "1.0.0", &[&format!("digest = \"{genuine}\"")]);
    flip_one_byte(&dir.join("stripe.wasm"));
    let err = install_dir(&env, &dir).await.unwrap_err();
    assert!(matches!(err, RegistryError::Package(PackageError::DigestMismatch { pinned, .. }) if pinned == genuine));
    assert_untouched(&env).await;
}

async fn a_component_tampered_after_signing_is_refused(engine: Engine) {
    let key = publisher("acme");
    let policy = SignaturePolicy { required: true, trusted: vec![key.trusted_key()] };
    let env = TestEnv::with_policy(engine, policy).await;
    let dir = env.scratch("tampered-signed");
    write_package(&dir, "stripe", "1.0.0", &[]);
    sign_dir(&dir, &key);
    flip_one_byte(&dir.join("stripe.wasm"));
    let err = install_dir(&env, &dir).await.unwrap_err();
    assert!(matches!(err, RegistryError::Signature { refusal: SignatureRefusal::Invalid { .. }, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "stripe@1.0.0 refused: the signature by key `acme` does not match the package: the manifest or the component was changed after signing"
    );
    assert_untouched(&env).await;
}

async fn a_manifest_changed_after_signing_is_refused(engine: Engine) {
    let key = publisher("acme");
    let policy = SignaturePolicy { required: false, trusted: vec![key.trusted_key()] };
    let env = TestEnv::with_policy(engine, policy).await;
    let dir = env.scratch("widened");
    write_package(&dir, "stripe", "1.0.0", &[]);
    sign_dir(&dir, &key);
    // Someone asks for one more host after the publisher signed.
    let manifest = fs::read_to_string(dir.join("plugin.toml")).unwrap();
    let widened = manifest.replace("hosts = [", "hosts = [\"https://evil.test\", ");
    fs::write(dir.join("plugin.toml"), widened).unwrap();
    let err = install_dir(&env, &dir).await.unwrap_err();
    assert!(matches!(err, RegistryError::Signature { refusal: SignatureRefusal::Invalid { .. }, .. }), "{err}");
    assert_untouched(&env).await;
}

async fn a_signature_by_an_untrusted_key_is_refused(engine: Engine) {
    let trusted = publisher("acme");
    // Not required: an untrusted signature is refused all the same.
    let policy = SignaturePolicy { required: false, trusted: vec![trusted.trusted_key()] };
    let env = TestEnv::with_policy(engine, policy).await;
    let dir = env.scratch("untrusted");
    write_package(&dir, "stripe", "1.0.0", &[]);
    sign_dir(&dir, &publisher("mallory"));
    let err = install_dir(&env, &dir).await.unwrap_err();
    assert!(matches!(err, RegistryError::Signature { refusal: SignatureRefusal::UntrustedSigner { .. }, .. }));
    assert_eq!(
        err.to_string(),
        "stripe@1.0.0 refused: the package is signed by key `mallory`, which is not among the trusted publisher keys"
    );
    assert_untouched(&env).await;
}

async fn an_invalid_signature_is_refused(engine: Engine) {
    let trusted = publisher("acme");
    let policy = SignaturePolicy { required: true, trusted: vec![trusted.trusted_key()] };
    let env = TestEnv::with_policy(engine, policy).await;
    let dir = env.scratch("impostor");
    write_package(&dir, "stripe", "1.0.0", &[]);
    // A key that calls itself `acme` but is not the trusted one.
    let package = Package::load(&dir).unwrap();
    write_signature(&dir, &publisher("acme").sign_package(&package)).unwrap();
    let err = install_dir(&env, &dir).await.unwrap_err();
    assert!(matches!(err, RegistryError::Signature { refusal: SignatureRefusal::Invalid { .. }, .. }), "{err}");
    assert_untouched(&env).await;
}

async fn an_unsigned_package_is_refused_when_signatures_are_required(engine: Engine) {
    let policy = SignaturePolicy { required: true, trusted: vec![publisher("acme").trusted_key()] };
    let env = TestEnv::with_policy(engine, policy).await;
    let err = env.registry.install(&env.package("stripe", "1.0.0"), &[], &FakeChecker).await.unwrap_err();
    assert!(matches!(err, RegistryError::Signature { refusal: SignatureRefusal::Unsigned, .. }));
    assert_eq!(
        err.to_string(),
        "stripe@1.0.0 refused: the package is not signed, and this host requires signed packages (add plugin.sig with `host plugin sign`)"
    );
    assert_untouched(&env).await;
}

async fn a_signed_package_by_a_trusted_key_is_accepted(engine: Engine) {
    let key = publisher("acme");
    let policy = SignaturePolicy { required: true, trusted: vec![key.trusted_key()] };
    let env = TestEnv::with_policy(engine, policy).await;
    let dir = env.scratch("signed");
    write_package(&dir, "stripe", "1.0.0", &[]);
    sign_dir(&dir, &key);
    let package = Package::load(&dir).unwrap();
    let installed = env.registry.install(&package, &[], &FakeChecker).await.unwrap();
    assert_eq!(installed.record.signed_by.as_ref().map(|k| k.as_str()), Some("acme"));
    assert!(installed.record.signature_text.is_some());
    let stored = env.registry.store().get(&package.component_digest()).unwrap();
    assert_eq!(stored.signature(), package.signature());
}

/// The provider's secrets follow its publisher: another signing key, or unsigned after signed,
/// is refused on upgrade and on install of a further version, unless the operator allows it.
async fn a_package_by_another_publisher_is_refused(engine: Engine) {
    let (acme, mallory) = (publisher("acme"), publisher("mallory"));
    let policy = SignaturePolicy { required: false, trusted: vec![acme.trusted_key(), mallory.trusted_key()] };
    let env = TestEnv::with_policy(engine, policy).await;
    let signed = |name: &str, version: &str, key: Option<&lessor_plugin_registry::PublisherKey>| {
        let dir = env.scratch(name);
        write_package(&dir, "stripe", version, &[]);
        if let Some(key) = key {
            sign_dir(&dir, key);
        }
        Package::load(&dir).unwrap()
    };
    env.registry.install(&signed("acme-1", "1.0.0", Some(&acme)), &[], &FakeChecker).await.unwrap();

    let by_mallory = signed("mallory-2", "2.0.0", Some(&mallory));
    let unsigned = signed("unsigned-2", "2.0.0", None);
    for package in [&by_mallory, &unsigned] {
        for upgrade in [true, false] {
            let result = if upgrade {
                env.registry.upgrade(package, &[], &FakeChecker).await
            } else {
                env.registry.install(package, &[], &FakeChecker).await
            };
            let err = result.unwrap_err();
            assert!(matches!(err, RegistryError::NewPublisher { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains("stripe@1.0.0 is published by key `acme`"), "{text}");
        }
    }
    let words = env.registry.upgrade(&unsigned, &[], &FakeChecker).await.unwrap_err().to_string();
    assert!(words.contains("but this package is unsigned"), "{words}");
    assert_eq!(env.registry.list().await.unwrap().len(), 1);

    let allowed = Admission { extra_grants: &[], allow_new_publisher: true };
    let installed = env.registry.upgrade_with(&by_mallory, allowed, &FakeChecker).await.unwrap();
    assert_eq!(installed.record.signed_by.as_ref().map(|k| k.as_str()), Some("mallory"));
    assert!(installed.record.active);
}

/// A provider installed unsigned may start signing: an unsigned package named no publisher.
async fn an_unsigned_provider_may_start_signing(engine: Engine) {
    let acme = publisher("acme");
    let env =
        TestEnv::with_policy(engine, SignaturePolicy { required: false, trusted: vec![acme.trusted_key()] }).await;
    env.registry.install(&env.package("stripe", "1.0.0"), &[], &FakeChecker).await.unwrap();
    let dir = env.scratch("signed-2");
    write_package(&dir, "stripe", "2.0.0", &[]);
    sign_dir(&dir, &acme);
    env.registry.upgrade(&Package::load(&dir).unwrap(), &[], &FakeChecker).await.unwrap();
}

async fn a_component_of_an_unknown_wit_version_is_refused(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let dir = env.scratch("wrong-world");
    write_package(&dir, "stripe", "1.0.0", &[]);
    let manifest = fs::read_to_string(dir.join("plugin.toml")).unwrap();
    fs::write(dir.join("plugin.toml"), manifest.replace("lessor:payments@0.1.0", "lessor:payments@9.9.9")).unwrap();
    let err = install_dir(&env, &dir).await.unwrap_err();
    assert!(matches!(err, RegistryError::Component { refusal: ComponentRefusal::UnknownWit { .. }, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "stripe@1.0.0 refused: the component does not implement lessor:payments@9.9.9: unknown WIT version lessor:payments@9.9.9 (this host runs lessor:payments@0.1.0)"
    );
    assert_untouched(&env).await;
}

async fn a_component_without_the_provider_export_is_refused(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let dir = env.scratch("no-export");
    write_package(&dir, "stripe", "1.0.0", &[]);
    fs::write(dir.join("stripe.wasm"), b"\0asm a library, no-provider-export").unwrap();
    let err = install_dir(&env, &dir).await.unwrap_err();
    assert!(matches!(err, RegistryError::Component { refusal: ComponentRefusal::MissingExport { .. }, .. }));
    assert_eq!(
        err.to_string(),
        "stripe@1.0.0 refused: the component does not implement lessor:payments@0.1.0: missing export lessor:payments/provider@0.1.0"
    );
    assert_untouched(&env).await;
}

async fn a_duplicate_version_is_refused(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let first = env.package("stripe", "1.0.0");
    env.registry.install(&first, &[], &FakeChecker).await.unwrap();
    // The same version again, even as another build.
    let dir = env.scratch("rebuilt");
    write_package(&dir, "stripe", "1.0.0", &[]);
    fs::write(dir.join("stripe.wasm"), b"\0asm another build").unwrap();
    let rebuilt = Package::load(&dir).unwrap();
    for result in [
        env.registry.install(&rebuilt, &[], &FakeChecker).await,
        env.registry.upgrade(&rebuilt, &[], &FakeChecker).await,
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, RegistryError::DuplicateVersion { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "stripe@1.0.0 is already installed (component {}); publish the new build under another version, or remove this one first",
                first.component_digest()
            )
        );
    }
    assert_eq!(env.registry.revision().await.unwrap(), Revision::new(1));
    assert!(!env.registry.store().contains(&rebuilt.component_digest()));
    assert!(env.registry.store().contains(&first.component_digest()));
}

async fn an_upgrade_of_an_unknown_provider_is_refused(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let err = env.registry.upgrade(&env.package("stripe", "1.0.0"), &[], &FakeChecker).await.unwrap_err();
    assert!(matches!(err, RegistryError::UpgradeOfUnknownProvider { .. }), "{err}");
    assert_eq!(err.to_string(), "stripe is not installed yet: install it first, then upgrade");
    assert_untouched(&env).await;
}

async fn an_archive_with_a_parent_path_is_refused(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let dir = env.scratch("archive");
    write_package(&dir, "stripe", "1.0.0", &[]);
    // A valid package plus one entry named `../escape.wasm`, written byte by byte (tar writers
    // refuse such names).
    let mut tar = tar::Builder::new(Vec::new());
    for name in ["plugin.toml", "stripe.wasm"] {
        tar.append_path_with_name(dir.join(name), name).unwrap();
    }
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..14].copy_from_slice(b"../escape.wasm");
    header.set_size(1);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append(&header, &b"x"[..]).unwrap();
    let path = dir.join("stripe.tar");
    fs::write(&path, tar.into_inner().unwrap()).unwrap();

    let err = install_dir(&env, &path).await.unwrap_err();
    assert!(matches!(err, RegistryError::Package(PackageError::UnsafePath { .. })), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid package: archive entry `../escape.wasm` points outside the package (absolute path or `..`)"
    );
    assert_untouched(&env).await;
}

async fn a_gzipped_archive_installs(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let dir = env.scratch("stripe");
    write_package(&dir, "stripe", "1.0.0", &[]);
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all("stripe", &dir).unwrap();
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    let path = env.dir.path().join("stripe-1.0.0.tar.gz");
    fs::write(&path, bytes).unwrap();
    install_dir(&env, &path).await.unwrap();
    assert_eq!(env.registry.list().await.unwrap()[0].label(), "stripe@1.0.0");
}

async fn a_component_tampered_in_the_store_is_detected(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let package = env.package("stripe", "1.0.0");
    env.registry.install(&package, &[], &FakeChecker).await.unwrap();
    let digest = package.component_digest();
    flip_one_byte(&env.registry.store().path_of(&digest).join("component.wasm"));
    let err = env.registry.component(&digest).await.unwrap_err();
    assert!(matches!(err, RegistryError::Store(PackageStoreError::Tampered { .. })), "{err}");
    let actual = Digest::of(&fs::read(env.registry.store().path_of(&digest).join("component.wasm")).unwrap());
    assert_eq!(
        err.to_string(),
        format!(
            "the stored component {digest} was modified on disk (it now hashes to {actual}); remove it and install the package again"
        )
    );
}

on_both_engines!(
    a_pinned_digest_that_does_not_match_is_refused,
    a_component_tampered_after_pinning_is_refused,
    a_component_tampered_after_signing_is_refused,
    a_manifest_changed_after_signing_is_refused,
    a_signature_by_an_untrusted_key_is_refused,
    an_invalid_signature_is_refused,
    an_unsigned_package_is_refused_when_signatures_are_required,
    a_signed_package_by_a_trusted_key_is_accepted,
    a_package_by_another_publisher_is_refused,
    an_unsigned_provider_may_start_signing,
    a_component_of_an_unknown_wit_version_is_refused,
    a_component_without_the_provider_export_is_refused,
    a_duplicate_version_is_refused,
    an_upgrade_of_an_unknown_provider_is_refused,
    an_archive_with_a_parent_path_is_refused,
    a_gzipped_archive_installs,
    a_component_tampered_in_the_store_is_detected,
);
