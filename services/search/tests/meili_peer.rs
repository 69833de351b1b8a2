//! The Meilisearch adapter against a local peer that speaks the subset of the Meilisearch
//! API the adapter uses (see `peer/mod.rs` for the endpoints it covers).

mod peer;

use std::time::Duration;

use lessor_search::{LeaseDocument, MeiliIndex, SearchError, SearchIndex, SearchQuery};
use peer::MeiliPeer;
use serde_json::json;
use uuid::Uuid;

const KEY: &str = "peer-master-key";
const INDEX: &str = "leases";
const ALICE: Uuid = Uuid::from_u128(0xA);
const BOB: Uuid = Uuid::from_u128(0xB);

fn lease(n: u128, make: &str, model: &str, category: &str, owner: Uuid) -> LeaseDocument {
    LeaseDocument {
        id: Uuid::from_u128(n),
        owner_id: owner,
        status: "active".into(),
        category: category.into(),
        make: make.into(),
        model: model.into(),
        vin: format!("WDB{n:014}"),
        year: 2024,
        start_date: "2025-03-01".into(),
        monthly_amount: 59_900,
        currency: "EUR".into(),
        created_at: 1_700_000_000_000 + n as i64,
    }
}

fn fleet() -> Vec<LeaseDocument> {
    vec![
        lease(1, "Bentley", "Continental GT", "luxury", ALICE),
        lease(2, "Mercedes-Benz", "E-Class", "midsize", ALICE),
        lease(3, "Audi", "A4", "compact", BOB),
        lease(4, "BMW", "X5", "suv", ALICE),
        lease(5, "BMW", "X3", "suv", BOB),
    ]
}

/// A started peer with a master key, and an adapter for it with short timeouts.
async fn setup() -> (MeiliPeer, MeiliIndex) {
    let peer = MeiliPeer::start(Some(KEY)).await;
    let index = adapter(&peer, Some(KEY));
    index.configure().await.expect("configure");
    (peer, index)
}

fn adapter(peer: &MeiliPeer, key: Option<&str>) -> MeiliIndex {
    MeiliIndex::new(&peer.url(), key, INDEX)
        .expect("adapter")
        .with_request_timeout(Duration::from_secs(2))
        .with_task_timeout(Duration::from_secs(2))
}

async fn ids(index: &MeiliIndex, query: SearchQuery) -> Vec<u128> {
    index.search(&query).await.expect("search").ids.into_iter().map(|id| id.as_u128()).collect()
}

async fn text(index: &MeiliIndex, words: &str) -> Vec<u128> {
    ids(index, SearchQuery::text(words)).await
}

#[tokio::test]
async fn configure_creates_the_index_and_applies_the_settings() {
    let (peer, index) = setup().await;
    assert_eq!(peer.primary_key(INDEX).as_deref(), Some("id"));
    let settings = peer.settings(INDEX).unwrap();
    assert_eq!(settings["searchableAttributes"], json!(["make", "model", "vin", "category", "year"]));
    assert_eq!(settings["filterableAttributes"], json!(["status", "owner_id", "category"]));
    assert_eq!(settings["sortableAttributes"], json!(["created_at"]));
    assert_eq!(settings["typoTolerance"]["minWordSizeForTypos"], json!({"oneTypo": 5, "twoTypos": 9}));

    // Again, as on every start-up: the index exists, so only the settings are sent.
    index.configure().await.unwrap();
    assert_eq!(peer.task_counts(), (0, 3, 0), "create, settings, settings");
}

#[tokio::test]
async fn round_trip_upsert_search_delete_clear() {
    let (peer, index) = setup().await;
    index.upsert(&fleet()).await.unwrap();
    assert_eq!(peer.documents(INDEX).len(), 5);

    assert_eq!(text(&index, "luxary").await, [1], "one typo");
    assert_eq!(text(&index, "merc").await, [2], "prefix");
    assert_eq!(text(&index, "bmw").await, [5, 4], "newest first among equals");
    assert_eq!(text(&index, "audj").await, Vec::<u128>::new(), "no typo under 5 letters");

    let page = index.search(&SearchQuery { limit: 2, ..SearchQuery::default() }).await.unwrap();
    assert_eq!(page.ids, [Uuid::from_u128(5), Uuid::from_u128(4)]);
    assert_eq!(page.estimated_total, 5);

    let filtered = SearchQuery {
        text: "bmw".into(),
        owner_id: Some(BOB),
        status: Some("active".into()),
        category: Some("suv".into()),
        ..SearchQuery::default()
    };
    assert_eq!(ids(&index, filtered).await, [5]);

    let mut replaced = fleet()[2].clone();
    replaced.model = "A6".into();
    index.upsert(&[replaced]).await.unwrap();
    assert_eq!(text(&index, "a6").await, [3]);
    assert_eq!(peer.documents(INDEX).len(), 5, "replaced, not added");

    index.delete(&[Uuid::from_u128(4)]).await.unwrap();
    assert_eq!(text(&index, "bmw").await, [5]);

    index.clear().await.unwrap();
    assert!(peer.documents(INDEX).is_empty());
    assert_eq!(index.search(&SearchQuery::default()).await.unwrap().estimated_total, 0);
}

#[tokio::test]
async fn an_owner_filter_hides_other_owners_leases() {
    let (_peer, index) = setup().await;
    index.upsert(&fleet()).await.unwrap();
    for words in ["bmw", "audi", "suv", ""] {
        let query = SearchQuery { text: words.into(), owner_id: Some(ALICE), ..SearchQuery::default() };
        for id in ids(&index, query).await {
            assert!([1, 2, 4].contains(&id), "`{words}` showed Alice lease {id}");
        }
    }
}

#[tokio::test]
async fn filter_values_are_quoted_not_interpolated() {
    let (_peer, index) = setup().await;
    let mut odd = lease(9, "Fiat", "Panda", "economy", BOB);
    odd.status = r#"on "hold" \ review"#.into();
    index.upsert(&fleet()).await.unwrap();
    index.upsert(&[odd.clone()]).await.unwrap();

    let exact = SearchQuery { status: Some(odd.status.clone()), ..SearchQuery::default() };
    assert_eq!(ids(&index, exact).await, [9]);
    let injection = SearchQuery { status: Some(r#"x" AND owner_id = "0"#.into()), ..SearchQuery::default() };
    assert_eq!(ids(&index, injection).await, Vec::<u128>::new());
}

#[tokio::test]
async fn writes_fail_during_an_outage_and_succeed_after_it() {
    let (peer, index) = setup().await;
    peer.set_outage(true);

    let batch = fleet();
    assert!(matches!(index.upsert(&batch).await, Err(SearchError::Unavailable(_))));
    assert!(matches!(index.delete(&[Uuid::from_u128(1)]).await, Err(SearchError::Unavailable(_))));
    assert!(matches!(index.search(&SearchQuery::text("bmw")).await, Err(SearchError::Unavailable(_))));
    assert!(matches!(index.ping().await, Err(SearchError::Unavailable(_))));
    assert!(peer.documents(INDEX).is_empty());

    peer.set_outage(false);
    index.ping().await.unwrap();
    index.upsert(&batch).await.unwrap();
    assert_eq!(text(&index, "bmw").await, [5, 4]);
}

#[tokio::test]
async fn an_outage_while_waiting_for_the_task_fails_the_write() {
    let (peer, index) = setup().await;
    // The documents are accepted, then the server goes away before the task is done.
    peer.set_stalled(true);
    let write = {
        let batch = fleet();
        tokio::spawn(async move { index.upsert(&batch).await })
    };
    while peer.task_counts().0 == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    peer.set_outage(true);
    assert!(matches!(write.await.unwrap(), Err(SearchError::Unavailable(_))));
}

#[tokio::test]
async fn a_task_that_does_not_finish_in_time_fails_the_write() {
    let (peer, index) = setup().await;
    let index = index.with_task_timeout(Duration::from_millis(150));
    peer.set_stalled(true);
    let result = index.upsert(&fleet()).await;
    assert!(
        matches!(&result, Err(SearchError::Unavailable(message)) if message.contains("not finished")),
        "{result:?}"
    );

    peer.set_stalled(false);
    index.upsert(&fleet()).await.unwrap();
    assert_eq!(peer.documents(INDEX).len(), 5);
}

#[tokio::test]
async fn a_failed_task_fails_the_write() {
    let (peer, index) = setup().await;
    peer.set_task_failure(Some("invalid_request"));
    assert!(matches!(index.upsert(&fleet()).await, Err(SearchError::Rejected(_))));
    peer.set_task_failure(Some("internal"));
    assert!(matches!(index.upsert(&fleet()).await, Err(SearchError::Unavailable(_))));
    peer.set_task_failure(None);
    index.upsert(&fleet()).await.unwrap();
}

#[tokio::test]
async fn slow_answers_time_out() {
    let (peer, index) = setup().await;
    let index = index.with_request_timeout(Duration::from_millis(100));
    peer.set_latency(Duration::from_millis(400));
    assert!(matches!(index.search(&SearchQuery::text("bmw")).await, Err(SearchError::Unavailable(_))));
    assert!(matches!(index.upsert(&fleet()).await, Err(SearchError::Unavailable(_))));
}

#[tokio::test]
async fn the_api_key_is_sent_on_every_request() {
    let (peer, index) = setup().await;
    index.upsert(&fleet()).await.unwrap();
    index.search(&SearchQuery::text("bmw")).await.unwrap();
    let requests = peer.requests();
    assert!(requests.len() >= 6, "{requests:?}");
    for (line, authorization) in requests {
        assert_eq!(authorization.as_deref(), Some("Bearer peer-master-key"), "{line}");
    }
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_rejected() {
    let peer = MeiliPeer::start(Some(KEY)).await;
    for key in [Some("wrong-key"), None] {
        let index = adapter(&peer, key);
        assert!(matches!(index.configure().await, Err(SearchError::Rejected(_))), "{key:?}");
        assert!(matches!(index.upsert(&fleet()).await, Err(SearchError::Rejected(_))), "{key:?}");
        assert!(matches!(index.search(&SearchQuery::default()).await, Err(SearchError::Rejected(_))), "{key:?}");
    }
    assert!(peer.documents(INDEX).is_empty());
}

#[tokio::test]
async fn a_server_that_is_not_there_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let index = MeiliIndex::new(&url, Some(KEY), INDEX).unwrap();
    assert!(matches!(index.ping().await, Err(SearchError::Unavailable(_))));
    assert!(matches!(index.upsert(&fleet()).await, Err(SearchError::Unavailable(_))));
}

#[tokio::test]
async fn out_of_bounds_queries_are_refused_before_any_request() {
    let (peer, index) = setup().await;
    let before = peer.requests().len();
    let result = index.search(&SearchQuery { limit: 101, ..SearchQuery::default() }).await;
    assert!(matches!(result, Err(SearchError::InvalidQuery(_))));
    assert_eq!(peer.requests().len(), before);
}
