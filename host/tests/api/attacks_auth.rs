//! Attacks on login and tokens, run against the real host (issue 11, items 1, 2 and 10).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{EncodingKey, Header};
use lessor_auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_problem, claims_of};
use crate::on_each_backend;

on_each_backend!(
    concurrent_wrong_passwords_are_verified_at_most_the_limit,
    a_burst_beyond_the_hashing_slots_is_refused_with_retry_after,
    the_admin_logs_in_from_a_clean_address_during_an_attack_on_their_account,
    forwarded_for_from_an_untrusted_peer_is_ignored,
    ipv6_addresses_in_one_64_share_a_limit,
    a_token_re_signed_with_another_role_or_subject_is_refused,
    rotating_the_signing_key_logs_nobody_out,
);

const JWT_SECRET: &str = "the test signing secret, 32 bytes or more";

/// A login as a trusted proxy forwarding for `client`.
async fn login_from(app: &TestApp, client: &str, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", client)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// `lessor_auth_password_verifications_total` from `/metrics`.
async fn verifications(app: &TestApp) -> u64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line =
        text.lines().find(|l| l.starts_with("lessor_auth_password_verifications_total")).expect("metric exposed");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Status counts; asserts every refusal is a problem document with `Retry-After`.
async fn tally(responses: Vec<reqwest::Response>) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for response in responses {
        let status = response.status().as_u16();
        assert!(matches!(status, 401 | 429 | 503), "unexpected status {status}");
        if status != 401 {
            let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry_after >= 1, "Retry-After {retry_after}");
            let slug = if status == 429 { "too-many-requests" } else { "login-busy" };
            assert_problem(response, status, slug).await;
        }
        *counts.entry(status).or_default() += 1;
    }
    counts
}

async fn concurrent_wrong_passwords_are_verified_at_most_the_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.create_user(Role::Admin).await;
    let before = verifications(&app).await;

    let attempts = (0..64).map(|i| {
        let (app, email) = (&app, &email);
        async move { app.login(email, &format!("wrong password {i}")).await }
    });
    let counts = tally(futures_join_all(attempts).await).await;

    let run = verifications(&app).await - before;
    // The default limit is 5 failures per (account, address); slots are reserved before the
    // password is checked, so no more can be verified however many arrive at once.
    assert!(run <= 5, "{run} verifications for 64 concurrent wrong passwords ({counts:?})");
    assert_eq!(counts.get(&401).copied().unwrap_or(0) as u64, run, "{counts:?}");
    assert!(counts.get(&429).copied().unwrap_or(0) >= 59, "{counts:?}");

    // The same from one address over many accounts: the per-address limit holds too.
    let app = TestApp::spawn_with(backend, |c| c.login_max_failures_per_address = 10).await;
    let before = verifications(&app).await;
    let attempts = (0..64).map(|i| {
        let app = &app;
        async move { app.login(&format!("guess{i}@example.com"), "wrong password").await }
    });
    let counts = tally(futures_join_all(attempts).await).await;
    let run = verifications(&app).await - before;
    assert!(run <= 10, "{run} verifications from one address ({counts:?})");
}

async fn a_burst_beyond_the_hashing_slots_is_refused_with_retry_after(backend: Backend) {
    // One hashing slot and a short wait: a burst from many addresses (no limit applies to any
    // of them) is served one hash at a time, and what cannot wait is told when to come back.
    let app = TestApp::spawn_with(backend, |c| {
        c.trusted_proxies = host::http::client::TrustedProxies::parse("127.0.0.1").unwrap();
        c.login_hash_concurrency = 1;
        c.login_queue_wait = Duration::from_millis(30);
    })
    .await;
    let before = verifications(&app).await;
    let attempts = (0..48).map(|i| {
        let app = &app;
        async move { login_from(app, &format!("10.1.0.{i}"), &format!("u{i}@example.com"), "wrong password").await }
    });
    let counts = tally(futures_join_all(attempts).await).await;
    assert!(counts.get(&503).copied().unwrap_or(0) > 0, "no burst was refused: {counts:?}");
    let run = verifications(&app).await - before;
    assert_eq!(run, counts.get(&401).copied().unwrap_or(0) as u64, "{counts:?}");
    // Refused attempts did not count as failures: the same addresses may try again.
    assert_eq!(login_from(&app, "10.1.0.0", "u0@example.com", "wrong password").await.status(), 401);
}

async fn the_admin_logs_in_from_a_clean_address_during_an_attack_on_their_account(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.trusted_proxies = host::http::client::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    let admin = app.create_user(Role::Admin).await;

    // 48 addresses, 3-4 wrong passwords each, 16 at a time, for as long as the admin needs.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let attackers: Vec<_> = (0..16)
        .map(|worker| {
            let (client, base, admin, stop) = (app.client.clone(), app.url("/auth/login"), admin.clone(), stop.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for round in 0..10 {
                    if *stop.borrow() {
                        break;
                    }
                    let address = format!("10.2.{}.{}", worker, round % 3);
                    let body = json!({"email": admin, "password": format!("guess {worker} {round}")});
                    let r = client.post(&base).header("x-forwarded-for", address).json(&body).send().await.unwrap();
                    statuses.push(r.status().as_u16());
                }
                statuses
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The admin, from an address with no failures: slowed down at most, never refused.
    let started = Instant::now();
    let mut answer = login_from(&app, "203.0.113.50", &admin, PASSWORD).await;
    for _ in 0..3 {
        if answer.status() != 503 {
            break;
        }
        // Busy is not a lockout: the admin comes back when told to.
        tokio::time::sleep(Duration::from_secs(1)).await;
        answer = login_from(&app, "203.0.113.50", &admin, PASSWORD).await;
    }
    let took = started.elapsed();
    assert_eq!(answer.status(), 200, "the admin is locked out: {}", answer.text().await.unwrap());
    assert!(took < Duration::from_secs(10), "the admin waited {took:?}");
    stop_tx.send(true).unwrap();
    let mut seen = BTreeMap::<u16, usize>::new();
    for attacker in attackers {
        for status in attacker.await.unwrap() {
            *seen.entry(status).or_default() += 1;
        }
    }
    assert!(seen.keys().all(|s| matches!(s, 401 | 429 | 503)), "attack answers {seen:?}");

    // Five failures for the account from one address lock that address out of it only.
    for _ in 0..5 {
        login_from(&app, "198.51.100.7", &admin, "wrong password").await;
    }
    assert_problem(login_from(&app, "198.51.100.7", &admin, PASSWORD).await, 429, "too-many-requests").await;
    assert_eq!(login_from(&app, "198.51.100.8", &admin, PASSWORD).await.status(), 200);
}

async fn forwarded_for_from_an_untrusted_peer_is_ignored(backend: Backend) {
    // No trusted proxies (the default): the header is the client's own claim.
    let app = TestApp::spawn_with(backend, |c| c.login_max_failures_per_address = 4).await;
    let victim = app.create_user(Role::Customer).await;
    for i in 0..4 {
        let r = login_from(&app, &format!("192.0.2.{i}"), &format!("guess{i}@example.com"), "wrong password").await;
        assert_problem(r, 401, "invalid-credentials").await;
    }
    // A fresh spoofed address does not escape the limit of the real one.
    assert_problem(login_from(&app, "192.0.2.200", &victim, PASSWORD).await, 429, "too-many-requests").await;
}

async fn ipv6_addresses_in_one_64_share_a_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.trusted_proxies = host::http::client::TrustedProxies::parse("127.0.0.1").unwrap();
        c.login_max_failures_per_address = 3;
    })
    .await;
    let victim = app.create_user(Role::Customer).await;
    for (i, address) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:aaaa:bbbb:cccc:dddd"].iter().enumerate() {
        assert_eq!(login_from(&app, address, &format!("g{i}@example.com"), "wrong password").await.status(), 401);
    }
    let same_64 = login_from(&app, "2001:db8:1:2:ffff::9", &victim, PASSWORD).await;
    assert_problem(same_64, 429, "too-many-requests").await;
    assert_eq!(login_from(&app, "2001:db8:1:3::1", &victim, PASSWORD).await.status(), 200, "another /64");

    // An IPv4-mapped IPv6 address is its IPv4 address.
    for i in 0..3 {
        login_from(&app, "::ffff:198.51.100.20", &format!("m{i}@example.com"), "wrong password").await;
    }
    assert_problem(login_from(&app, "198.51.100.20", &victim, PASSWORD).await, 429, "too-many-requests").await;
}

fn sign(header: &Header, claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

async fn a_token_re_signed_with_another_role_or_subject_is_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.jwt_secret = Some(JWT_SECRET.to_owned().into())).await;
    let token = app.token_for(Role::Customer).await;
    let admin_token = app.token_for(Role::Admin).await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    let claims = claims_of(&token);

    // Re-signed unchanged with the server's key: accepted (the forging works).
    assert_eq!(app.get_authed("/api/v1/me", &sign(&header, &claims, JWT_SECRET.as_bytes())).await.status(), 200);

    // Same jti, raised role: the session says customer.
    let mut raised = claims.clone();
    raised["role"] = json!("admin");
    let forged = sign(&header, &raised, JWT_SECRET.as_bytes());
    assert_problem(app.get_authed("/api/v1/me", &forged).await, 401, "token-invalid").await;
    let users = app.client.post(app.url("/api/v1/users")).bearer_auth(&forged);
    let body = json!({"email": "x@example.com", "password": PASSWORD, "role": "admin"});
    assert_problem(users.json(&body).send().await.unwrap(), 401, "token-invalid").await;

    // Same jti, another user's id (the admin's, with the admin's role).
    let mut other = claims.clone();
    other["sub"] = claims_of(&admin_token)["sub"].clone();
    other["role"] = json!("admin");
    assert_problem(
        app.get_authed("/api/v1/me", &sign(&header, &other, JWT_SECRET.as_bytes())).await,
        401,
        "token-invalid",
    )
    .await;
}

/// The `kid` in a token's header.
fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.expect("tokens name their key")
}

async fn signing_key(app: &TestApp, kid: &str) -> Vec<u8> {
    let sql = "SELECT secret FROM signing_keys WHERE kid = $1";
    lessor_store::on_db!(&app.state.db, pool => sqlx::query_scalar(sql).bind(kid).fetch_one(pool).await).unwrap()
}

/// Runs `host auth rotate-key` on the app's database; returns the new kid.
async fn rotate_key(app: &TestApp) -> String {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_host"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("LESSOR_DATA_DIR", app.data_dir());
    if let Some(pg) = &app.pg {
        cmd.env("LESSOR_DATABASE_URL", &pg.url);
    }
    let out = cmd.args(["auth", "rotate-key"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "rotate-key failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    stdout.split_whitespace().nth(3).unwrap().trim_end_matches(';').to_owned()
}

async fn rotating_the_signing_key_logs_nobody_out(backend: Backend) {
    let ttl = 5;
    let app = TestApp::spawn_with(backend, |c| c.token_ttl_secs = ttl).await;
    let before = app.token_for(Role::Customer).await;
    let old_kid = kid(&before);
    let old_key = signing_key(&app, &old_kid).await;

    let new_kid = rotate_key(&app).await;
    assert_ne!(new_kid, old_kid);
    // The running host signs with the new key within a second, without a restart ...
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = app.token_for(Role::Customer).await;
    assert_eq!(kid(&after), new_kid);
    // ... and the token issued before the rotation still works.
    assert_eq!(app.get_authed("/api/v1/me", &before).await.status(), 200);
    assert_eq!(app.get_authed("/api/v1/me", &after).await.status(), 200);

    // A token naming a key that does not exist is refused (even signed with a real key).
    let claims = claims_of(&after);
    let mut unknown = Header::new(jsonwebtoken::Algorithm::HS256);
    unknown.kid = Some("0123456789abcdef".into());
    assert_problem(app.get_authed("/api/v1/me", &sign(&unknown, &claims, &old_key)).await, 401, "token-invalid").await;

    // Within one token lifetime the previous key still verifies ...
    let mut old_header = Header::new(jsonwebtoken::Algorithm::HS256);
    old_header.kid = Some(old_kid);
    assert_eq!(app.get_authed("/api/v1/me", &sign(&old_header, &claims, &old_key)).await.status(), 200);

    // ... and after it, no longer: a fresh session's claims signed with the old key fail.
    tokio::time::sleep(Duration::from_secs(ttl + 1)).await;
    let fresh = app.token_for(Role::Customer).await;
    let fresh_claims = claims_of(&fresh);
    assert_eq!(app.get_authed("/api/v1/me", &fresh).await.status(), 200);
    let late = sign(&old_header, &fresh_claims, &old_key);
    assert_problem(app.get_authed("/api/v1/me", &late).await, 401, "token-invalid").await;
}

/// Awaits every future concurrently (on this task) and returns their outputs in order.
async fn futures_join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

/// A second replica on `app`'s PostgreSQL database (sessions in SQL), with its own settings.
async fn replica_of(app: &TestApp, tweak: impl FnOnce(&mut host::Config)) -> TestApp {
    let url = app.pg.as_ref().expect("a PostgreSQL app").url.clone();
    TestApp::spawn_with(Backend::Postgres, move |c| {
        c.database = lessor_store::DatabaseTarget::from_config(Some(&url), &c.data_dir).unwrap();
        tweak(c);
    })
    .await
}

#[tokio::test]
async fn a_rotation_reaches_another_replica_without_restart() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = replica_of(&a, |_| {}).await;
    let from_a = a.token_for(Role::Customer).await;
    assert_eq!(b.get_authed("/api/v1/me", &from_a).await.status(), 200, "replicas share the key");

    let new_kid = rotate_key(&a).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // B signs with the new key, A (which last loaded the keys before the rotation) accepts it.
    let from_b = b.token_for(Role::Customer).await;
    assert_eq!(kid(&from_b), new_kid);
    assert_eq!(a.get_authed("/api/v1/me", &from_b).await.status(), 200);
    assert_eq!(b.get_authed("/api/v1/me", &from_a).await.status(), 200, "the old key still verifies");
}

#[tokio::test]
async fn jwt_previous_secret_keeps_tokens_of_the_replaced_secret_working() {
    let old = "the secret being replaced, 32 bytes or more";
    let a = TestApp::spawn_with(Backend::Postgres, |c| c.jwt_secret = Some(old.to_owned().into())).await;
    let token = a.token_for(Role::Customer).await;
    // The operator moves the secret to LESSOR_JWT_PREVIOUS_SECRET and sets a new one.
    let b = replica_of(&a, |c| {
        c.jwt_secret = Some(JWT_SECRET.to_owned().into());
        c.jwt_previous_secret = Some(old.to_owned().into());
    })
    .await;
    assert_eq!(b.get_authed("/api/v1/me", &token).await.status(), 200);
    let signed_by_b = b.token_for(Role::Customer).await;
    assert_ne!(kid(&signed_by_b), kid(&token), "the previous secret never signs");
    // Without it, the old tokens are refused.
    let c = replica_of(&a, |c| c.jwt_secret = Some(JWT_SECRET.to_owned().into())).await;
    assert_problem(c.get_authed("/api/v1/me", &token).await, 401, "token-invalid").await;
}

#[tokio::test]
async fn sessions_from_before_roles_were_recorded_are_checked_against_the_user() {
    // Rows migrated from before 0007 hold role '' (SQL); Redis values hold only the user id.
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.jwt_secret = Some(JWT_SECRET.to_owned().into())).await;
    let token = app.token_for(Role::Customer).await;
    let jti: uuid::Uuid = claims_of(&token)["jti"].as_str().unwrap().parse().unwrap();
    let lessor_store::Db::Sqlite(pool) = &app.state.db else { panic!("embedded mode uses SQLite") };
    sqlx::query("UPDATE sessions SET role = '' WHERE jti = $1").bind(jti).execute(pool).await.unwrap();
    assert_eq!(app.get_authed("/api/v1/me", &token).await.status(), 200);
    let mut raised = claims_of(&token);
    raised["role"] = json!("admin");
    let header = jsonwebtoken::decode_header(&token).unwrap();
    let forged = sign(&header, &raised, JWT_SECRET.as_bytes());
    assert_problem(app.get_authed("/api/v1/me", &forged).await, 401, "token-invalid").await;

    let app = TestApp::spawn_with(Backend::PostgresRedis, |c| c.jwt_secret = Some(JWT_SECRET.to_owned().into())).await;
    let token = app.token_for(Role::Customer).await;
    let claims = claims_of(&token);
    let redis = app.state.redis.clone().unwrap();
    let mut conn = redis.conn().await.unwrap();
    let key = redis.key(&format!("session:{}", claims["jti"].as_str().unwrap()));
    let legacy = claims["sub"].as_str().unwrap();
    lessor_store::redis::cmd("SET")
        .arg(&key)
        .arg(legacy)
        .arg("EX")
        .arg(600)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert_eq!(app.get_authed("/api/v1/me", &token).await.status(), 200);
    let mut raised = claims.clone();
    raised["role"] = json!("operator");
    let forged = sign(&jsonwebtoken::decode_header(&token).unwrap(), &raised, JWT_SECRET.as_bytes());
    assert_problem(app.get_authed("/api/v1/me", &forged).await, 401, "token-invalid").await;
}
