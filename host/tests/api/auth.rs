use std::time::Duration;

use lessor_auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_problem, claims_of};
use crate::on_each_backend;

on_each_backend!(
    login_me_logout_revokes_at_once,
    wrong_password_and_unknown_user_are_the_same_401,
    expired_token_is_401,
    tampered_and_foreign_tokens_are_401,
    missing_or_malformed_authorization_is_401,
    roles_are_enforced,
    repeated_failures_for_one_account_from_one_address_are_throttled,
    repeated_failures_from_one_address_are_throttled,
);

async fn login_me_logout_revokes_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.create_user(Role::Customer).await;

    let response = app.login(&email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap().to_owned();
    let claims = claims_of(&token);
    assert!(claims["jti"].is_string());
    assert_eq!(claims["role"], "customer");

    let me: Value = app.get_authed("/api/v1/me", &token).await.json().await.unwrap();
    assert_eq!(me["email"], email);
    assert_eq!(me["role"], "customer");

    let logout = app.client.post(app.url("/auth/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(logout.status(), 204);
    assert_problem(app.get_authed("/api/v1/me", &token).await, 401, "token-revoked").await;
    let again = app.client.post(app.url("/auth/logout")).bearer_auth(&token).send().await.unwrap();
    assert_problem(again, 401, "token-revoked").await;

    // A second login gives an independent session.
    let second: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    let second = second["access_token"].as_str().unwrap();
    assert_eq!(app.get_authed("/api/v1/me", second).await.status(), 200);
}

async fn wrong_password_and_unknown_user_are_the_same_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.create_user(Role::Customer).await;
    let wrong = assert_problem(app.login(&email, "not the password").await, 401, "invalid-credentials").await;
    let unknown = assert_problem(app.login("nobody@example.com", PASSWORD).await, 401, "invalid-credentials").await;
    assert_eq!(wrong, unknown, "the two failures must be indistinguishable");
    let malformed = app.login("not-an-email", PASSWORD).await;
    assert_problem(malformed, 401, "invalid-credentials").await;
}

async fn expired_token_is_401(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.token_ttl_secs = 1).await;
    let token = app.token_for(Role::Customer).await;
    assert_eq!(app.get_authed("/api/v1/me", &token).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_problem(app.get_authed("/api/v1/me", &token).await, 401, "token-expired").await;
}

async fn tampered_and_foreign_tokens_are_401(backend: Backend) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = TestApp::spawn(backend).await;
    let token = app.token_for(Role::Customer).await;
    let parts: Vec<&str> = token.split('.').collect();

    // Raise our own role in the payload, keep the signature.
    let mut claims = claims_of(&token);
    claims["role"] = json!("admin");
    let forged = format!("{}.{}.{}", parts[0], b64.encode(claims.to_string()), parts[2]);
    assert_problem(app.get_authed("/api/v1/me", &forged).await, 401, "token-invalid").await;

    // One flipped character in the signature.
    let mut sig = parts[2].to_owned().into_bytes();
    sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{}.{}.{}", parts[0], parts[1], String::from_utf8(sig).unwrap());
    assert_problem(app.get_authed("/api/v1/me", &flipped).await, 401, "token-invalid").await;

    // alg: none, with and without a signature.
    let none_header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    for none in [format!("{none_header}.{}.", parts[1]), format!("{none_header}.{}.{}", parts[1], parts[2])] {
        assert_problem(app.get_authed("/api/v1/me", &none).await, 401, "token-invalid").await;
    }

    // Signed by a server with another key (a valid token, just not ours).
    let other_key = jsonwebtoken::EncodingKey::from_secret(b"a different server's key, 32+ bytes long");
    let foreign = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims_of(&token), &other_key).unwrap();
    assert_problem(app.get_authed("/api/v1/me", &foreign).await, 401, "token-invalid").await;

    // The genuine token still works.
    assert_eq!(app.get_authed("/api/v1/me", &token).await.status(), 200);
}

async fn missing_or_malformed_authorization_is_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let none = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_problem(none, 401, "unauthenticated").await;
    let basic = app.client.get(app.url("/api/v1/me")).basic_auth("a", Some("b")).send().await.unwrap();
    assert_problem(basic, 401, "unauthenticated").await;
    assert_problem(app.get_authed("/api/v1/me", "garbage").await, 401, "token-invalid").await;
    let huge = "x".repeat(6000);
    assert_problem(app.get_authed("/api/v1/me", &huge).await, 401, "token-invalid").await;
}

async fn roles_are_enforced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let new_user = json!({"email": "new@example.com", "password": PASSWORD, "role": "operator"});
    for role in [Role::Customer, Role::Operator] {
        let token = app.token_for(role).await;
        let response =
            app.client.post(app.url("/api/v1/users")).bearer_auth(&token).json(&new_user).send().await.unwrap();
        assert_problem(response, 403, "forbidden").await;
    }
    let customer = app.token_for(Role::Customer).await;
    let admin = app.token_for(Role::Admin).await;

    let created = app.client.post(app.url("/api/v1/users")).bearer_auth(&admin).json(&new_user).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["role"], "operator");
    assert_eq!(location, format!("/api/v1/users/{}", body["id"].as_str().unwrap()));

    // Operators may read users; customers may not.
    let operator = app.token_for(Role::Operator).await;
    assert_eq!(app.get_authed(&location, &operator).await.status(), 200);
    assert_problem(app.get_authed(&location, &customer).await, 403, "forbidden").await;

    let duplicate = app.client.post(app.url("/api/v1/users")).bearer_auth(&admin).json(&new_user).send().await.unwrap();
    assert_problem(duplicate, 409, "conflict").await;
    let bad = json!({"email": "nope", "password": "short", "role": "operator"});
    let response = app.client.post(app.url("/api/v1/users")).bearer_auth(&admin).json(&bad).send().await.unwrap();
    let problem = assert_problem(response, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "email");
    let bad_role = json!({"email": "x@example.com", "password": PASSWORD, "role": "root"});
    let response = app.client.post(app.url("/api/v1/users")).bearer_auth(&admin).json(&bad_role).send().await.unwrap();
    let problem = assert_problem(response, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "role");
}

async fn repeated_failures_for_one_account_from_one_address_are_throttled(backend: Backend) {
    // (From other addresses the account stays open: see attacks_auth.rs.)
    let app = TestApp::spawn_with(backend, |c| c.login_max_failures_per_account_address = 3).await;
    let email = app.create_user(Role::Customer).await;
    let other = app.create_user(Role::Customer).await;
    for _ in 0..3 {
        assert_problem(app.login(&email, "wrong password").await, 401, "invalid-credentials").await;
    }
    // Locked for this address: even the right password is refused without being checked.
    let locked = app.login(&email, PASSWORD).await;
    let retry_after: u64 = locked.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 900, "Retry-After {retry_after}");
    assert_problem(locked, 429, "too-many-requests").await;
    // Another account from the same address is not affected.
    assert_eq!(app.login(&other, PASSWORD).await.status(), 200);
}

async fn repeated_failures_from_one_address_are_throttled(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.login_max_failures_per_address = 4).await;
    let victim = app.create_user(Role::Customer).await;
    for i in 0..4 {
        let response = app.login(&format!("guess{i}@example.com"), "wrong password").await;
        assert_problem(response, 401, "invalid-credentials").await;
    }
    assert_problem(app.login(&victim, PASSWORD).await, 429, "too-many-requests").await;
}

#[tokio::test]
async fn sessions_live_in_redis_and_logout_deletes_the_key() {
    let app = TestApp::spawn(Backend::PostgresRedis).await;
    let token = app.token_for(Role::Customer).await;
    let jti = claims_of(&token)["jti"].as_str().unwrap().to_owned();
    let redis = app.state.redis.clone().unwrap();
    let key = redis.key(&format!("session:{jti}"));
    let mut conn = redis.conn().await.unwrap();
    let ttl: i64 = lessor_store::redis::cmd("TTL").arg(&key).query_async(&mut conn).await.unwrap();
    assert!((3500..=3600).contains(&ttl), "session TTL {ttl}");

    app.client.post(app.url("/auth/logout")).bearer_auth(&token).send().await.unwrap();
    let exists: bool = lessor_store::redis::cmd("EXISTS").arg(&key).query_async(&mut conn).await.unwrap();
    assert!(!exists, "logout must delete the session key");
    assert_problem(app.get_authed("/api/v1/me", &token).await, 401, "token-revoked").await;
}

#[tokio::test]
async fn embedded_sessions_live_in_sql_and_logout_deletes_the_row() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token_for(Role::Customer).await;
    let jti: uuid::Uuid = claims_of(&token)["jti"].as_str().unwrap().parse().unwrap();
    let lessor_store::Db::Sqlite(pool) = &app.state.db else { panic!("embedded mode uses SQLite") };
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sessions WHERE jti = $1")
            .bind(jti)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(count().await, 1);
    app.client.post(app.url("/auth/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(count().await, 0);
    assert_problem(app.get_authed("/api/v1/me", &token).await, 401, "token-revoked").await;
}

#[tokio::test]
async fn a_deleted_users_token_stops_working() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let token = app.token_for(Role::Customer).await;
    let lessor_store::Db::Postgres(pool) = &app.state.db else { panic!() };
    let sub: uuid::Uuid = claims_of(&token)["sub"].as_str().unwrap().parse().unwrap();
    sqlx::query("DELETE FROM users WHERE id = $1").bind(sub).execute(pool).await.unwrap();
    // The session row went with the user (ON DELETE CASCADE).
    assert_problem(app.get_authed("/api/v1/me", &token).await, 401, "token-revoked").await;
}
