//! Several hosts on one database: each notices changes through the revision and loads
//! components it never saw from the database into its own store.

use lessor_plugin_registry::{ProviderId, Revision};

use crate::helpers::{Engine, FakeChecker, TestEnv, component_bytes};
use crate::on_both_engines;

async fn a_replica_sees_changes_and_fetches_components(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let replica = env.replica("replica-store").await;
    assert_eq!(replica.revision().await.unwrap(), Revision::new(0));

    let package = env.package("stripe", "1.0.0");
    env.registry.install(&package, &[], &FakeChecker).await.unwrap();
    let seen = replica.revision().await.unwrap();
    assert_eq!(seen, Revision::new(1));

    let set = replica.active_plugins().await.unwrap();
    assert_eq!(set.revision, seen);
    let stripe = &set.plugins[0];
    assert!(stripe.enabled);
    assert!(!replica.store().contains(&stripe.digest));
    assert_eq!(replica.component(&stripe.digest).await.unwrap(), component_bytes("stripe", "1.0.0"));
    assert!(replica.store().contains(&stripe.digest), "the replica keeps what it fetched");
    let copy = replica.store().get(&stripe.digest).unwrap();
    assert_eq!(copy.manifest_text(), package.manifest_text());

    // A change on one host is a new revision for every host.
    replica.disable(&ProviderId::parse("stripe").unwrap()).await.unwrap();
    assert_eq!(env.registry.revision().await.unwrap(), Revision::new(2));
    assert!(!env.registry.active_plugins().await.unwrap().plugins[0].enabled);
}

on_both_engines!(a_replica_sees_changes_and_fetches_components);
