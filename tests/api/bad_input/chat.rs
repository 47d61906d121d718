//! Conversations and messages.

use serde_json::json;

use super::{Bad::*, Call, Table, World, bad, chars, forbidden, invalid, not_found};

#[rustfmt::skip]
pub fn table(world: &World) -> Table {
    let mut table = Table::default();
    let ann = Some(&world.ann);
    let conversation = &world.ann_bob;
    // `bob` and `cat`'s conversation and a message of it: not `ann`'s.
    let hidden = &world.bob_cat;
    let hidden_message = &world.foreign_message;

    table.add(
        Call::new("directConversation(userId: ID!) { id }", ann, json!({}))
            .ids("userId", &json!(world.bob.user_id), not_found())
            .row("userId", ForeignId, json!(world.dan.user_id), not_found())
            .row("userId", Oneself, json!(world.ann.user_id), bad("userId")),
    );

    table.add(
        Call::new(
            "sendMessage(input: SendMessageInput!) { id }",
            ann,
            json!({ "input": { "conversationId": conversation, "body": "a bad-input row",
                "clientMessageId": "bad-input-row" } }),
        )
        .ids("input.conversationId", conversation, not_found())
        .row("input.conversationId", ForeignId, hidden.clone(), not_found())
        .row("input.body", Empty, json!(""), bad("body"))
        .row("input.body", Blank, json!(" \n\t "), bad("body"))
        .row("input.body", TooLong, chars(4001), bad("body"))
        .row("input.body", WrongFormat, json!("a\u{0}b"), bad("body"))
        .row("input.body", Invalid, json!(42), invalid())
        .missing("input.body")
        .row("input.clientMessageId", Empty, json!(""), bad("clientMessageId"))
        .row("input.clientMessageId", Blank, json!("   "), bad("clientMessageId"))
        .row("input.clientMessageId", TooLong, chars(65), bad("clientMessageId"))
        .row("input.clientMessageId", WrongFormat, json!("a\u{0}b"), bad("clientMessageId"))
        .missing("input.clientMessageId")
        // A reply quotes a message of its own conversation, or nothing.
        .ids("input.replyToId", &world.bob_message, bad("replyToId"))
        .row("input.replyToId", ForeignId, hidden_message.clone(), bad("replyToId"))
        // Attachments are the sender's own, unsent, each once, at most 10.
        .row("input.attachmentIds", ForeignId, json!([world.foreign_attachment]), bad("attachmentIds"))
        .row("input.attachmentIds", WrongTypeId, json!([world.ann_photo]), bad("attachmentIds"))
        .row("input.attachmentIds", WrongFormat, json!(["not-an-id"]), bad("attachmentIds"))
        .row("input.attachmentIds", Empty, json!([""]), bad("attachmentIds"))
        .row("input.attachmentIds", TooLong, json!(vec![&world.ann_attachment; 11]), bad("attachmentIds"))
        .row("input.attachmentIds", WrongFormat, json!([world.ann_attachment, world.ann_attachment]), bad("attachmentIds"))
        .row("input.attachmentIds", Invalid, json!([null]), invalid()),
    );

    table.add(
        Call::new(
            "editMessage(input: EditMessageInput!) { id }",
            ann,
            json!({ "input": { "messageId": world.ann_message, "body": "edited" } }),
        )
        .ids("input.messageId", &world.ann_message, not_found())
        .row("input.messageId", ForeignId, hidden_message.clone(), not_found())
        // `bob`'s message, in `ann`'s conversation: only its sender edits it.
        .row("input.messageId", ForeignId, world.bob_message.clone(), forbidden())
        .row("input.body", Empty, json!(""), bad("body"))
        .row("input.body", Blank, json!("  "), bad("body"))
        .row("input.body", TooLong, chars(4001), bad("body"))
        .row("input.body", WrongFormat, json!("a\u{0}b"), bad("body")),
    );
    table.add(
        Call::new("deleteMessage(messageId: ID!) { id }", ann, json!({}))
            .ids("messageId", &world.ann_message, not_found())
            .row("messageId", ForeignId, hidden_message.clone(), not_found())
            .row("messageId", ForeignId, world.bob_message.clone(), forbidden()),
    );

    for reaction in [
        "addReaction(input: ReactionInput!) { id }",
        "removeReaction(input: ReactionInput!) { id }",
    ] {
        table.add(
            Call::new(
                reaction,
                ann,
                json!({ "input": { "messageId": world.bob_message, "emoji": "👍" } }),
            )
            .ids("input.messageId", &world.bob_message, not_found())
            .row("input.messageId", ForeignId, hidden_message.clone(), not_found())
            .row("input.emoji", Empty, json!(""), bad("emoji"))
            .row("input.emoji", Blank, json!("  "), bad("emoji"))
            .row("input.emoji", TooLong, json!("👍".repeat(20)), bad("emoji"))
            .row("input.emoji", WrongFormat, json!("ok"), bad("emoji"))
            .row("input.emoji", WrongFormat, json!("👍\u{0}"), bad("emoji")),
        );
    }

    table.add(
        Call::new(
            "setTyping(input: SetTypingInput!)",
            ann,
            json!({ "input": { "conversationId": conversation, "typing": true } }),
        )
        .ids("input.conversationId", conversation, not_found())
        .row("input.conversationId", ForeignId, hidden.clone(), not_found()),
    );
    table.add(
        Call::new(
            "markConversationRead(input: MarkConversationReadInput!) { id }",
            ann,
            json!({ "input": { "conversationId": conversation, "upToSeq": 2 } }),
        )
        .ids("input.conversationId", conversation, not_found())
        .row("input.conversationId", ForeignId, hidden.clone(), not_found())
        .row("input.upToSeq", OutOfRange, json!(-1), bad("upToSeq"))
        .row("input.upToSeq", OutOfRange, json!(i64::from(i32::MAX) + 1), invalid())
        .row("input.upToSeq", Invalid, json!("2"), invalid()),
    );
    table
}

#[tokio::test]
async fn chat_refuses_bad_input_and_writes_nothing() {
    super::run_table(table).await;
}
