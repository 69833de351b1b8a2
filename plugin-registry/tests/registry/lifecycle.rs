//! Install, list, inspect, disable/enable, upgrade, activate, rollback and remove, with the
//! revision moving on every change and only then.

use lessor_plugin_registry::{PluginRef, ProviderId, RegistryError, Revision, Version};

use crate::helpers::{Engine, FakeChecker, TestEnv, component_bytes, grant};
use crate::on_both_engines;

fn provider(s: &str) -> ProviderId {
    s.parse().unwrap()
}

fn version(s: &str) -> Version {
    s.parse().unwrap()
}

fn plugin(s: &str) -> PluginRef {
    s.parse().unwrap()
}

/// `provider@version` of each active plugin, with its enabled flag.
async fn active(env: &TestEnv) -> Vec<(String, bool)> {
    let set = env.registry.active_plugins().await.unwrap();
    set.plugins.iter().map(|p| (format!("{}@{}", p.provider, p.version), p.enabled)).collect()
}

async fn full_life_cycle(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let registry = &env.registry;
    assert_eq!(registry.revision().await.unwrap(), Revision::new(0));

    // Install: the first version of a provider becomes active, and is granted its hosts plus extras.
    let stripe_1 = env.package("stripe", "1.0.0");
    let installed = registry.install(&stripe_1, &[grant("http://127.0.0.1:*")], &FakeChecker).await.unwrap();
    assert_eq!(installed.revision, Revision::new(1));
    assert!(installed.record.active && installed.record.enabled);
    assert_eq!(installed.replaced, None);
    let grants: Vec<String> = installed.record.grants.iter().map(ToString::to_string).collect();
    assert_eq!(grants, ["https://api.stripe.test:443", "http://127.0.0.1:*"]);
    assert_eq!(installed.record.extra_grants().count(), 1);
    assert_eq!(installed.record.digest, stripe_1.component_digest());
    assert_eq!(installed.record.manifest_text, stripe_1.manifest_text());
    registry.install(&env.package("bank", "0.3.0"), &[], &FakeChecker).await.unwrap();
    assert_eq!(registry.revision().await.unwrap(), Revision::new(2));

    // List and inspect.
    let listed: Vec<String> = registry.list().await.unwrap().iter().map(|r| r.label()).collect();
    assert_eq!(listed, ["bank@0.3.0", "stripe@1.0.0"]);
    let inspected = registry.inspect(&plugin("stripe@1.0.0")).await.unwrap();
    assert_eq!(inspected.len(), 1);
    assert_eq!(inspected[0].manifest.secrets().iter().collect::<Vec<_>>(), ["api_key"]);
    assert_eq!(inspected[0].wit, "lessor:payments@0.1.0");
    assert!(matches!(registry.inspect(&plugin("paypal")).await, Err(RegistryError::NotInstalled { .. })));
    assert!(matches!(registry.inspect(&plugin("stripe@9.0.0")).await, Err(RegistryError::VersionNotInstalled { .. })));
    assert_eq!(active(&env).await, [("bank@0.3.0".to_owned(), true), ("stripe@1.0.0".to_owned(), true)]);

    // Disable and enable; a switch that changes nothing does not bump the revision.
    assert_eq!(registry.disable(&provider("stripe")).await.unwrap(), Some(Revision::new(3)));
    assert_eq!(registry.disable(&provider("stripe")).await.unwrap(), None);
    assert_eq!(registry.revision().await.unwrap(), Revision::new(3));
    assert_eq!(active(&env).await[1], ("stripe@1.0.0".to_owned(), false));
    assert_eq!(registry.enable(&provider("stripe")).await.unwrap(), Some(Revision::new(4)));
    assert!(matches!(registry.enable(&provider("paypal")).await, Err(RegistryError::NotInstalled { .. })));

    // Upgrade: the new version is active, the old one stays installed.
    let upgraded = registry.upgrade(&env.package("stripe", "1.1.0"), &[], &FakeChecker).await.unwrap();
    assert_eq!(upgraded.revision, Revision::new(5));
    assert_eq!(upgraded.replaced, Some(version("1.0.0")));
    // The operator's grant of 1.0.0 (`http://127.0.0.1:*`) is carried over.
    let grants: Vec<String> = upgraded.record.grants.iter().map(ToString::to_string).collect();
    assert_eq!(grants, ["https://api.stripe.test:443", "http://127.0.0.1:*"]);
    assert_eq!(upgraded.previous.as_ref().map(|r| r.label()).as_deref(), Some("stripe@1.0.0"));
    let versions: Vec<(String, bool)> =
        registry.inspect(&plugin("stripe")).await.unwrap().iter().map(|r| (r.version.to_string(), r.active)).collect();
    assert_eq!(versions, [("1.0.0".to_owned(), false), ("1.1.0".to_owned(), true)]);

    // Install of a further version stages it without activating it.
    let staged = registry.install(&env.package("stripe", "1.2.0"), &[], &FakeChecker).await.unwrap();
    assert!(!staged.record.active && staged.record.enabled);
    assert_eq!(active(&env).await[1].0, "stripe@1.1.0");

    // Rollback goes to the previously active version, then further back only if there is one.
    let back = registry.rollback(&provider("stripe")).await.unwrap();
    assert_eq!((back.from, back.to.clone()), (Some(version("1.1.0")), version("1.0.0")));
    assert_eq!(back.revision, Revision::new(7));
    let err = registry.rollback(&provider("stripe")).await.unwrap_err();
    assert!(matches!(err, RegistryError::NoRollbackTarget { .. }), "{err}");
    assert!(err.to_string().contains("no previously active version") && err.to_string().contains("1.0.0"), "{err}");
    assert_eq!(registry.revision().await.unwrap(), Revision::new(7));

    // Activate a staged version; rollback returns to the one it replaced.
    let activation = registry.activate(&provider("stripe"), &version("1.2.0")).await.unwrap().unwrap();
    assert_eq!(activation.from, Some(version("1.0.0")));
    assert_eq!(registry.activate(&provider("stripe"), &version("1.2.0")).await.unwrap(), None);
    assert_eq!(registry.rollback(&provider("stripe")).await.unwrap().to, version("1.0.0"));
    assert_eq!(active(&env).await[1].0, "stripe@1.0.0");

    // Remove: an inactive version goes, with its package; the live one stays unless forced.
    let digest_1_1 = registry.inspect(&plugin("stripe@1.1.0")).await.unwrap()[0].digest;
    assert!(registry.store().contains(&digest_1_1));
    let removal = registry.remove(&plugin("stripe@1.1.0"), false).await.unwrap();
    assert_eq!(removal.versions, [version("1.1.0")]);
    assert_eq!(removal.orphaned, [digest_1_1]);
    assert!(!registry.store().contains(&digest_1_1));
    let err = registry.remove(&plugin("stripe@1.0.0"), false).await.unwrap_err();
    assert!(matches!(err, RegistryError::RemoveActive { .. }), "{err}");
    assert!(err.to_string().contains("stripe@1.0.0 is the active version of enabled provider stripe"), "{err}");
    let err = registry.remove(&plugin("stripe"), false).await.unwrap_err();
    assert!(matches!(err, RegistryError::RemoveActive { .. }), "{err}");

    // A disabled provider can be removed whole; an enabled one with force.
    registry.disable(&provider("stripe")).await.unwrap();
    let removal = registry.remove(&plugin("stripe"), false).await.unwrap();
    assert_eq!(removal.versions, [version("1.0.0"), version("1.2.0")]);
    registry.remove(&plugin("bank"), true).await.unwrap();
    assert!(registry.list().await.unwrap().is_empty());
    assert!(active(&env).await.is_empty());
    assert!(matches!(registry.remove(&plugin("bank"), true).await, Err(RegistryError::NotInstalled { .. })));
    // Thirteen changes; refusals and no-ops bumped nothing.
    assert_eq!(registry.revision().await.unwrap(), Revision::new(13));
}

async fn a_disabled_provider_stays_disabled_across_upgrades(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let registry = &env.registry;
    registry.install(&env.package("stripe", "1.0.0"), &[], &FakeChecker).await.unwrap();
    registry.disable(&provider("stripe")).await.unwrap();
    let upgraded = registry.upgrade(&env.package("stripe", "2.0.0"), &[], &FakeChecker).await.unwrap();
    assert!(upgraded.record.active);
    assert!(!upgraded.record.enabled, "an upgrade must not switch a disabled provider back on");
    assert!(!upgraded.record.serves());
    let rolled = registry.rollback(&provider("stripe")).await.unwrap();
    assert_eq!(rolled.to, version("1.0.0"));
    assert_eq!(active(&env).await, [("stripe@1.0.0".to_owned(), false)]);
}

async fn components_come_back_verified(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let package = env.package("stripe", "1.0.0");
    env.registry.install(&package, &[], &FakeChecker).await.unwrap();
    let set = env.registry.active_plugins().await.unwrap();
    assert_eq!(set.revision, Revision::new(1));
    let bytes = env.registry.component(&set.plugins[0].digest).await.unwrap();
    assert_eq!(bytes, component_bytes("stripe", "1.0.0"));
    assert_eq!(set.plugins[0].manifest.hosts(), package.manifest().hosts());
}

async fn at_most_one_version_is_active_per_provider_in_the_database(engine: Engine) {
    let env = TestEnv::new(engine).await;
    env.registry.install(&env.package("stripe", "1.0.0"), &[], &FakeChecker).await.unwrap();
    env.registry.install(&env.package("stripe", "1.1.0"), &[], &FakeChecker).await.unwrap();
    let sql = "UPDATE plugins SET active = TRUE WHERE provider = 'stripe' AND version = '1.1.0'";
    let result = lessor_store::on_db!(&env.db, pool => lessor_store::sqlx::query(sql).execute(pool).await.map(|_| ()));
    let err = result.expect_err("a second active version must violate the unique index");
    assert!(err.as_database_error().is_some_and(|e| e.is_unique_violation()), "{err}");
}

async fn concurrent_first_installs_activate_exactly_one(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let other = env.replica("other-host").await;
    let (a, b) = (env.package("stripe", "1.0.0"), env.package("stripe", "1.0.1"));
    let (ra, rb) = tokio::join!(env.registry.install(&a, &[], &FakeChecker), other.install(&b, &[], &FakeChecker));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.record.active ^ rb.record.active, "exactly one of them is the provider's first version");
    assert_ne!(ra.revision, rb.revision);
    assert_eq!(env.registry.active_plugins().await.unwrap().plugins.len(), 1);
}

/// Grants are the operator's: an upgrade keeps them (adding the new manifest's hosts), and
/// `grant` / `revoke` change them on every version at once, bumping the revision so every
/// replica reloads.
async fn grants_survive_upgrades_and_change_live(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let registry = &env.registry;
    let stripe = provider("stripe");
    let granted = |r: &lessor_plugin_registry::PluginRecord| -> Vec<String> {
        r.grants.iter().map(ToString::to_string).collect()
    };
    registry
        .install(&env.package("stripe", "1.0.0"), &[grant("http://mock.internal:12111+private")], &FakeChecker)
        .await
        .unwrap();
    let upgraded =
        registry.upgrade(&env.package("stripe", "2.0.0"), &[grant("https://new.test")], &FakeChecker).await.unwrap();
    assert_eq!(
        granted(&upgraded.record),
        ["https://api.stripe.test:443", "https://new.test:443", "http://mock.internal:12111+private"]
    );
    let again = registry.upgrade(&env.package("stripe", "3.0.0"), &[], &FakeChecker).await.unwrap();
    assert_eq!(
        granted(&again.record),
        ["https://api.stripe.test:443", "https://new.test:443", "http://mock.internal:12111+private"]
    );
    let before = registry.revision().await.unwrap();

    // Grant: every version, one revision.
    let changed = registry.grant(&stripe, &grant("https://eu.stripe.test")).await.unwrap().expect("a change");
    assert_eq!(changed.revision, Revision::new(before.get() + 1));
    assert_eq!(changed.versions.len(), 3);
    assert!(changed.versions.iter().all(|r| granted(r).contains(&"https://eu.stripe.test:443".to_owned())));
    assert!(registry.grant(&stripe, &grant("https://eu.stripe.test")).await.unwrap().is_none(), "granted already");
    // Granting again with `+private` replaces the grant in place.
    let private = registry.grant(&stripe, &grant("https://eu.stripe.test+private")).await.unwrap().unwrap();
    let active = private.versions.iter().find(|r| r.active).unwrap();
    assert!(granted(active).contains(&"https://eu.stripe.test:443+private".to_owned()), "{:?}", granted(active));
    assert!(!granted(active).contains(&"https://eu.stripe.test:443".to_owned()));

    // Revoke, whatever the `+private`: gone from every version, and from the active set hosts load.
    let revoked = registry.revoke(&stripe, &grant("http://mock.internal:12111")).await.unwrap().unwrap();
    assert!(revoked.versions.iter().all(|r| !granted(r).iter().any(|g| g.contains("mock.internal"))));
    let set = registry.active_plugins().await.unwrap();
    assert_eq!(set.revision, revoked.revision);
    assert!(set.plugins[0].grants.iter().all(|g| g.host != "mock.internal"));
    assert!(
        registry.revoke(&stripe, &grant("http://mock.internal:12111")).await.unwrap().is_none(),
        "nothing left to revoke"
    );
    // A rollback does not bring a revoked grant back.
    registry.rollback(&stripe).await.unwrap();
    let set = registry.active_plugins().await.unwrap();
    assert_eq!(set.plugins[0].version, version("2.0.0"));
    assert!(set.plugins[0].grants.iter().all(|g| g.host != "mock.internal"));
    assert!(matches!(
        registry.grant(&provider("paypal"), &grant("https://x.test")).await,
        Err(RegistryError::NotInstalled { .. })
    ));
}

on_both_engines!(
    grants_survive_upgrades_and_change_live,
    full_life_cycle,
    a_disabled_provider_stays_disabled_across_upgrades,
    components_come_back_verified,
    at_most_one_version_is_active_per_provider_in_the_database,
    concurrent_first_installs_activate_exactly_one,
);
