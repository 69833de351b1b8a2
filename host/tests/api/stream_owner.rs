//! Issue 12 item 4: a Redis namespace belongs to one database. A second fresh database
//! started against the namespace of a first one is refused by `Application::build`, naming
//! both database ids and the namespace.

use host::startup::Application;
use lessor_events::database_id;

use crate::helpers::{Backend, TestApp, test_config};

#[tokio::test]
async fn a_second_database_cannot_start_on_the_namespace_of_another() {
    // Arrange: a first host on PostgreSQL + Redis owns its namespace.
    let namespace = format!("lessor-test-owner-{}", uuid::Uuid::new_v4().simple());
    let ns = namespace.clone();
    let first = TestApp::spawn_with(Backend::PostgresRedis, move |c| c.redis_namespace = ns).await;
    let first_id = database_id(&first.state.db).await.unwrap();

    // Act: a second fresh database with the same namespace.
    let dir = tempfile::tempdir().unwrap();
    let (mut config, pg) = test_config(Backend::PostgresRedis, &dir).await;
    config.redis_namespace = namespace.clone();
    let err = Application::build(config).await.err().expect("the second host is refused");

    // Assert
    let text = format!("{err:#}");
    let second_db = lessor_store::Db::connect(
        &lessor_store::DatabaseTarget::from_config(Some(&pg.as_ref().unwrap().url), dir.path()).unwrap(),
    )
    .await
    .unwrap();
    let second_id = database_id(&second_db).await.unwrap();
    assert_ne!(first_id, second_id);
    for needle in [&first_id, &second_id, &namespace, &"LESSOR_REDIS_NAMESPACE".to_owned()] {
        assert!(text.contains(needle.as_str()), "{needle} missing from: {text}");
    }
}
