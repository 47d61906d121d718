//! What happens to messages after they are sent, through the real server:
//! edits, tombstones, reactions, read receipts, typing, and the
//! `conversationEvents` subscription that reports them all.

use crate::common;

use common::{Session, Socket, TestApp, error_code, error_field, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const SEND: &str = "mutation($c: ID!, $b: String!, $k: String!) {
    sendMessage(input: { conversationId: $c, body: $b, clientMessageId: $k }) { id seq } }";
const EDIT: &str =
    "mutation($m: ID!, $b: String!) { editMessage(input: { messageId: $m, body: $b }) {
    body editedAt } }";
const DELETE: &str = "mutation($m: ID!) { deleteMessage(messageId: $m) { seq body deletedAt } }";
const REACT: &str =
    "mutation($m: ID!, $e: String!) { addReaction(input: { messageId: $m, emoji: $e }) {
    reactions { emoji count viewerReacted } } }";
const UNREACT: &str =
    "mutation($m: ID!, $e: String!) { removeReaction(input: { messageId: $m, emoji: $e }) {
    reactions { emoji count viewerReacted } } }";
const TYPING: &str =
    "mutation($c: ID!, $t: Boolean!) { setTyping(input: { conversationId: $c, typing: $t }) }";

/// Sends and returns the message's id.
async fn send(app: &TestApp, from: &Session, conversation: &Value, body: &str) -> Value {
    app.data(
        SEND,
        json!({ "c": conversation, "b": body, "k": uuid::Uuid::now_v7().to_string() }),
        from.token(),
    )
    .await["sendMessage"]["id"]
        .clone()
}

async fn events(app: &TestApp, viewer: &Session, conversation: &Value) -> Socket {
    let mut socket = app.signed_in_socket(viewer).await;
    socket
        .send(json!({ "id": "e", "type": "subscribe", "payload": {
            "query": "subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename
                ... on MessageAddedEvent { message { body } }
                ... on MessageEditedEvent { message { body } }
                ... on MessageDeletedEvent { message { body deletedAt } }
                ... on ReactionChangedEvent { emoji user { username } }
                ... on ReadReceiptEvent { upToSeq user { username } }
                ... on TypingEvent { typing user { username } } } }",
            "variables": { "c": conversation } } }))
        .await;
    socket
}

/// The next event's payload.
async fn next_event(socket: &mut Socket) -> Value {
    let message = socket.receive().await;
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["conversationEvents"].clone()
}

#[tokio::test]
async fn only_the_sender_edits_and_a_tombstone_stays_put() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let message = send(&app, &ann, &conversation, "helo").await;
    let edited = app
        .data(EDIT, json!({ "m": message, "b": "hello" }), ann.token())
        .await["editMessage"]
        .clone();
    assert_eq!(edited["body"], "hello");
    assert!(edited["editedAt"].is_string());
    let by_bob = app
        .graphql(EDIT, json!({ "m": message, "b": "hacked" }), bob.token())
        .await;
    assert_eq!(error_code(&by_bob), "FORBIDDEN");
    let empty = app
        .graphql(EDIT, json!({ "m": message, "b": "  " }), ann.token())
        .await;
    assert_eq!(error_field(&empty), Some("body"));
    let not_yours = app
        .graphql(DELETE, json!({ "m": message }), bob.token())
        .await;
    assert_eq!(error_code(&not_yours), "FORBIDDEN");

    send(&app, &bob, &conversation, "after").await;
    let deleted =
        app.data(DELETE, json!({ "m": message }), ann.token()).await["deleteMessage"].clone();
    assert_eq!(deleted["seq"], 1);
    assert_eq!(deleted["body"], Value::Null);
    assert!(deleted["deletedAt"].is_string());
    let again = app.data(DELETE, json!({ "m": message }), ann.token()).await;
    assert_eq!(
        again["deleteMessage"]["deletedAt"], deleted["deletedAt"],
        "deleting twice is one delete"
    );
    let late_edit = app
        .graphql(EDIT, json!({ "m": message, "b": "undo" }), ann.token())
        .await;
    assert_eq!(error_code(&late_edit), "CONFLICT");
    let history = app
        .data(
            "query($c: ID!) { conversation(id: $c) { messages { edges { node { seq body } } } } }",
            json!({ "c": conversation }),
            bob.token(),
        )
        .await;
    assert_eq!(
        history["conversation"]["messages"]["edges"],
        json!([{ "node": { "seq": 1, "body": null } }, { "node": { "seq": 2, "body": "after" } }])
    );

    let cat = app.register("cat").await;
    let stranger = app
        .graphql(DELETE, json!({ "m": message }), cat.token())
        .await;
    assert_eq!(error_code(&stranger), "NOT_FOUND");
}

#[tokio::test]
async fn group_admins_delete_members_messages_but_members_do_not() {
    let app = spawn_app().await;
    let [owner, admin, member] = [
        app.register("owner").await,
        app.register("admin").await,
        app.register("member").await,
    ];
    let group = app.open_group(&owner, "g").await;
    for user in [&admin, &member] {
        app.data(
            "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { joined } }",
            json!({ "g": group["id"] }),
            user.token(),
        )
        .await;
    }
    app.data(
        "mutation($g: ID!, $u: ID!) { setGroupMemberRole(input: { groupId: $g, userId: $u, role: ADMIN }) { role } }",
        json!({ "g": group["id"], "u": admin.user_id }),
        owner.token(),
    )
    .await;
    let conversation = &group["conversation"]["id"];
    let by_owner = send(&app, &owner, conversation, "rules").await;
    let by_member = send(&app, &member, conversation, "spam").await;
    let refused = app
        .graphql(DELETE, json!({ "m": by_owner }), member.token())
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    let moderated = app
        .data(DELETE, json!({ "m": by_member }), admin.token())
        .await;
    assert_eq!(moderated["deleteMessage"]["body"], Value::Null);
}

#[tokio::test]
async fn one_reaction_per_user_with_counts_per_emoji() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let message = send(&app, &ann, &conversation, "party?").await;
    let after_ann = app
        .data(REACT, json!({ "m": message, "e": "👍" }), ann.token())
        .await;
    assert_eq!(
        after_ann["addReaction"]["reactions"],
        json!([{ "emoji": "👍", "count": 1, "viewerReacted": true }])
    );
    let after_bob = app
        .data(REACT, json!({ "m": message, "e": "👍" }), bob.token())
        .await;
    assert_eq!(
        after_bob["addReaction"]["reactions"],
        json!([{ "emoji": "👍", "count": 2, "viewerReacted": true }])
    );
    let switched = app
        .data(REACT, json!({ "m": message, "e": "🎉" }), ann.token())
        .await;
    assert_eq!(
        switched["addReaction"]["reactions"],
        json!([
            { "emoji": "👍", "count": 1, "viewerReacted": false },
            { "emoji": "🎉", "count": 1, "viewerReacted": true }
        ]),
        "a new emoji replaces yours"
    );
    let wrong_emoji = app
        .data(UNREACT, json!({ "m": message, "e": "👍" }), ann.token())
        .await;
    assert_eq!(
        wrong_emoji["removeReaction"]["reactions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let removed = app
        .data(UNREACT, json!({ "m": message, "e": "🎉" }), ann.token())
        .await;
    assert_eq!(
        removed["removeReaction"]["reactions"],
        json!([{ "emoji": "👍", "count": 1, "viewerReacted": false }])
    );
    for bad in ["", "lol", "👍 👍"] {
        let refused = app
            .graphql(REACT, json!({ "m": message, "e": bad }), ann.token())
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{bad}");
        assert_eq!(error_field(&refused), Some("emoji"));
    }
    app.data(DELETE, json!({ "m": message }), ann.token()).await;
    let on_tombstone = app
        .graphql(REACT, json!({ "m": message, "e": "👍" }), bob.token())
        .await;
    assert_eq!(error_code(&on_tombstone), "CONFLICT");
}

#[tokio::test]
async fn read_receipts_say_who_has_read_a_message() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    send(&app, &ann, &conversation, "one").await;
    send(&app, &ann, &conversation, "two").await;
    let read_by = "query($c: ID!) { conversation(id: $c) { messages { edges { node { seq readBy { username } } } } } }";
    let before = app
        .data(read_by, json!({ "c": conversation }), ann.token())
        .await;
    assert_eq!(
        before["conversation"]["messages"]["edges"],
        json!([{ "node": { "seq": 1, "readBy": [] } }, { "node": { "seq": 2, "readBy": [] } }]),
        "the sender is not listed as a reader"
    );
    app.data(
        "mutation($c: ID!) { markConversationRead(input: { conversationId: $c, upToSeq: 1 }) { unreadCount } }",
        json!({ "c": conversation }),
        bob.token(),
    )
    .await;
    let after = app
        .data(read_by, json!({ "c": conversation }), ann.token())
        .await;
    assert_eq!(
        after["conversation"]["messages"]["edges"],
        json!([
            { "node": { "seq": 1, "readBy": [{ "username": "bob" }] } },
            { "node": { "seq": 2, "readBy": [] } }
        ])
    );
}

#[tokio::test]
async fn typing_is_rate_limited() {
    let app = spawn_app_with(|settings| {
        settings.rate_limits = kith::config::Switch::On;
        settings.rate_typing_per_user = "2/min".parse().unwrap();
    })
    .await;
    let (ann, _bob, conversation) = app.friends_chatting().await;
    for _ in 0..2 {
        let ok = app
            .data(TYPING, json!({ "c": conversation, "t": true }), ann.token())
            .await;
        assert_eq!(ok["setTyping"], true);
    }
    let limited = app
        .graphql(TYPING, json!({ "c": conversation, "t": true }), ann.token())
        .await;
    assert_eq!(error_code(&limited), "RATE_LIMITED");
    assert!(
        limited["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[tokio::test]
async fn messages_are_rate_limited_per_user() {
    let app = spawn_app_with(|settings| {
        settings.rate_limits = kith::config::Switch::On;
        settings.rate_messages_per_user = "3/min".parse().unwrap();
    })
    .await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    for body in ["one", "two", "three"] {
        send(&app, &ann, &conversation, body).await;
    }
    let limited = app
        .graphql(
            SEND,
            json!({ "c": conversation, "b": "four", "k": "four" }),
            ann.token(),
        )
        .await;
    assert_eq!(error_code(&limited), "RATE_LIMITED");
    assert!(
        limited["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // Each sender has their own allowance.
    send(&app, &bob, &conversation, "still here").await;
}

#[tokio::test]
async fn conversation_events_report_everything_that_happens() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let mut bob_events = events(&app, &bob, &conversation).await;
    let mut ann_events = events(&app, &ann, &conversation).await;
    app.until_live_subscriptions(2).await;

    let message = send(&app, &ann, &conversation, "hi").await;
    app.data(EDIT, json!({ "m": message, "b": "hi bob" }), ann.token())
        .await;
    app.data(REACT, json!({ "m": message, "e": "👋" }), bob.token())
        .await;
    app.data(UNREACT, json!({ "m": message, "e": "👋" }), bob.token())
        .await;
    app.data(
        "mutation($c: ID!) { markConversationRead(input: { conversationId: $c, upToSeq: 1 }) { unreadCount } }",
        json!({ "c": conversation }),
        bob.token(),
    )
    .await;
    app.data(TYPING, json!({ "c": conversation, "t": true }), ann.token())
        .await;
    app.data(DELETE, json!({ "m": message }), ann.token()).await;

    let expected = [
        json!({ "__typename": "MessageAddedEvent", "message": { "body": "hi" } }),
        json!({ "__typename": "MessageEditedEvent", "message": { "body": "hi bob" } }),
        json!({ "__typename": "ReactionChangedEvent", "emoji": "👋", "user": { "username": "bob" } }),
        json!({ "__typename": "ReactionChangedEvent", "emoji": null, "user": { "username": "bob" } }),
        json!({ "__typename": "ReadReceiptEvent", "upToSeq": 1, "user": { "username": "bob" } }),
        json!({ "__typename": "TypingEvent", "typing": true, "user": { "username": "ann" } }),
    ];
    for want in &expected {
        assert_eq!(&next_event(&mut bob_events).await, want);
    }
    let deleted = next_event(&mut bob_events).await;
    assert_eq!(deleted["__typename"], "MessageDeletedEvent");
    assert_eq!(deleted["message"]["body"], Value::Null);

    // Ann sees the same, but not her own typing.
    for want in expected.iter().filter(|e| e["__typename"] != "TypingEvent") {
        assert_eq!(&next_event(&mut ann_events).await, want);
    }
    assert_eq!(
        next_event(&mut ann_events).await["__typename"],
        "MessageDeletedEvent"
    );

    let cat = app.register("cat").await;
    let mut outsider = events(&app, &cat, &conversation).await;
    let refused = outsider.receive().await;
    // Refused at setup: one `error` message, nothing more.
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );
}
