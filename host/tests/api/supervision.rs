//! Background tasks under supervision: a failing task is restarted with backoff and counted on
//! `/metrics`; one failing for good makes `/ready` 503 naming it; shutdown still ends in time.
//! Failures are injected as extra supervised tasks (`Application::supervise`), which only Rust
//! code building the application can add.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use host::Application;
use host::supervisor::{OnStop, factory, looping};
use serde_json::Value;

use crate::helpers::{Backend, TestApp, test_config};

/// The value of `name{task="<task>"}` in the OpenMetrics text, if present.
fn metric(text: &str, name: &str, task: &str) -> Option<f64> {
    let prefix = format!("{name}{{task=\"{task}\"}} ");
    text.lines().find_map(|line| line.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

async fn metrics_text(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn ready(app: &TestApp) -> (u16, Value) {
    let response = app.client.get(app.url("/ready")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_panicking_task_is_restarted_and_counted() {
    // Arrange: a task whose first two runs panic, the third runs until shutdown.
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let app = TestApp::spawn_prepared(
        Backend::Postgres,
        |_| {},
        move |app| {
            app.supervise(
                "test-flaky",
                OnStop::Abort,
                looping(move |stop| {
                    let run = counted.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if run < 2 {
                            panic!("injected failure {run}");
                        }
                        stop.wait().await;
                    }
                }),
            )
        },
    )
    .await;

    // Act: wait for the restarts (backoff 100 ms, then 200 ms).
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = metrics_text(&app).await;
        if metric(&text, "lessor_task_restarts_total", "test-flaky") == Some(2.0)
            && metric(&text, "lessor_task_up", "test-flaky") == Some(1.0)
        {
            break text;
        }
        assert!(Instant::now() < deadline, "no second restart counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Assert: counted twice, running, and the host's own tasks are up and never restarted.
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    for task in ["event-relay", "search-indexer", "reconciliation", "key-pruning", "plugin-reloader", "session-janitor"]
    {
        assert_eq!(metric(&text, "lessor_task_up", task), Some(1.0), "{task}:\n{text}");
        assert_eq!(metric(&text, "lessor_task_restarts_total", task).unwrap_or(0.0), 0.0, "{task}");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the cached readiness answer
    let (status, body) = ready(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["tasks"]["test-flaky"], "up");
    assert_eq!(body["checks"]["tasks"]["event-relay"], "up");
}

#[tokio::test]
async fn a_task_failing_for_good_makes_ready_503_naming_it() {
    // Arrange: down for good after 3 failures in a row within a minute.
    let app = TestApp::spawn_prepared(
        Backend::Postgres,
        |config| {
            config.tasks.max_failures = 3;
            config.tasks.failure_window = Duration::from_secs(60);
        },
        |app| {
            app.supervise(
                "test-doomed",
                OnStop::Abort,
                factory(|_| async { Err(anyhow::anyhow!("injected: the peer refuses us")) }),
            )
        },
    )
    .await;

    // Act
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, body) = ready(&app).await;
        if status == 503 {
            break (status, body);
        }
        assert!(Instant::now() < deadline, "still ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Assert: 503 names the task (same JSON shape), the backends are up; two restarts, then none.
    assert_eq!(status, 503);
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"], "up");
    assert_eq!(body["checks"]["tasks"]["test-doomed"], "down");
    assert_eq!(body["checks"]["tasks"]["event-relay"], "up");
    let text = metrics_text(&app).await;
    assert_eq!(metric(&text, "lessor_task_restarts_total", "test-doomed"), Some(2.0), "{text}");
    assert_eq!(metric(&text, "lessor_task_up", "test-doomed"), Some(0.0), "{text}");
    // The API still serves.
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn shutdown_completes_within_the_grace_period_with_stubborn_tasks() {
    // Arrange: a 1 s grace period; a finishing task that ignores the stop signal, an aborted
    // one that ignores it too, and one failing in a loop.
    let dir = tempfile::tempdir().unwrap();
    let (mut config, _pg) = test_config(Backend::Postgres, &dir).await;
    config.shutdown_grace_secs = 1;
    let mut app = Application::build(config).await.unwrap();
    app.supervise("test-deaf-finisher", OnStop::Finish, looping(|_| std::future::pending::<()>()));
    app.supervise("test-deaf-worker", OnStop::Abort, looping(|_| std::future::pending::<()>()));
    app.supervise("test-crashing", OnStop::Abort, factory(|_| async { panic!("injected crash") }));
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{base}/health")).send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Act
    let started = Instant::now();
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), running).await;

    // Assert: stopped, within the grace period (plus scheduling slack), not hung on the tasks.
    let took = started.elapsed();
    result.expect("shutdown finished").unwrap().unwrap();
    assert!(took < Duration::from_millis(1800), "shutdown took {took:?}");
    assert!(client.get(format!("{base}/health")).send().await.is_err(), "still listening");
}
