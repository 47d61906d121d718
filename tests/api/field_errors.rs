//! Field errors as the GraphQL spec handles them, through the real server: a
//! field that errors is `null` with its error beside the data, never left out
//! of its parent; a non-null one nulls its nearest nullable parent (field or
//! list item), or `data` when there is none. Over HTTP (POST, GET, batches)
//! and in subscription events and operations over both WebSocket protocols.
//!
//! The failing fields: `me` without a token (`UNAUTHENTICATED`), and page
//! sizes over 100 (`BAD_USER_INPUT`) on a nullable connection
//! (`User.friends`) and on non-null ones (`User.groups`,
//! `Conversation.messages`, `Query.searchUsers`).

use crate::common;

use common::{Session, TestApp, spawn_app};
use serde_json::{Value, json};

/// The `path`s of a response's errors, each with its `extensions.code`.
fn errors(response: &Value) -> Vec<(Value, Value)> {
    response["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors expected: {response:#}"))
        .iter()
        .map(|e| (e["path"].clone(), e["extensions"]["code"].clone()))
        .collect()
}

/// `errors`, sorted: fields resolved concurrently report in any order.
fn sorted_errors(response: &Value) -> Vec<(Value, Value)> {
    let mut errors = errors(response);
    errors.sort_by_key(|(path, _)| path.to_string());
    errors
}

fn unauthenticated(path: Value) -> Vec<(Value, Value)> {
    vec![(path, json!("UNAUTHENTICATED"))]
}

fn bad_input(path: Value) -> (Value, Value) {
    (path, json!("BAD_USER_INPUT"))
}

/// `ann`, friends with `bob` and `cat`.
async fn ann_with_friends(app: &TestApp) -> (Session, Session, Session) {
    let ann = app.register("ann").await;
    let (bob, cat) = (app.register("bob").await, app.register("cat").await);
    app.befriend(&ann, &bob).await;
    app.befriend(&ann, &cat).await;
    (ann, bob, cat)
}

#[tokio::test]
async fn a_nullable_root_field_that_errors_is_null_beside_the_others() {
    let app = spawn_app().await;

    let both = app
        .graphql(
            r#"{ me { id } usernameAvailable(username: "zzzq") }"#,
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        both["data"],
        json!({ "me": null, "usernameAvailable": true }),
        "{both}"
    );
    assert_eq!(errors(&both), unauthenticated(json!(["me"])));

    // The only root field: `data` holds it, null, rather than being null.
    let alone = app.graphql("{ me { id } }", json!({}), None).await;
    assert_eq!(alone["data"], json!({ "me": null }), "{alone}");
    assert_eq!(errors(&alone), unauthenticated(json!(["me"])));

    // Under its alias, as the error's path names it.
    let aliased = app.graphql("{ who: me { id } }", json!({}), None).await;
    assert_eq!(aliased["data"], json!({ "who": null }), "{aliased}");
    assert_eq!(errors(&aliased), unauthenticated(json!(["who"])));

    // Over GET the same.
    let got: Value = app
        .client
        .get(app.url("/graphql"))
        .query(&[(
            "query",
            r#"{ me { id } usernameAvailable(username: "zzzq") }"#,
        )])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        got["data"],
        json!({ "me": null, "usernameAvailable": true })
    );
    assert_eq!(errors(&got), unauthenticated(json!(["me"])));
}

#[tokio::test]
async fn nullable_fields_that_error_are_null_in_objects_lists_and_mutations() {
    let app = spawn_app().await;
    let (ann, ..) = ann_with_friends(&app).await;

    let nested = app
        .graphql(
            "{ me { username mine: friends(first: 101) { totalCount } } }",
            json!({}),
            ann.token(),
        )
        .await;
    assert_eq!(
        nested["data"],
        json!({ "me": { "username": "ann", "mine": null } }),
        "{nested}"
    );
    assert_eq!(
        errors(&nested),
        vec![bad_input(json!(["me", "mine"]))],
        "{nested}"
    );

    // In each item of a connection.
    let in_list = app
        .graphql(
            "{ me { friends { nodes { username friends(first: 101) { totalCount } } } } }",
            json!({}),
            ann.token(),
        )
        .await;
    assert_eq!(
        in_list["data"]["me"]["friends"]["nodes"],
        json!([
            { "username": "bob", "friends": null },
            { "username": "cat", "friends": null },
        ]),
        "{in_list}"
    );
    assert_eq!(
        sorted_errors(&in_list),
        vec![
            bad_input(json!(["me", "friends", "nodes", 0, "friends"])),
            bad_input(json!(["me", "friends", "nodes", 1, "friends"])),
        ]
    );

    // A mutation's payload.
    let updated = app
        .graphql(
            r#"mutation { updateProfile(input: { bio: "hi" }) {
                bio friends(first: 101) { totalCount } } }"#,
            json!({}),
            ann.token(),
        )
        .await;
    assert_eq!(
        updated["data"],
        json!({ "updateProfile": { "bio": "hi", "friends": null } }),
        "{updated}"
    );
    assert_eq!(
        errors(&updated),
        vec![bad_input(json!(["updateProfile", "friends"]))]
    );
}

#[tokio::test]
async fn a_non_null_field_that_errors_nulls_its_nearest_nullable_parent() {
    let app = spawn_app().await;
    let (ann, ..) = ann_with_friends(&app).await;

    // `User.groups` is non-null: `me`, nullable, is null instead.
    let parent = app
        .graphql(
            r#"{ me { username groups(first: 101) { totalCount } }
                usernameAvailable(username: "zzzq") }"#,
            json!({}),
            ann.token(),
        )
        .await;
    assert_eq!(
        parent["data"],
        json!({ "me": null, "usernameAvailable": true }),
        "{parent}"
    );
    assert_eq!(errors(&parent), vec![bad_input(json!(["me", "groups"]))]);

    // Through non-null list items (`nodes: [User!]!`) up to the nullable
    // connection `friends`; one error per failed field still.
    let through_list = app
        .graphql(
            "{ me { username friends { totalCount nodes { groups(first: 101) { totalCount } } } } }",
            json!({}),
            ann.token(),
        )
        .await;
    assert_eq!(
        through_list["data"],
        json!({ "me": { "username": "ann", "friends": null } }),
        "{through_list}"
    );
    assert_eq!(
        sorted_errors(&through_list),
        vec![
            bad_input(json!(["me", "friends", "nodes", 0, "groups"])),
            bad_input(json!(["me", "friends", "nodes", 1, "groups"])),
        ]
    );

    // Nullable list items (`nodes: [Node]!`) are null each, through the
    // interface's fragment; and `node`, nullable, is null.
    let items = app
        .graphql(
            "query($ids: [ID!]!, $id: ID!) {
                nodes(ids: $ids) { id ... on User { groups(first: 101) { totalCount } } }
                node(id: $id) { ... on User { username groups(first: 101) { totalCount } } } }",
            json!({ "ids": [ann.user_id, "nothing-at-all"], "id": ann.user_id }),
            ann.token(),
        )
        .await;
    assert_eq!(
        items["data"],
        json!({ "nodes": [null, null], "node": null }),
        "{items}"
    );
    assert_eq!(
        sorted_errors(&items),
        vec![
            bad_input(json!(["node", "groups"])),
            bad_input(json!(["nodes", 0, "groups"])),
        ]
    );

    // Nothing nullable up to the root: `data` is null.
    let root = app
        .graphql(
            r#"{ usernameAvailable(username: "zzzq")
                searchUsers(query: "bob", first: 101) { totalCount } }"#,
            json!({}),
            ann.token(),
        )
        .await;
    assert_eq!(root["data"], Value::Null, "{root}");
    assert_eq!(errors(&root), vec![bad_input(json!(["searchUsers"]))]);
}

#[tokio::test]
async fn each_operation_of_a_batch_has_its_nulls() {
    let app = spawn_app().await;
    let batch: Vec<Value> = app
        .client
        .post(app.url("/graphql"))
        .json(&json!([
            { "query": "{ me { id } }" },
            { "query": r#"{ usernameAvailable(username: "zzzq") }"# },
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(batch.len(), 2, "{batch:?}");
    assert_eq!(batch[0]["data"], json!({ "me": null }), "{batch:?}");
    assert_eq!(errors(&batch[0]), unauthenticated(json!(["me"])));
    assert_eq!(batch[1], json!({ "data": { "usernameAvailable": true } }));
}

/// A subscription event whose nullable fields error carries them as null,
/// their errors beside the data, on both protocols; an operation over the
/// socket too.
#[tokio::test]
async fn subscription_events_and_socket_operations_have_their_nulls() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let event_query = "subscription($c: ID!) { messageAdded(conversationId: $c) {
        body sender { username friends(first: 101) { totalCount } }
        conversation { id messages(first: 101) { nodes { id } } } } }";

    let mut modern = app.signed_in_socket(&ann).await;
    modern
        .send(json!({ "id": "m", "type": "subscribe", "payload": {
            "query": event_query, "variables": { "c": conversation } } }))
        .await;
    let mut legacy = app
        .signed_in_socket_on("/graphql", "graphql-ws", &ann)
        .await;
    legacy
        .send(json!({ "id": "m", "type": "start", "payload": {
            "query": event_query, "variables": { "c": conversation } } }))
        .await;
    app.until_live_subscriptions(2).await;

    app.data(
        "mutation($c: ID!) { sendMessage(input: {
            conversationId: $c, body: \"hi\", clientMessageId: \"k1\" }) { id } }",
        json!({ "c": conversation }),
        bob.token(),
    )
    .await;
    let expected = json!({ "messageAdded": {
        "body": "hi",
        "sender": { "username": "bob", "friends": null },
        "conversation": null,
    } });
    let expected_errors = vec![
        bad_input(json!(["messageAdded", "conversation", "messages"])),
        bad_input(json!(["messageAdded", "sender", "friends"])),
    ];
    for (socket, kind) in [(&mut modern, "next"), (&mut legacy, "data")] {
        let event = socket.receive().await;
        assert_eq!(event["type"], kind, "{event}");
        assert_eq!(event["payload"]["data"], expected, "{event}");
        assert_eq!(sorted_errors(&event["payload"]), expected_errors, "{event}");
    }

    // A query over the socket.
    modern
        .send(json!({ "id": "q", "type": "subscribe", "payload": {
            "query": "{ me { username friends(first: 101) { totalCount } } }" } }))
        .await;
    let answer = modern.receive().await;
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(
        answer["payload"]["data"],
        json!({ "me": { "username": "ann", "friends": null } }),
        "{answer}"
    );
    assert_eq!(
        errors(&answer["payload"]),
        vec![bad_input(json!(["me", "friends"]))]
    );
}
