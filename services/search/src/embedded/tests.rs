//! Behaviour of the embedded engine, on an in-memory index unless disk is the point.

use uuid::Uuid;

use super::*;

const ALICE: Uuid = Uuid::from_u128(0xA);
const BOB: Uuid = Uuid::from_u128(0xB);

fn lease(n: u128, make: &str, model: &str, category: &str, owner: Uuid, created_at: i64) -> LeaseDocument {
    LeaseDocument {
        id: Uuid::from_u128(n),
        owner_id: owner,
        status: "active".into(),
        category: category.into(),
        make: make.into(),
        model: model.into(),
        vin: format!("WDB{n:014}"),
        year: 2023,
        start_date: "2025-01-01".into(),
        monthly_amount: 49_900,
        currency: "EUR".into(),
        created_at,
    }
}

/// A small fleet: ids 1..=6, created in id order.
fn fleet() -> Vec<LeaseDocument> {
    vec![
        lease(1, "Bentley", "Continental GT", "luxury", ALICE, 1_000),
        lease(2, "Mercedes-Benz", "E-Class", "midsize", ALICE, 2_000),
        lease(3, "Audi", "A4", "compact", BOB, 3_000),
        lease(4, "Toyota", "Corolla", "economy", BOB, 4_000),
        lease(5, "BMW", "X5", "suv", ALICE, 5_000),
        lease(6, "BMW", "X3", "suv", BOB, 6_000),
    ]
}

async fn index_with(docs: &[LeaseDocument]) -> TantivyIndex {
    let index = TantivyIndex::in_memory().unwrap();
    index.upsert(docs).await.unwrap();
    index
}

async fn ids(index: &TantivyIndex, query: SearchQuery) -> Vec<u128> {
    index.search(&query).await.unwrap().ids.into_iter().map(|id| id.as_u128()).collect()
}

async fn text(index: &TantivyIndex, text: &str) -> Vec<u128> {
    ids(index, SearchQuery::text(text)).await
}

#[tokio::test]
async fn one_typo_in_a_long_word_matches() {
    let index = index_with(&fleet()).await;
    assert_eq!(text(&index, "luxary").await, [1], "substitution");
    assert_eq!(text(&index, "luxry").await, [1], "deletion");
    assert_eq!(text(&index, "toyoat").await, [4], "transposition");
    assert_eq!(text(&index, "coroolla").await, [4], "insertion");
}

#[tokio::test]
async fn short_words_allow_no_typo() {
    let index = index_with(&fleet()).await;
    assert_eq!(text(&index, "audi").await, [3]);
    assert_eq!(text(&index, "audj").await, Vec::<u128>::new());
    assert_eq!(text(&index, "audj a4").await, Vec::<u128>::new());
}

#[tokio::test]
async fn two_typos_need_nine_letters() {
    let index = index_with(&[lease(1, "Lamborghini", "Urus", "luxury", ALICE, 1)]).await;
    assert_eq!(text(&index, "lamborgini urus").await, [1], "one typo");
    assert_eq!(text(&index, "lanborgini urus").await, [1], "two typos in 10 letters");
    assert_eq!(text(&index, "luxurx urus").await, [1], "one typo in 6 letters");
    assert_eq!(text(&index, "lyxurx urus").await, Vec::<u128>::new(), "two typos in 6 letters");
}

#[tokio::test]
async fn the_last_word_matches_as_a_prefix() {
    let index = index_with(&fleet()).await;
    assert_eq!(text(&index, "merc").await, [2]);
    assert_eq!(text(&index, "Merc").await, [2]);
    assert_eq!(text(&index, "contin").await, [1]);
    assert_eq!(text(&index, "bentley contin").await, [1]);
    // Only the last word: an earlier word must be whole.
    assert_eq!(text(&index, "merc e").await, Vec::<u128>::new());
    // A prefix with a typo, from 5 letters.
    assert_eq!(text(&index, "contun").await, [1]);
}

#[tokio::test]
async fn hyphenated_and_accented_names_are_split_and_folded() {
    let mut docs = fleet();
    docs.push(lease(7, "Škoda", "Octavia", "compact", ALICE, 7_000));
    let index = index_with(&docs).await;
    assert_eq!(text(&index, "mercedes").await, [2]);
    assert_eq!(text(&index, "benz").await, [2]);
    assert_eq!(text(&index, "Mercedes-Benz").await, [2]);
    assert_eq!(text(&index, "skoda").await, [7]);
    assert_eq!(text(&index, "ŠKODA").await, [7]);
}

#[tokio::test]
async fn every_word_must_match() {
    let index = index_with(&fleet()).await;
    assert_eq!(text(&index, "bmw").await, [6, 5]);
    assert_eq!(text(&index, "bmw x5").await, [5]);
    assert_eq!(text(&index, "bmw suv").await, [6, 5]);
    assert_eq!(text(&index, "bmw corolla").await, Vec::<u128>::new());
}

#[tokio::test]
async fn vin_and_year_are_searchable() {
    let index = index_with(&fleet()).await;
    assert_eq!(text(&index, "WDB00000000000003").await, [3]);
    assert_eq!(text(&index, "wdb0000000000000").await, [6, 5, 4, 3, 2, 1], "a VIN prefix");
    assert_eq!(text(&index, "WDB00000000000009").await, Vec::<u128>::new(), "no typo in a VIN");
    assert_eq!(text(&index, "audi wdb").await, [3], "a VIN prefix of 3");
    assert_eq!(text(&index, "audi wd").await, Vec::<u128>::new(), "too short a VIN prefix");
    assert_eq!(text(&index, "audi 2023").await, [3]);
    assert_eq!(text(&index, "audi 2022").await, Vec::<u128>::new());
}

#[tokio::test]
async fn better_matches_rank_first_then_newer() {
    let index = index_with(&[
        lease(1, "Toyota", "Camry", "midsize", ALICE, 1_000),
        lease(2, "Toyota", "Camry", "midsize", ALICE, 2_000),
        // Newest, but only a typo away from `camry`.
        lease(3, "Toyota", "Camra", "midsize", ALICE, 3_000),
        // A longer word that `camry` is a prefix of.
        lease(4, "Toyota", "Camryx", "midsize", ALICE, 4_000),
    ])
    .await;
    assert_eq!(text(&index, "camry").await, [2, 1, 4, 3]);
}

#[tokio::test]
async fn filters_narrow_the_results() {
    let mut docs = fleet();
    docs[0].status = "completed".into();
    let index = index_with(&docs).await;
    let owned_by = |owner| SearchQuery { owner_id: Some(owner), ..SearchQuery::default() };
    assert_eq!(ids(&index, owned_by(ALICE)).await, [5, 2, 1]);
    assert_eq!(ids(&index, owned_by(BOB)).await, [6, 4, 3]);
    let status = SearchQuery { status: Some("completed".into()), ..SearchQuery::default() };
    assert_eq!(ids(&index, status).await, [1]);
    let category = SearchQuery { category: Some("SUV".into()), ..SearchQuery::default() };
    assert_eq!(ids(&index, category).await, [6, 5], "filters ignore case");
    let all = SearchQuery {
        text: "bmw".into(),
        owner_id: Some(BOB),
        status: Some("active".into()),
        category: Some("suv".into()),
        ..SearchQuery::default()
    };
    assert_eq!(ids(&index, all).await, [6]);
}

#[tokio::test]
async fn an_owner_never_sees_another_owners_leases() {
    let index = index_with(&fleet()).await;
    for words in ["bmw", "x3", "audi", "toyota corolla", "suv", "2023", ""] {
        let query = SearchQuery { text: words.into(), owner_id: Some(ALICE), limit: 100, ..SearchQuery::default() };
        let page = index.search(&query).await.unwrap();
        for id in &page.ids {
            assert!([1, 2, 5].contains(&id.as_u128()), "`{words}` showed Alice lease {id}");
        }
    }
}

#[tokio::test]
async fn empty_text_lists_newest_first_with_a_total() {
    let index = index_with(&fleet()).await;
    let page = index.search(&SearchQuery { limit: 4, ..SearchQuery::default() }).await.unwrap();
    assert_eq!(page.ids.iter().map(|id| id.as_u128()).collect::<Vec<_>>(), [6, 5, 4, 3]);
    assert_eq!(page.estimated_total, 6);
    assert_eq!(ids(&index, SearchQuery { limit: 4, offset: 4, ..SearchQuery::default() }).await, [2, 1]);
    assert_eq!(text(&index, " -- ").await, [6, 5, 4, 3, 2, 1], "no words is no text");
}

#[tokio::test]
async fn upsert_replaces_a_lease_with_the_same_id() {
    let index = index_with(&fleet()).await;
    let mut changed = fleet()[2].clone();
    changed.make = "Volkswagen".into();
    changed.model = "Golf".into();
    index.upsert(&[changed.clone()]).await.unwrap();
    index.upsert(&[changed]).await.unwrap();
    assert_eq!(text(&index, "audi").await, Vec::<u128>::new());
    let page = index.search(&SearchQuery::text("golf")).await.unwrap();
    assert_eq!(page.ids, [Uuid::from_u128(3)]);
    assert_eq!(page.estimated_total, 1);
    assert_eq!(index.search(&SearchQuery::default()).await.unwrap().estimated_total, 6);
}

#[tokio::test]
async fn the_last_of_one_id_in_a_batch_wins() {
    let first = lease(1, "Audi", "A4", "compact", ALICE, 1);
    let second = LeaseDocument { model: "A6".into(), ..first.clone() };
    let index = index_with(&[first, second]).await;
    assert_eq!(text(&index, "a4").await, Vec::<u128>::new());
    assert_eq!(text(&index, "a6").await, [1]);
    assert_eq!(index.search(&SearchQuery::default()).await.unwrap().estimated_total, 1);
}

#[tokio::test]
async fn delete_and_clear_remove_leases() {
    let index = index_with(&fleet()).await;
    index.delete(&[Uuid::from_u128(5), Uuid::from_u128(99)]).await.unwrap();
    assert_eq!(text(&index, "bmw").await, [6]);
    index.clear().await.unwrap();
    assert_eq!(index.search(&SearchQuery::default()).await.unwrap(), SearchPage::default());
    index.upsert(&fleet()).await.unwrap();
    assert_eq!(text(&index, "bmw").await, [6, 5], "usable after clear");
}

#[tokio::test]
async fn out_of_bounds_queries_are_refused() {
    let index = index_with(&fleet()).await;
    let result = index.search(&SearchQuery { limit: 0, ..SearchQuery::default() }).await;
    assert!(matches!(result, Err(SearchError::InvalidQuery(_))));
}

#[tokio::test]
async fn empty_writes_and_ping_succeed() {
    let index = TantivyIndex::in_memory().unwrap();
    index.upsert(&[]).await.unwrap();
    index.delete(&[]).await.unwrap();
    index.ping().await.unwrap();
    assert_eq!(index.engine(), "tantivy");
}

#[tokio::test]
async fn reopening_from_disk_keeps_the_leases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search");
    let index = TantivyIndex::open(&path).unwrap();
    assert!(index.recreated(), "a new folder needs a full index");
    index.upsert(&fleet()).await.unwrap();
    drop(index);

    let index = TantivyIndex::open(&path).unwrap();
    assert!(!index.recreated());
    assert_eq!(text(&index, "bmw").await, [6, 5]);
    assert_eq!(text(&index, "luxary").await, [1]);
}

#[tokio::test]
async fn an_index_with_another_schema_is_rebuilt_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = tantivy::schema::Schema::builder();
    builder.add_text_field("title", tantivy::schema::TEXT);
    let other = tantivy::Index::create_in_dir(dir.path(), builder.build()).unwrap();
    drop(other);

    let index = TantivyIndex::open(dir.path()).unwrap();
    assert!(index.recreated());
    assert_eq!(index.search(&SearchQuery::default()).await.unwrap().estimated_total, 0);
    index.upsert(&fleet()).await.unwrap();
    assert_eq!(text(&index, "audi").await, [3]);
}

#[tokio::test]
async fn searches_run_alongside_writes() {
    let index = index_with(&fleet()).await;
    let writer = {
        let index = index.clone();
        tokio::spawn(async move {
            for n in 100..120 {
                index.upsert(&[lease(n, "Kia", "Niro", "electric", BOB, n as i64)]).await.unwrap();
            }
        })
    };
    for _ in 0..20 {
        assert_eq!(text(&index, "bentley").await, [1]);
    }
    writer.await.unwrap();
    assert_eq!(index.search(&SearchQuery::text("niro")).await.unwrap().estimated_total, 20);
}
