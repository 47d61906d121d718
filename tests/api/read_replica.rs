//! With `DATABASE_READ_URL`, plain reads of GraphQL queries go to the replica,
//! and a viewer who just wrote (or just signed in) reads from the primary. The
//! "replica" here is a second pool on the same database, so what is observed
//! is where each statement was sent.

use crate::common;

use std::time::Duration;

use common::spawn_app_with;
use serde_json::json;

const WINDOW_MS: u64 = 1_000;

#[tokio::test]
async fn queries_read_from_the_replica_unless_their_viewer_just_wrote() {
    let app = spawn_app_with(|settings| {
        settings.database_read_url = Some(settings.database_url.clone());
        settings.read_your_writes_millis = WINDOW_MS;
    })
    .await;
    let replica = app.statements.replica.clone();
    // Her own row comes from the user cache (loaded from the primary); her
    // requests are a plain read, which is what is routed.
    let me = "{ me { username bio incomingFriendRequests { edges { node { id } } } } }";
    let ada = app.register("ada").await;
    let read_from_replica = || async {
        let before = replica.get();
        let data = app.data(me, json!({}), ada.token()).await;
        (replica.get() > before, data)
    };

    // Signed up moments ago: her token is that fresh, so the primary answers.
    let (replica_used, data) = read_from_replica().await;
    assert!(!replica_used, "a fresh token reads from the primary");
    assert_eq!(data["me"]["username"], "ada");

    // Later, her queries go to the replica.
    tokio::time::sleep(Duration::from_millis(WINDOW_MS * 2 + 100)).await;
    assert!(
        read_from_replica().await.0,
        "a plain query reads from the replica"
    );

    // Right after a mutation she reads her own write from the primary...
    app.data(
        "mutation { updateProfile(input: { bio: \"hello\" }) { id } }",
        json!({}),
        ada.token(),
    )
    .await;
    let (replica_used, data) = read_from_replica().await;
    assert!(!replica_used, "a writer reads from the primary");
    assert_eq!(data["me"]["bio"], "hello");
    // ...and from the replica again once the window has passed.
    tokio::time::sleep(Duration::from_millis(WINDOW_MS + 100)).await;
    assert!(read_from_replica().await.0);
}

#[tokio::test]
async fn a_mutation_over_a_websocket_keeps_its_writer_on_the_primary() {
    let app = spawn_app_with(|settings| {
        settings.database_read_url = Some(settings.database_url.clone());
        settings.read_your_writes_millis = WINDOW_MS;
    })
    .await;
    let replica = app.statements.replica.clone();
    let ada = app.register("ada").await;
    tokio::time::sleep(Duration::from_millis(WINDOW_MS * 2 + 100)).await;
    let me = "{ me { bio incomingFriendRequests { edges { node { id } } } } }";
    let before = replica.get();
    app.data(me, json!({}), ada.token()).await;
    assert!(replica.get() > before, "her queries read from the replica");

    let mut socket = app.signed_in_socket(&ada).await;
    socket
        .send(json!({ "id": "w", "type": "subscribe", "payload": {
            "query": "mutation { updateProfile(input: { bio: \"over the socket\" }) { id } }" } }))
        .await;
    let answer = socket.receive().await;
    assert_eq!(answer["type"], "next", "{answer}");
    assert!(answer["payload"]["errors"].is_null(), "{answer}");

    let before = replica.get();
    let data = app.data(me, json!({}), ada.token()).await;
    assert_eq!(replica.get(), before, "a writer reads from the primary");
    assert_eq!(data["me"]["bio"], "over the socket");
}

#[tokio::test]
async fn an_unreachable_replica_leaves_reads_to_the_primary() {
    if std::env::var("KITH_TEST_DATABASE_URL").is_err() {
        common::skipped("read replicas are a PostgreSQL matter");
        return;
    }
    // It reads a process-wide counter.
    if common::in_own_process(
        module_path!(),
        "an_unreachable_replica_leaves_reads_to_the_primary",
    )
    .await
    {
        return;
    }
    let app = spawn_app_with(|settings| {
        // Nothing answers there: not even at start.
        settings.database_read_url = Some("postgres://postgres@127.0.0.1:1/nowhere".into());
        settings.read_your_writes_millis = 1;
    })
    .await;
    let ada = app.register("ada").await;
    let read = || async {
        let me = app
            .data(
                "{ me { username incomingFriendRequests { edges { node { id } } } } }",
                json!({}),
                ada.token(),
            )
            .await;
        assert_eq!(me["me"]["username"], "ada");
    };
    let fallbacks = || app.metric("kith_db_replica_fallbacks_total ");
    // Once her token is no longer fresh (`iat` counts whole seconds), a read
    // tries the replica, and the primary answers it.
    let tried = common::eventually("a read that tries the replica", || async {
        read().await;
        Some(fallbacks().await).filter(|&tried| tried >= 1.0)
    })
    .await;
    // The reads after it do not try (and so do not wait for) it at all.
    for _ in 0..3 {
        read().await;
        assert_eq!(fallbacks().await, tried, "the replica is left alone");
    }

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "the primary answers: ready");
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["readReplica"], "unavailable");
}
