//! The host against Meilisearch: a local peer that speaks the subset of the Meilisearch
//! HTTP API our adapter uses (see services/search/tests/peer/mod.rs for the endpoints). It
//! stands in for a real Meilisearch server, which this machine does not have.

use std::time::{Duration, Instant};

use host::config::MeiliSettings;
use lessor_auth::Role;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, assert_problem};
use crate::leases::lease_body;
use crate::meili_peer::MeiliPeer;

const KEY: &str = "peer-master-key";

async fn spawn_with_peer(peer: &MeiliPeer) -> TestApp {
    let url = peer.url();
    TestApp::spawn_with(Backend::Postgres, move |c| {
        c.meili = Some(MeiliSettings { url, api_key: Some(KEY.to_owned().into()), index: "leases".into() });
    })
    .await
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn hits(app: &TestApp, token: &str, q: &str) -> Option<usize> {
    let response = app.get_authed(&format!("/api/v1/leases?q={q}"), token).await;
    if response.status() != 200 {
        return None;
    }
    let body: Value = response.json().await.unwrap();
    Some(body["items"].as_array().unwrap().len())
}

#[tokio::test]
async fn leases_created_during_a_meilisearch_outage_are_found_after_it() {
    let peer = MeiliPeer::start(Some(KEY)).await;
    let app = spawn_with_peer(&peer).await;
    wait_for("index settings", async || peer.settings("leases").is_some()).await;
    let token = app.token_for(Role::Operator).await;

    let create = |vin: &'static str| {
        let body = lease_body(vin, "Mercedes-Benz", "S 580", "luxury");
        let request = app.client.post(app.url("/api/v1/leases")).bearer_auth(&token).json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(create("WDD2220821A100001").await, 201);
    wait_for("the first lease in the index", async || hits(&app, &token, "luxary").await == Some(1)).await;

    // Meilisearch goes down: leases are still created, search says it is unavailable.
    peer.set_outage(true);
    for vin in ["WDD2220821A100002", "WDD2220821A100003", "WDD2220821A100004"] {
        assert_eq!(create(vin).await, 201);
    }
    let during = app.get_authed("/api/v1/leases?q=luxury", &token).await;
    assert_problem(during, 503, "service-unavailable").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let deferred = metrics.lines().find(|l| l.starts_with("lessor_search_index_deferred_total")).unwrap();
    assert_ne!(deferred, "lessor_search_index_deferred_total 0", "the indexer retried and put entries back");

    // It comes back: every lease made during the outage is indexed, none twice.
    peer.set_outage(false);
    wait_for("all four leases in the index", async || hits(&app, &token, "luxary").await == Some(4)).await;
    assert_eq!(peer.documents("leases").len(), 4);
    let (_, _, failed) = peer.task_counts();
    assert_eq!(failed, 0);
    // Every request carried the API key.
    let bearer = format!("Bearer {KEY}");
    assert!(peer.requests().iter().all(|(_, auth)| auth.as_deref() == Some(bearer.as_str())));
}
