//! A plugin result over the output cap, through the API (issue 12 item 8): the call is refused
//! before its result is copied, the payment stays `pending` like any call whose outcome is
//! unknown, and `/metrics` counts the refusal by kind.

use host::plugins::RuntimeChecker;
use lessor_plugin_registry::Package;
use serde_json::{Value, json};

use crate::helpers::Backend;
use crate::payments::env;
use crate::plugin_build::packages_dir;

#[tokio::test]
async fn an_output_over_the_cap_leaves_the_payment_pending_and_is_counted() {
    let env = env(Backend::Sqlite).await;
    let runtime = env.app.state.providers.runtime().clone();
    let package = Package::load(&packages_dir().join("huge-output")).unwrap();
    let checker = RuntimeChecker::new(runtime.clone());
    env.app.state.providers.registry().install(&package, &[], &checker).await.unwrap();
    env.app.state.providers.refresh().await.unwrap();

    // `huge-output` answers `process` with a 4 MiB transaction id; the cap is 64 KiB.
    let body = json!({"lease_id": env.lease_id, "amount": 1000, "currency": "EUR",
                      "provider": "huge-output", "payment_method": "tok_huge"});
    let response = env.pay("huge-output-1", &body).await;
    let status = response.status().as_u16();
    let payment: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{payment:#}");
    assert_eq!(payment["status"], "pending", "the outcome is unknown, left to reconciliation: {payment:#}");

    let metrics = runtime.metrics();
    assert_eq!(metrics.calls("huge-output", "0.1.0", "process", "sandbox"), 1);
    let exposed = env.app.client.get(env.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = "lessor_plugin_traps_total{plugin=\"huge-output\",version=\"0.1.0\",kind=\"output_too_large\"} 1";
    assert!(exposed.lines().any(|l| l == line), "{line} in:\n{exposed}");
}
