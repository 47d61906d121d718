//! Message, reaction and read events: what each change says, in each
//! conversation's order; nothing for a refused change, a retried send or a
//! repeat that changes nothing. Concurrent sends (written in batches on
//! PostgreSQL) each arrive once, in their conversation's seq order.

use std::collections::{BTreeMap, HashSet};

use futures_util::future::join_all;
use serde_json::{Value, json};

use super::*;
use crate::common::{PASSWORD, Session, TestApp, error_code, spawn_app_with};

const SEND: &str = "mutation($c: ID!, $b: String!, $k: String!, $r: ID) {
    sendMessage(input: { conversationId: $c, body: $b, clientMessageId: $k, replyToId: $r }) {
        id seq createdAt } }";

async fn send(
    app: &TestApp,
    from: &Session,
    conversation: &Value,
    body: &str,
    reply: Option<&Value>,
) -> Value {
    app.data(
        SEND,
        json!({ "c": conversation, "b": body, "k": body, "r": reply }),
        from.token(),
    )
    .await["sendMessage"]
        .clone()
}

/// `mutation(input: { ... })` by `who`: the whole response.
async fn change(app: &TestApp, mutation: &str, input: Value, who: &Session) -> Value {
    app.graphql(
        &format!(
            "mutation($input: {}) {{ {mutation}(input: $input) {{ id }} }}",
            input_type(mutation)
        ),
        json!({ "input": input }),
        who.token(),
    )
    .await
}

fn input_type(mutation: &str) -> &'static str {
    match mutation {
        "editMessage" => "EditMessageInput!",
        "addReaction" | "removeReaction" => "ReactionInput!",
        "markConversationRead" => "MarkConversationReadInput!",
        other => panic!("no input type for {other}"),
    }
}

async fn changed(app: &TestApp, mutation: &str, input: Value, who: &Session) {
    let response = change(app, mutation, input, who).await;
    assert!(response.get("errors").is_none(), "{mutation}: {response:#}");
}

async fn delete(app: &TestApp, message: &Value, who: &Session) -> Value {
    app.graphql(
        "mutation($m: ID!) { deleteMessage(messageId: $m) { id } }",
        json!({ "m": message["id"] }),
        who.token(),
    )
    .await
}

#[tokio::test]
async fn chat_events_tell_each_conversation_in_order() {
    let Some(nats) = OwnNats::start().await else {
        return;
    };
    let app = spawn_app_with(|s| s.nats_url = Some(nats.url())).await;
    let (ann, bob, direct) = app.friends_chatting().await;

    // Sent; retried (the same message: nothing new); answered.
    let hello = send(&app, &ann, &direct, "hello", None).await;
    let retry = app
        .data(
            SEND,
            json!({ "c": direct, "b": "other", "k": "hello" }),
            ann.token(),
        )
        .await;
    assert_eq!(retry["sendMessage"]["id"], hello["id"]);
    let reply = send(&app, &bob, &direct, "hi ann", Some(&hello["id"])).await;
    // Edited; to the same body (nothing); by another (FORBIDDEN).
    for _ in 0..2 {
        changed(
            &app,
            "editMessage",
            json!({ "messageId": hello["id"], "body": "hello!" }),
            &ann,
        )
        .await;
    }
    let not_theirs = change(
        &app,
        "editMessage",
        json!({ "messageId": hello["id"], "body": "mine" }),
        &bob,
    )
    .await;
    assert_eq!(error_code(&not_theirs), "FORBIDDEN");
    // Reacted; the same emoji again (nothing); another replaces it; taking
    // back one not theirs (nothing), then theirs.
    for emoji in ["👍", "👍", "❤️"] {
        changed(
            &app,
            "addReaction",
            json!({ "messageId": hello["id"], "emoji": emoji }),
            &bob,
        )
        .await;
    }
    for emoji in ["👍", "❤️"] {
        changed(
            &app,
            "removeReaction",
            json!({ "messageId": hello["id"], "emoji": emoji }),
            &bob,
        )
        .await;
    }
    // Read up to 2; again, and back to 1 (nothing).
    for seq in [2, 2, 1] {
        changed(
            &app,
            "markConversationRead",
            json!({ "conversationId": direct, "upToSeq": seq }),
            &ann,
        )
        .await;
    }
    // Deleted by another in a direct conversation (FORBIDDEN); by its
    // sender; again (nothing).
    assert_eq!(error_code(&delete(&app, &reply, &ann).await), "FORBIDDEN");
    for _ in 0..2 {
        let deleted = delete(&app, &reply, &bob).await;
        assert!(deleted.get("errors").is_none(), "{deleted}");
    }
    // In a group: no recipient; its owner deletes a member's message.
    let group = app.open_group(&ann, "chatters").await;
    app.data(
        "mutation($id: ID!) { requestToJoinGroup(groupId: $id) { joined } }",
        json!({ "id": group["id"] }),
        bob.token(),
    )
    .await;
    let in_group = send(&app, &bob, &group["conversation"]["id"], "hi all", None).await;
    let moderated = delete(&app, &in_group, &ann).await;
    assert!(moderated.get("errors").is_none(), "{moderated}");

    nats.until("message.deleted", 2).await;
    let events = settled(&app, &nats).await;
    assert_no_duplicates(&events);
    assert_no_secrets(&events, &[PASSWORD, &ann.access_token, &bob.refresh_token]);
    let (a, b) = (user_key(&ann), user_key(&bob));
    let direct_id = key(&direct);
    let story: Vec<&Value> = events
        .iter()
        .filter(|e| e["data"]["conversationId"] == direct_id.as_str())
        .collect();
    let summary: Vec<(&str, &str)> = story
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("message.sent", a.as_str()),
            ("message.sent", b.as_str()),
            ("message.edited", a.as_str()),
            ("reaction.added", b.as_str()),
            ("reaction.added", b.as_str()),
            ("reaction.removed", b.as_str()),
            ("conversation.read", a.as_str()),
            ("message.deleted", b.as_str()),
        ],
        "{story:#?}"
    );
    let (hello_id, reply_id) = (key(&hello["id"]), key(&reply["id"]));
    let created_at = |sent: &Value| {
        chrono::DateTime::parse_from_rfc3339(sent["createdAt"].as_str().unwrap()).unwrap()
    };
    let data = |i: usize| story[i]["data"].clone();
    assert_eq!(
        (
            data(0)["messageId"].clone(),
            data(0)["seq"].clone(),
            data(0)["senderId"].clone()
        ),
        (json!(hello_id), json!(1), json!(a))
    );
    assert_eq!(data(0)["recipientId"], b.as_str());
    assert_eq!(data(0)["body"], "hello", "the first body, not the retry's");
    assert_eq!(data(0)["replyToId"], Value::Null);
    assert_eq!(data(0)["attachmentIds"], json!([]));
    let event_created =
        chrono::DateTime::parse_from_rfc3339(data(0)["createdAt"].as_str().unwrap()).unwrap();
    assert_eq!(event_created, created_at(&hello));
    assert_eq!(
        (
            data(1)["messageId"].clone(),
            data(1)["seq"].clone(),
            data(1)["replyToId"].clone()
        ),
        (json!(reply_id), json!(2), json!(hello_id))
    );
    assert_eq!(data(1)["recipientId"], a.as_str());
    assert_eq!(data(2)["body"], "hello!");
    assert_eq!(data(2)["messageId"], hello_id.as_str());
    assert_eq!(data(2)["senderId"], a.as_str());
    assert!(data(2)["editedAt"].is_string());
    let reaction = |emoji: &str| json!({ "messageId": hello_id, "conversationId": direct_id, "userId": b, "emoji": emoji });
    assert_eq!(data(3), reaction("👍"));
    assert_eq!(data(4), reaction("❤️"));
    assert_eq!(data(5), reaction("❤️"));
    assert_eq!(
        data(6),
        json!({ "conversationId": direct_id, "userId": a, "upToSeq": 2 })
    );
    assert_eq!(data(7)["messageId"], reply_id.as_str());
    assert_eq!(data(7)["seq"], 2);
    assert_eq!(data(7)["senderId"], b.as_str());
    assert!(data(7)["deletedAt"].is_string());
    assert!(
        data(7).get("body").is_none(),
        "a tombstone's event has no body"
    );

    let group_story: Vec<&Value> = events
        .iter()
        .filter(|e| e["data"]["conversationId"] == key(&group["conversation"]["id"]).as_str())
        .collect();
    let group_kinds: Vec<&str> = group_story
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(group_kinds, ["message.sent", "message.deleted"]);
    assert_eq!(group_story[0]["data"]["recipientId"], Value::Null);
    assert_eq!(
        group_story[0]["data"]["messageId"],
        key(&in_group["id"]).as_str()
    );
    assert_eq!(group_story[1]["actor"], a.as_str(), "the owner deleted it");
    assert_eq!(group_story[1]["data"]["senderId"], b.as_str());
}

/// Sends into several conversations at once, from both sides of each: on
/// PostgreSQL (`KITH_TEST_DATABASE_URL`) they are written in batches. Each
/// message's event arrives once, and each conversation's in seq order.
#[tokio::test]
async fn concurrent_sends_each_arrive_once_in_their_conversations_order() {
    // The batch metrics read below are process-wide.
    if crate::common::in_own_process(
        module_path!(),
        "concurrent_sends_each_arrive_once_in_their_conversations_order",
    )
    .await
    {
        return;
    }
    let Some(nats) = OwnNats::start().await else {
        return;
    };
    let app = spawn_app_with(|s| {
        s.nats_url = Some(nats.url());
        s.send_batching = kith::config::Switch::On;
    })
    .await;
    const CONVERSATIONS: usize = 4;
    const SENDS: usize = 6;
    const ROUNDS: usize = 3;
    let mut pairs = Vec::new();
    for i in 0..CONVERSATIONS {
        let (a, b) = (
            app.register(&format!("batch_a{i}")).await,
            app.register(&format!("batch_b{i}")).await,
        );
        app.befriend(&a, &b).await;
        let conversation = app.direct_conversation(&a, &b).await;
        pairs.push((a, b, conversation));
    }
    let mut sent = HashSet::new();
    for round in 0..ROUNDS {
        let calls: Vec<(String, Value, &Session)> = pairs
            .iter()
            .enumerate()
            .flat_map(|(c, (a, b, conversation))| {
                (0..SENDS).map(move |s| {
                    let body = format!("c{c} r{round} s{s}");
                    let from = if s % 2 == 0 { a } else { b };
                    (
                        body.clone(),
                        json!({ "c": conversation, "b": body, "k": body }),
                        from,
                    )
                })
            })
            .collect();
        let answers = join_all(
            calls
                .iter()
                .map(|(_, variables, from)| app.graphql(SEND, variables.clone(), from.token())),
        )
        .await;
        for answer in answers {
            assert!(answer.get("errors").is_none(), "{answer:#}");
            sent.insert(key(&answer["data"]["sendMessage"]["id"]));
        }
    }
    let total = CONVERSATIONS * SENDS * ROUNDS;
    assert_eq!(sent.len(), total);

    nats.until("message.sent", total).await;
    let events = settled(&app, &nats).await;
    assert_no_duplicates(&events);
    let messages = of_type(&events, "message.sent");
    assert_eq!(messages.len(), total, "each send once");
    let told: HashSet<String> = messages
        .iter()
        .map(|e| e["data"]["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(told, sent);
    let mut by_conversation: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for event in &messages {
        by_conversation
            .entry(event["data"]["conversationId"].as_str().unwrap())
            .or_default()
            .push(event["data"]["seq"].as_i64().unwrap());
    }
    assert_eq!(by_conversation.len(), CONVERSATIONS);
    let in_order: Vec<i64> = (1..=(SENDS * ROUNDS) as i64).collect();
    for (conversation, seqs) in by_conversation {
        assert_eq!(seqs, in_order, "conversation {conversation}");
    }
    if app.postgres_url().is_some() {
        let drafts = app.metric("kith_send_batch_drafts_sum ").await;
        let batches = app.metric("kith_send_batch_drafts_count ").await;
        assert!(
            drafts > batches,
            "some batch held more than one send ({drafts} drafts in {batches} batches)"
        );
    }
}

/// Two identical reactions and two deletions at once: each change is told
/// once, whichever request made it.
#[tokio::test]
async fn a_repeat_racing_its_first_is_told_once() {
    let Some(nats) = OwnNats::start().await else {
        return;
    };
    let app = spawn_app_with(|s| s.nats_url = Some(nats.url())).await;
    let (ann, bob, direct) = app.friends_chatting().await;
    let message = send(&app, &ann, &direct, "race me", None).await;
    let reaction = json!({ "messageId": message["id"], "emoji": "🎉" });
    for _ in 0..4 {
        let reacted =
            join_all((0..4).map(|_| change(&app, "addReaction", reaction.clone(), &bob))).await;
        for response in reacted {
            assert!(response.get("errors").is_none(), "{response:#}");
        }
    }
    let deleted = join_all((0..4).map(|_| delete(&app, &message, &ann))).await;
    for response in deleted {
        assert!(response.get("errors").is_none(), "{response:#}");
    }
    let events = settled(&app, &nats).await;
    assert_eq!(of_type(&events, "reaction.added").len(), 1, "{events:#?}");
    assert_eq!(of_type(&events, "message.deleted").len(), 1, "{events:#?}");
}
