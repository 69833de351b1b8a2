//! Database timeouts: a stuck statement or a lock held elsewhere fails the request with 503
//! within the configured timeout (never a hang, never a 500), and the pool serves on at once.

use std::time::{Duration, Instant};

use lessor_auth::Role;
use lessor_store::Db;
use lessor_store::sqlx::{self, Connection};
use serde_json::json;

use crate::helpers::{Backend, TestApp, assert_problem};
use crate::leases::lease_body;

fn a_lease() -> serde_json::Value {
    lease_body("WDD2220821A123456", "Mercedes-Benz", "S 580", "luxury")
}

async fn create_lease(app: &TestApp, token: &str) -> reqwest::Response {
    app.client.post(app.url("/api/v1/leases")).bearer_auth(token).json(&a_lease()).send().await.unwrap()
}

#[tokio::test]
async fn a_statement_past_the_statement_timeout_fails_with_503_and_the_pool_serves_on() {
    // Arrange: one connection in the pool, statements cut at 300 ms, no lock timeout (so a
    // statement waiting for a lock runs until the statement timeout ends it).
    let app = TestApp::spawn_with(Backend::Postgres, |config| {
        config.database_max_connections = 1;
        config.database_timeouts.statement = Some(Duration::from_millis(300));
        config.database_timeouts.lock = None;
    })
    .await;
    let token = app.token_for(Role::Operator).await;
    let Db::Postgres(pool) = &app.state.db else { unreachable!("PostgreSQL backend") };

    // Act / Assert: a sleeping statement is cancelled by the server, with a clear error.
    let started = Instant::now();
    let err = sqlx::query("SELECT pg_sleep(10)").execute(pool).await.expect_err("cancelled");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    let db_err = err.as_database_error().expect("a server error");
    assert_eq!(db_err.code().as_deref(), Some("57014"), "{db_err}");
    assert!(db_err.message().contains("statement timeout"), "{db_err}");
    // ... and the pool's only connection serves the next statement at once.
    let started = Instant::now();
    app.state.db.ping().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500), "took {:?}", started.elapsed());

    // Act: an API read stuck behind a table lock held by another session.
    let mut other = sqlx::PgConnection::connect(&app.pg.as_ref().unwrap().url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query("LOCK TABLE leases IN ACCESS EXCLUSIVE MODE").execute(&mut *tx).await.unwrap();
    let started = Instant::now();
    let stuck = app.get_authed("/api/v1/leases", &token).await;
    let took = started.elapsed();

    // Assert: 503 problem, within about the statement timeout, not a hang and not a 500.
    assert_problem(stuck, 503, "service-unavailable").await;
    assert!(took < Duration::from_secs(2), "took {took:?}");
    tx.rollback().await.unwrap();
    let started = Instant::now();
    assert_eq!(app.get_authed("/api/v1/leases", &token).await.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_row_lock_held_elsewhere_fails_a_competing_write_within_the_lock_timeout() {
    // Arrange: lock waits cut at 300 ms (statements may run for the default 30 s).
    let app = TestApp::spawn_with(Backend::Postgres, |config| {
        config.database_timeouts.lock = Some(Duration::from_millis(300));
    })
    .await;
    let customer = app.token_for(Role::Customer).await;
    let operator = app.token_for(Role::Operator).await;
    let response = create_lease(&app, &customer).await;
    assert_eq!(response.status(), 201);
    let id = response.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let mut other = sqlx::PgConnection::connect(&app.pg.as_ref().unwrap().url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query("SELECT id FROM leases WHERE id = $1::uuid FOR UPDATE").bind(&id).execute(&mut *tx).await.unwrap();
    let activate = || {
        app.client
            .patch(app.url(&format!("/api/v1/leases/{id}")))
            .bearer_auth(&operator)
            .json(&json!({"status": "active"}))
            .send()
    };

    // Act
    let started = Instant::now();
    let refused = activate().await.unwrap();
    let took = started.elapsed();

    // Assert: the write gave up after the lock timeout with a 503 instead of waiting.
    assert_problem(refused, 503, "service-unavailable").await;
    assert!(took < Duration::from_secs(2), "took {took:?}");
    tx.rollback().await.unwrap();
    assert_eq!(activate().await.unwrap().status(), 200);
}

#[tokio::test]
async fn sqlite_waits_at_most_the_busy_timeout_for_a_locked_database() {
    // Arrange: another connection holds SQLite's write lock.
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.database_timeouts.busy = Duration::from_millis(300);
    })
    .await;
    let customer = app.token_for(Role::Customer).await;
    let file = app.data_dir().join(lessor_store::SQLITE_FILE);
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display())).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.unwrap();

    // Act
    let started = Instant::now();
    let refused = create_lease(&app, &customer).await;
    let took = started.elapsed();

    // Assert: 503 after about the busy timeout (the default would be 5 s), then served again.
    assert_problem(refused, 503, "service-unavailable").await;
    assert!(took < Duration::from_secs(2), "took {took:?}");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    assert_eq!(create_lease(&app, &customer).await.status(), 201);
}
