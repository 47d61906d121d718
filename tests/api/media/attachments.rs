//! Attachments: uploaded, sent once by their uploader, seen by the
//! conversation's participants, and removed with their message.

use serde_json::{Value, json};

use super::{jpeg, key_of, stored_files, upload_attachment};
use crate::common::{self, Session, TestApp, error_code, error_field, spawn_app};

const SEND: &str = "mutation($input: SendMessageInput!) {
    sendMessage(input: $input) { id seq body attachments { id width height url sizes { url } } } }";

async fn attachment(app: &TestApp, user: &Session, width: u32, height: u32) -> Value {
    let answer = upload_attachment(app, user.token(), &jpeg(width, height)).await;
    assert!(answer["errors"].is_null(), "{answer}");
    answer["data"]["uploadAttachment"].clone()
}

async fn send(
    app: &TestApp,
    user: &Session,
    conversation: &Value,
    body: &str,
    client_id: &str,
    attachment_ids: Value,
) -> Value {
    app.graphql(
        SEND,
        json!({ "input": {
            "conversationId": conversation,
            "body": body,
            "clientMessageId": client_id,
            "attachmentIds": attachment_ids,
        } }),
        user.token(),
    )
    .await
}

#[tokio::test]
async fn a_message_carries_its_attachments_to_the_other_participant_with_an_empty_body() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let first = attachment(&app, &ann, 800, 600).await;
    let second = attachment(&app, &ann, 60, 80).await;
    assert_eq!(
        (first["width"].as_i64(), first["height"].as_i64()),
        (Some(800), Some(600))
    );
    let sent = send(
        &app,
        &ann,
        &conversation,
        "  ",
        "with-pictures",
        json!([first["id"], second["id"]]),
    )
    .await;
    let message = &sent["data"]["sendMessage"];
    assert!(sent["errors"].is_null(), "{sent}");
    assert_eq!(message["body"], "");
    let carried: Vec<&Value> = message["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert_eq!(carried, [&first["id"], &second["id"]]);

    // Bob reads it in the conversation, with URLs for every size.
    let data = app
        .data(
            "query($id: ID!) { conversation(id: $id) { messages(last: 5) { edges { node {
                body attachments { id url sizes { width url } } } } } } }",
            json!({ "id": conversation }),
            bob.token(),
        )
        .await;
    let node = &data["conversation"]["messages"]["edges"][0]["node"];
    assert_eq!(node["attachments"][0]["id"], first["id"]);
    for size in node["attachments"][0]["sizes"].as_array().unwrap() {
        let key = key_of(size["url"].as_str().unwrap());
        assert!(app.media_dir().join(key).is_file(), "{key} is stored");
    }

    // A retry of the same send returns the same message and takes nothing again.
    let retry = send(
        &app,
        &ann,
        &conversation,
        "  ",
        "with-pictures",
        json!([first["id"], second["id"]]),
    )
    .await;
    assert_eq!(retry["data"]["sendMessage"]["id"], message["id"], "{retry}");

    // A body without attachments still must not be empty.
    let empty = send(&app, &ann, &conversation, " ", "empty", json!([])).await;
    assert_eq!(error_code(&empty), "BAD_USER_INPUT");
    assert_eq!(error_field(&empty), Some("body"));
}

#[tokio::test]
async fn an_attachment_is_sent_once_by_its_uploader_and_by_no_one_else() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let anns = attachment(&app, &ann, 64, 48).await;
    // Bob cannot send ann's attachment, even into their shared conversation.
    let stolen = send(
        &app,
        &bob,
        &conversation,
        "mine now",
        "steal",
        json!([anns["id"]]),
    )
    .await;
    assert_eq!(error_code(&stolen), "BAD_USER_INPUT", "{stolen}");
    assert_eq!(error_field(&stolen), Some("attachmentIds"));
    // Ann sends it once; a second message with it is refused, and nothing of
    // the refused sends is written.
    let sent = send(
        &app,
        &ann,
        &conversation,
        "look",
        "first",
        json!([anns["id"]]),
    )
    .await;
    assert!(sent["errors"].is_null(), "{sent}");
    let again = send(
        &app,
        &ann,
        &conversation,
        "again",
        "second",
        json!([anns["id"]]),
    )
    .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT", "{again}");
    // Twice in one message, too many, or ids that are not attachments.
    let other = attachment(&app, &ann, 64, 48).await;
    let twice = send(
        &app,
        &ann,
        &conversation,
        "x",
        "twice",
        json!([other["id"], other["id"]]),
    )
    .await;
    assert_eq!(error_field(&twice), Some("attachmentIds"));
    let many: Vec<Value> = (0..11).map(|_| other["id"].clone()).collect();
    let too_many = send(&app, &ann, &conversation, "x", "many", json!(many)).await;
    assert_eq!(error_field(&too_many), Some("attachmentIds"));
    let not_one = send(
        &app,
        &ann,
        &conversation,
        "x",
        "user-id",
        json!([ann.user_id]),
    )
    .await;
    assert_eq!(error_field(&not_one), Some("attachmentIds"));
    // One message written in all of that (seq 1), and the unsent one is
    // still there to send.
    let later = send(
        &app,
        &ann,
        &conversation,
        "now",
        "later",
        json!([other["id"]]),
    )
    .await;
    assert_eq!(later["data"]["sendMessage"]["seq"], 2, "{later}");
}

#[tokio::test]
async fn a_deleted_message_drops_its_attachments_and_their_stored_files() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let kept = attachment(&app, &bob, 64, 48).await;
    let gone = attachment(&app, &ann, 400, 300).await;
    let sent = send(
        &app,
        &ann,
        &conversation,
        "soon gone",
        "doomed",
        json!([gone["id"]]),
    )
    .await;
    send(
        &app,
        &bob,
        &conversation,
        "stays",
        "kept",
        json!([kept["id"]]),
    )
    .await;
    let before = stored_files(app.media_dir()).len();
    let data = app
        .data(
            "mutation($id: ID!) { deleteMessage(messageId: $id) { body attachments { id } } }",
            json!({ "id": sent["data"]["sendMessage"]["id"] }),
            ann.token(),
        )
        .await;
    assert_eq!(data["deleteMessage"]["attachments"], json!([]));
    let dir = app.media_dir().to_owned();
    // 400 × 300 is stored at 400 and 160: both go; bob's stay.
    common::eventually("the deleted message's files removed", || {
        let dir = dir.clone();
        async move { (stored_files(&dir).len() == before - 2).then_some(()) }
    })
    .await;
    let key = key_of(kept["url"].as_str().unwrap());
    assert!(app.media_dir().join(key).is_file());
}

#[tokio::test]
async fn attachments_reach_only_the_conversations_participants() {
    let app = spawn_app().await;
    let (ann, _bob, conversation) = app.friends_chatting().await;
    let eve = app.register("eve_outsider").await;
    let picture = attachment(&app, &ann, 64, 48).await;
    let sent = send(
        &app,
        &ann,
        &conversation,
        "private",
        "private",
        json!([picture["id"]]),
    )
    .await;
    let message_id = sent["data"]["sendMessage"]["id"].clone();
    // Eve reaches neither the conversation nor the message (and so no URL).
    let answer = app
        .graphql(
            "query($c: ID!, $m: ID!) {
                conversation(id: $c) { messages(last: 1) { edges { node { attachments { url } } } } }
                node(id: $m) { ... on Message { attachments { url } } } }",
            json!({ "c": conversation, "m": message_id }),
            eve.token(),
        )
        .await;
    assert!(answer["data"]["conversation"].is_null(), "{answer}");
    assert!(answer["data"]["node"].is_null(), "{answer}");
    assert!(!answer.to_string().contains("/media/"), "{answer}");
}
