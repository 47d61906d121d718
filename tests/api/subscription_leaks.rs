//! A socket closed mid-stream leaves no subscription behind: the
//! `kith_subscriptions_active` gauge returns to zero. In a process of its own,
//! because metrics are process-wide and `cargo test` runs a binary's tests side
//! by side.

use crate::common;

use std::time::Duration;

use common::{Session, Socket, TestApp, spawn_app};
use serde_json::json;

async fn active_subscriptions(app: &TestApp) -> f64 {
    app.metric("kith_subscriptions_active ").await
}

async fn subscribe(
    app: &TestApp,
    viewer: &Session,
    query: &str,
    variables: serde_json::Value,
) -> Socket {
    let mut socket = app.signed_in_socket(viewer).await;
    socket
        .send(json!({ "id": "s", "type": "subscribe",
            "payload": { "query": query, "variables": variables } }))
        .await;
    socket
}

async fn wait_for(app: &TestApp, want: f64) {
    for _ in 0..50 {
        if active_subscriptions(app).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "kith_subscriptions_active stayed at {} instead of {want}",
        active_subscriptions(app).await
    );
}

#[tokio::test]
async fn closed_sockets_leave_no_subscription_behind() {
    // The gauge is process-wide: any other test's subscriptions would move it.
    if common::in_own_process(
        module_path!(),
        "closed_sockets_leave_no_subscription_behind",
    )
    .await
    {
        return;
    }
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    assert_eq!(active_subscriptions(&app).await, 0.0);

    let variables = json!({ "c": conversation });
    let mut messages = subscribe(
        &app,
        &bob,
        "subscription($c: ID!) { messageAdded(conversationId: $c) { seq } }",
        variables.clone(),
    )
    .await;
    let events = subscribe(
        &app,
        &bob,
        "subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename } }",
        variables,
    )
    .await;
    let mut notifications = subscribe(
        &app,
        &ann,
        "subscription { notifications { __typename } }",
        json!({}),
    )
    .await;
    wait_for(&app, 3.0).await;

    // Mid-stream: a message is on its way when the sockets go.
    app.data(
        "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"hi\", clientMessageId: \"1\" }) { seq } }",
        json!({ "c": conversation }),
        ann.token(),
    )
    .await;
    assert_eq!(messages.receive().await["type"], "next");
    drop(messages);
    drop(events);
    // One ends politely instead.
    notifications
        .send(json!({ "id": "s", "type": "complete" }))
        .await;
    wait_for(&app, 0.0).await;
}
