//! Grants are the operator's, and they last: `host plugin upgrade` keeps what `--grant-host`
//! granted, and `host plugin grant` / `revoke` change it live in a running `host serve`, through
//! the real CLI and a real server process.

use std::time::{Duration, Instant};

use crate::plugin_attacks::Counter;
use crate::plugin_build::packages_dir;
use crate::served::{Api, Customer, Served};

const ADMIN: &str = "admin@grants.test";
const PASSWORD: &str = "correct horse battery staple";

fn cli_out(host: &Served, args: &[&str]) -> String {
    let output = host.cli(args).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Pays until `done` accepts the payment (the running host reloads within its reload interval).
async fn pay_until(
    host: &Served,
    api: &Api,
    customer: &Customer,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    for attempt in 0.. {
        let key = format!("{what}-{attempt}");
        let (status, payment) = api.pay(customer, "http-ungranted", "tok_grants", &key).await.unwrap();
        assert_eq!(status, 201, "{payment:#}\nlog:\n{}", host.log_tail(30));
        if done(&payment) {
            return payment;
        }
        assert!(Instant::now() < deadline, "{what}: last payment {payment:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

#[tokio::test]
async fn an_upgrade_keeps_the_operators_grants_and_a_revoke_fails_the_next_payment_at_once() {
    // The provider's API: a local server reached by the name `localhost`, which the manifest
    // (`http://127.0.0.1:*`) does not request, so only the operator's grant lets it through.
    let peer = Counter::start().await;
    let origin = format!("http://localhost:{}", peer.port);
    let packages = packages_dir();
    let mut host = Served::new(env!("CARGO_BIN_EXE_host"));
    host.set("LESSOR_PLUGINS__HTTP_UNGRANTED__TARGET_URL", format!("{origin}/charges"));
    host.cli(&["migrate"]).unwrap();
    host.create_admin(ADMIN, PASSWORD).unwrap();
    host.install(&packages.join("http-ungranted"), &["--grant-host", &origin, "--allow-private"]).unwrap();
    host.start().await.unwrap();
    let api = host.api();
    let admin = api.login(ADMIN, PASSWORD).await.unwrap();
    let customer = api.customer_with_active_lease(&admin).await.unwrap();

    let paid = pay_until(&host, &api, &customer, "installed", |p| p["status"] == "succeeded").await;
    assert_eq!(paid["status"], "succeeded", "{paid:#}");
    assert_eq!(peer.hits(), 1);

    // Upgrade without repeating --grant-host: the grant holds, and the command says so.
    let package = packages.join("http-ungranted-v2");
    let out = cli_out(&host, &["plugin", "upgrade", package.to_str().unwrap()]);
    assert!(out.contains("upgraded http-ungranted: 0.1.0 -> 0.2.0"), "{out}");
    assert!(out.contains(&format!("kept your grants: {origin}+private")), "{out}");
    assert!(out.contains("grants: unchanged") && out.contains("signer: unchanged"), "{out}");
    let inspect = cli_out(&host, &["plugin", "inspect", "http-ungranted@0.2.0", "--json"]);
    let inspected: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let grants = inspected["items"][0]["grants"].as_array().unwrap();
    assert!(grants.iter().any(|g| g == &format!("{origin}+private")), "{inspect}");
    // Payments go on through 0.2.0 with the grant it kept.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(host.log_path()).unwrap_or_default().contains("serving 0.2.0") {
        assert!(Instant::now() < deadline, "0.2.0 never served; log:\n{}", host.log_tail(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hits = peer.hits();
    let paid = pay_until(&host, &api, &customer, "upgraded", |_| true).await;
    assert_eq!(paid["status"], "succeeded", "the upgraded version reached its provider: {paid:#}");
    assert_eq!(peer.hits(), hits + 1);

    // Revoke, live: the next payment fails at once, nothing reaches the provider.
    let out = cli_out(&host, &["plugin", "revoke", "http-ungranted", &origin]);
    assert!(out.contains(&format!("revoked {origin}")), "{out}");
    assert!(out.contains("http-ungranted@0.1.0") && out.contains("http-ungranted@0.2.0 (active)"), "{out}");
    // Payments the host made before it reloaded (within its 200 ms interval) still went through.
    let failed = pay_until(&host, &api, &customer, "revoked", |p| p["status"] != "succeeded").await;
    assert_eq!(failed["status"], "failed", "failed at once, not left pending: {failed:#}");
    assert_eq!(failed["failure_code"], "provider_egress_denied", "{failed:#}");
    let hits = peer.hits();
    for i in 0..3 {
        let (status, again) =
            api.pay(&customer, "http-ungranted", "tok_grants", &format!("after-revoke-{i}")).await.unwrap();
        assert_eq!((status, again["failure_code"].as_str()), (201, Some("provider_egress_denied")), "{again:#}");
    }
    assert_eq!(peer.hits(), hits, "nothing reached the provider once revoked");

    // Grant it back: payments reach the provider again; a second revoke of nothing says so.
    let out = cli_out(&host, &["plugin", "grant", "http-ungranted", &origin, "--allow-private"]);
    assert!(out.contains(&format!("granted {origin}")), "{out}");
    let paid = pay_until(&host, &api, &customer, "granted", |p| p["status"] == "succeeded").await;
    assert_eq!(paid["status"], "succeeded");
    let out = cli_out(&host, &["plugin", "revoke", "http-ungranted", "https://nowhere.test"]);
    assert!(out.contains("had no grant of https://nowhere.test:443; nothing changed"), "{out}");
    let err = host.cli(&["plugin", "grant", "no-such-provider", "https://x.test"]).unwrap_err().to_string();
    assert!(err.contains("no-such-provider"), "{err}");
}
