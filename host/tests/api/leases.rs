use std::time::{Duration, Instant};

use lessor_auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_problem};
use crate::on_each_backend;

on_each_backend!(
    create_get_schedule_and_search_round_trip,
    invalid_input_is_422_naming_every_field,
    customers_see_only_their_own_leases,
    status_follows_the_life_cycle,
    listing_pages_with_cursors,
);

pub fn lease_body(vin: &str, make: &str, model: &str, category: &str) -> Value {
    json!({
        "vehicle": {"vin": vin, "make": make, "model": model, "year": 2025, "category": category},
        "start_date": "2026-12-31",
        "term_months": 36,
        "monthly_amount": 129900,
        "deposit": 500000,
        "currency": "EUR"
    })
}

fn s_class() -> Value {
    lease_body("WDD2220821A123456", "Mercedes-Benz", "S 580", "luxury")
}

async fn create(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.client.post(app.url("/api/v1/leases")).bearer_auth(token).json(body).send().await.unwrap()
}

async fn created(app: &TestApp, token: &str, body: &Value) -> Value {
    let response = create(app, token, body).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json().await.unwrap()
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let response = app.get_authed(path, token).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Ids of the leases a search returns, waiting up to 5 s for the indexer to catch up
/// until `expect` holds.
async fn search_until(app: &TestApp, token: &str, query: &str, expect: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = get_json(app, &format!("/api/v1/leases?{query}"), token).await;
        assert_eq!(status, 200, "{body}");
        let ids: Vec<String> =
            body["items"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_owned()).collect();
        if expect(&ids) || Instant::now() > deadline {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_get_schedule_and_search_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token_for(Role::Customer).await;

    let response = create(&app, &token, &s_class()).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let lease: Value = response.json().await.unwrap();
    let id = lease["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/leases/{id}"));
    assert_eq!(lease["status"], "draft");
    assert_eq!(lease["monthly_amount"], 129900);
    assert_eq!(lease["deposit"], 500000);
    assert_eq!(lease["currency"], "EUR");
    assert_eq!(lease["vehicle"]["make"], "Mercedes-Benz");

    let (status, fetched) = get_json(&app, &location, &token).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, lease);

    let (status, schedule) = get_json(&app, &format!("{location}/schedule"), &token).await;
    assert_eq!(status, 200);
    let installments = schedule["installments"].as_array().unwrap();
    assert_eq!(installments.len(), 36);
    let dues: Vec<&str> = installments.iter().take(5).map(|i| i["due_date"].as_str().unwrap()).collect();
    assert_eq!(dues, ["2026-12-31", "2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]);
    assert!(installments.iter().all(|i| i["amount"] == 129900 && i["currency"] == "EUR" && i["status"] == "due"));
    assert_eq!(installments[35]["number"], 36);
    assert_eq!(installments[35]["due_date"], "2029-11-30");

    // Another lease that must not match the queries below.
    created(&app, &token, &lease_body("1M8GDM9AXKP042788", "Dacia", "Sandero", "economy")).await;

    let typo = search_until(&app, &token, "q=luxary", |ids| ids.contains(&id)).await;
    assert_eq!(typo, vec![id.clone()], "one typo in a 6-letter word finds it, nothing else");
    let prefix = search_until(&app, &token, "q=merc", |ids| ids.contains(&id)).await;
    assert_eq!(prefix, vec![id.clone()], "a prefix of the last word finds it");
    let two_words = search_until(&app, &token, "q=mercedes%20s%20580", |ids| ids.contains(&id)).await;
    assert_eq!(two_words, vec![id.clone()]);
    let none = search_until(&app, &token, "q=ferrari", |_| true).await;
    assert!(none.is_empty());
    let filtered = search_until(&app, &token, "q=merc&status=active", |_| true).await;
    assert!(filtered.is_empty(), "status filter applies to search");

    let (_, list) = get_json(&app, "/api/v1/leases", &token).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["next_cursor"], Value::Null);
}

async fn invalid_input_is_422_naming_every_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token_for(Role::Customer).await;

    let mut bad = lease_body("1M8GDM9AXKP042789", "", "S 580", "spaceship");
    bad["currency"] = json!("EURO");
    bad["term_months"] = json!(0);
    bad["monthly_amount"] = json!(-5);
    bad["start_date"] = json!("2026-02-30");
    let problem = assert_problem(create(&app, &token, &bad).await, 422, "validation").await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for field in
        ["vehicle.vin", "vehicle.make", "vehicle.category", "currency", "term_months", "monthly_amount", "start_date"]
    {
        assert!(fields.contains(&field), "{field} not named in {problem}");
    }

    let mut wrong_type = s_class();
    wrong_type["term_months"] = json!("36");
    let problem = assert_problem(create(&app, &token, &wrong_type).await, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "term_months");

    let mut missing = s_class();
    missing.as_object_mut().unwrap().remove("currency");
    let problem = assert_problem(create(&app, &token, &missing).await, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "currency");

    let mut float_money = s_class();
    float_money["monthly_amount"] = json!(1299.5);
    let problem = assert_problem(create(&app, &token, &float_money).await, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "monthly_amount");

    assert_problem(create(&app, &token, &json!([1, 2])).await, 422, "validation").await;
    assert_problem(app.get_authed("/api/v1/leases/not-a-uuid", &token).await, 422, "validation").await;
    for query in ["status=paused", "limit=0", "limit=500", "cursor=garbage", "owner=bob", "category=boat"] {
        let response = app.get_authed(&format!("/api/v1/leases?{query}"), &token).await;
        assert_problem(response, 422, "validation").await;
    }

    // Nothing was stored by any of these.
    let (_, list) = get_json(&app, "/api/v1/leases", &token).await;
    assert!(list["items"].as_array().unwrap().is_empty());
}

async fn customers_see_only_their_own_leases(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.token_for(Role::Customer).await;
    let bob = app.token_for(Role::Customer).await;
    let operator = app.token_for(Role::Operator).await;
    let alices = created(&app, &alice, &s_class()).await;
    let bobs = created(&app, &bob, &lease_body("WDD2220821A654321", "Mercedes-Benz", "S 500", "luxury")).await;
    let bobs_id = bobs["id"].as_str().unwrap().to_owned();
    let alices_id = alices["id"].as_str().unwrap().to_owned();
    let bob_owner = bobs["owner_id"].as_str().unwrap().to_owned();

    // Read and schedule: 404, exactly as for a lease that does not exist.
    let (status, body) = get_json(&app, &format!("/api/v1/leases/{bobs_id}"), &alice).await;
    assert_eq!(status, 404, "{body}");
    let (missing_status, missing_body) =
        get_json(&app, &format!("/api/v1/leases/{}", uuid::Uuid::new_v4()), &alice).await;
    assert_eq!((status, body), (missing_status, missing_body));
    let (status, _) = get_json(&app, &format!("/api/v1/leases/{bobs_id}/schedule"), &alice).await;
    assert_eq!(status, 404);

    // List: only her own, even when she asks for Bob's.
    let (_, list) = get_json(&app, "/api/v1/leases", &alice).await;
    let ids: Vec<&str> = list["items"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![alices_id.as_str()]);
    let (_, asked) = get_json(&app, &format!("/api/v1/leases?owner={bob_owner}"), &alice).await;
    assert!(asked["items"].as_array().unwrap().is_empty());

    // Search: both leases match "mercedes", the operator sees both, Alice only hers.
    let all = search_until(&app, &operator, "q=mercedes", |ids| ids.len() == 2).await;
    assert_eq!(all.len(), 2);
    let hers = search_until(&app, &alice, "q=mercedes", |_| true).await;
    assert_eq!(hers, vec![alices_id.clone()]);
    let bob_filter = search_until(&app, &alice, &format!("q=mercedes&owner={bob_owner}"), |_| true).await;
    assert!(bob_filter.is_empty());

    // Staff see everything and can filter by owner.
    let (status, _) = get_json(&app, &format!("/api/v1/leases/{bobs_id}"), &operator).await;
    assert_eq!(status, 200);
    let (_, by_owner) = get_json(&app, &format!("/api/v1/leases?owner={bob_owner}"), &operator).await;
    assert_eq!(by_owner["items"][0]["id"], bobs_id);

    // A customer cannot create a lease for someone else; staff can.
    let mut for_bob = s_class();
    for_bob["owner_id"] = json!(bob_owner);
    assert_problem(create(&app, &alice, &for_bob).await, 403, "forbidden").await;
    let made = created(&app, &operator, &for_bob).await;
    assert_eq!(made["owner_id"], bob_owner);
    for_bob["owner_id"] = json!(uuid::Uuid::new_v4());
    let problem = assert_problem(create(&app, &operator, &for_bob).await, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "owner_id");
}

async fn patch(app: &TestApp, id: &str, token: &str, body: Value) -> reqwest::Response {
    app.client.patch(app.url(&format!("/api/v1/leases/{id}"))).bearer_auth(token).json(&body).send().await.unwrap()
}

async fn status_follows_the_life_cycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let customer = app.token_for(Role::Customer).await;
    let other = app.token_for(Role::Customer).await;
    let operator = app.token_for(Role::Operator).await;
    let id = created(&app, &customer, &s_class()).await["id"].as_str().unwrap().to_owned();

    assert_problem(patch(&app, &id, &customer, json!({"status": "active"})).await, 403, "forbidden").await;
    assert_problem(patch(&app, &id, &other, json!({"status": "active"})).await, 404, "not-found").await;
    assert_problem(patch(&app, &id, &operator, json!({"status": "paused"})).await, 422, "validation").await;
    let unknown =
        assert_problem(patch(&app, &id, &operator, json!({"status": "active", "deposit": 1})).await, 422, "validation")
            .await;
    assert_eq!(unknown["errors"][0]["field"], "deposit");

    let active = patch(&app, &id, &operator, json!({"status": "active"})).await;
    assert_eq!(active.status(), 200);
    let active: Value = active.json().await.unwrap();
    assert_eq!(active["status"], "active");
    assert_ne!(active["updated_at"], active["created_at"]);

    assert_problem(patch(&app, &id, &operator, json!({"status": "active"})).await, 409, "conflict").await;
    assert_problem(patch(&app, &id, &operator, json!({"status": "draft"})).await, 409, "conflict").await;
    assert_eq!(patch(&app, &id, &operator, json!({"status": "completed"})).await.status(), 200);
    assert_problem(patch(&app, &id, &operator, json!({"status": "terminated"})).await, 409, "conflict").await;

    // The index follows the change: the lease is found under its new status.
    let found = search_until(&app, &operator, "q=merc&status=completed", |ids| ids.contains(&id)).await;
    assert_eq!(found, vec![id]);
}

async fn listing_pages_with_cursors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token_for(Role::Customer).await;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(created(&app, &token, &s_class()).await["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/leases?limit=2".to_owned();
    loop {
        let (status, page) = get_json(&app, &path, &token).await;
        assert_eq!(status, 200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|l| l["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/leases?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    made.reverse(); // newest first
    assert_eq!(seen, made);

    // Search pages too, once all five are indexed (the indexer may apply them in more than one pass).
    assert_eq!(search_until(&app, &token, "q=mercedes&limit=10", |ids| ids.len() == 5).await.len(), 5);
    let first = search_until(&app, &token, "q=mercedes&limit=3", |ids| ids.len() == 3).await;
    assert_eq!(first.len(), 3);
    let (_, page) = get_json(&app, "/api/v1/leases?q=mercedes&limit=3", &token).await;
    let cursor = page["next_cursor"].as_str().expect("a second search page").to_owned();
    let (_, rest) = get_json(&app, &format!("/api/v1/leases?q=mercedes&limit=3&cursor={cursor}"), &token).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert_eq!(rest["next_cursor"], Value::Null);
}

#[tokio::test]
async fn search_latency_and_indexing_lag_are_on_metrics() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token_for(Role::Customer).await;
    let id = created(&app, &token, &s_class()).await["id"].as_str().unwrap().to_owned();
    assert_eq!(search_until(&app, &token, "q=luxury", |ids| ids.contains(&id)).await, vec![id]);
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"lessor_search_duration_seconds_count{engine="tantivy"}"#), "{text}");
    assert!(text.contains("lessor_search_index_lag_seconds 0.0"), "nothing waits once the lease is found: {text}");
    assert!(text.contains("lessor_search_indexed_total 1"), "{text}");
}
