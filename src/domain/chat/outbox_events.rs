//! What the chat domain tells services outside kith: the events it appends
//! to the outbox in its changes' transactions (`docs/events.md` lists them).
//! A message's event carries its body: notifications and moderation read it.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{Message, send::Draft};
use crate::domain::outbox::DomainEvent;

/// What every message event says of its message.
fn message_data(message: &Message) -> Value {
    json!({
        "messageId": message.id,
        "conversationId": message.conversation_id,
        "seq": message.seq,
        "senderId": message.sender_id,
    })
}

/// `message.sent`: `message` as `draft` wrote it.
pub(super) fn message_sent(draft: &Draft, message: &Message) -> DomainEvent {
    let mut data = message_data(message);
    data["recipientId"] = json!(draft.recipient);
    data["body"] = json!(message.body);
    data["replyToId"] = json!(message.reply_to_id);
    data["attachmentIds"] = json!(draft.attachment_ids);
    data["createdAt"] = json!(message.created_at);
    DomainEvent::new("message.sent", Some(draft.sender), data)
}

pub(super) fn message_edited(editor: Uuid, message: &Message) -> DomainEvent {
    let mut data = message_data(message);
    data["body"] = json!(message.body);
    data["editedAt"] = json!(message.edited_at);
    DomainEvent::new("message.edited", Some(editor), data)
}

/// `message.deleted`, by its sender or a group's owner or admin (`actor`).
pub(super) fn message_deleted(actor: Uuid, message: &Message) -> DomainEvent {
    let mut data = message_data(message);
    data["deletedAt"] = json!(message.deleted_at);
    DomainEvent::new("message.deleted", Some(actor), data)
}

/// `reaction.added` (with the emoji that replaced any earlier one) or
/// `reaction.removed`.
pub(super) fn reaction(
    kind: &'static str,
    user: Uuid,
    message: &Message,
    emoji: &str,
) -> DomainEvent {
    DomainEvent::new(
        kind,
        Some(user),
        json!({
            "messageId": message.id,
            "conversationId": message.conversation_id,
            "userId": user,
            "emoji": emoji,
        }),
    )
}

pub(super) fn conversation_read(
    viewer: Uuid,
    conversation_id: Uuid,
    up_to_seq: i64,
) -> DomainEvent {
    DomainEvent::new(
        "conversation.read",
        Some(viewer),
        json!({ "conversationId": conversation_id, "userId": viewer, "upToSeq": up_to_seq }),
    )
}
