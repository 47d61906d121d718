//! Reading, editing and deleting messages.

use entity::{message, message_reaction};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{Chat, Membership, Message, message_not_found, now, outbox_events};
use crate::{
    domain::{events::Event, media},
    error::{AppError, AppResult},
};

pub const MAX_BODY_CHARS: usize = 4000;

/// Which messages of a conversation, by seq.
#[derive(Clone, Copy, Debug)]
pub enum Window {
    /// The first `limit` after `seq` (0 for the start), oldest first.
    After { seq: i64, limit: u64 },
    /// The last `limit` before `seq` (`None` for the end), returned oldest first.
    Before { seq: Option<i64>, limit: u64 },
}

impl Chat {
    /// A window of the conversation's messages, oldest first. Callers check the
    /// viewer takes part.
    pub async fn messages(&self, conversation_id: Uuid, window: Window) -> AppResult<Vec<Message>> {
        let select =
            message::Entity::find().filter(message::Column::ConversationId.eq(conversation_id));
        let mut rows = match window {
            Window::After { seq, limit } => {
                select
                    .filter(message::Column::Seq.gt(seq))
                    .order_by_asc(message::Column::Seq)
                    .limit(limit)
                    .all(&self.db)
                    .await?
            }
            Window::Before { seq, limit } => {
                let select = match seq {
                    Some(seq) => select.filter(message::Column::Seq.lt(seq)),
                    None => select,
                };
                let mut rows = select
                    .order_by_desc(message::Column::Seq)
                    .limit(limit)
                    .all(&self.db)
                    .await?;
                rows.reverse();
                rows
            }
        };
        Ok(rows.drain(..).map(Message::from).collect())
    }

    /// Messages by id, whatever their conversation: callers check the viewer
    /// may see them (a reply's original is in the reply's conversation).
    pub async fn messages_by_id(&self, ids: &[Uuid]) -> AppResult<Vec<Message>> {
        Ok(message::Entity::find()
            .filter(message::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(Message::from)
            .collect())
    }

    /// Changes a message's body: its sender only, until it is deleted. The
    /// same body again changes nothing.
    pub async fn edit(&self, editor: Uuid, message_id: Uuid, body: &str) -> AppResult<Message> {
        let body = parse_body(body)?;
        let (message, membership) = self.message_for(editor, message_id).await?;
        self.check_may_write(editor, &membership).await?;
        if message.sender_id != Some(editor) {
            return Err(AppError::forbidden("only its sender may edit a message"));
        }
        if message.deleted_at.is_some() {
            return Err(AppError::conflict("messageId", "the message was deleted"));
        }
        if message.body == body {
            return Ok(message);
        }
        let txn = self.db.begin().await?;
        // Only a live message: a delete that won the race keeps its tombstone.
        let updated = message::Entity::update_many()
            .col_expr(message::Column::Body, Expr::value(body))
            .col_expr(message::Column::EditedAt, Expr::value(now()))
            .filter(message::Column::Id.eq(message_id))
            .filter(message::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            return Err(AppError::conflict("messageId", "the message was deleted"));
        }
        let edited = message::Entity::find_by_id(message_id)
            .one(&txn)
            .await?
            .ok_or_else(message_not_found)?;
        let message = Message::from(edited);
        self.outbox
            .append(&txn, outbox_events::message_edited(editor, &message))
            .await?;
        txn.commit().await?;
        self.publish(
            message.conversation_id,
            Event::MessageEdited {
                message: message.clone(),
            },
        );
        Ok(message)
    }

    /// Turns a message into a tombstone (its place and seq stay, its body and
    /// reactions go): its sender, or an owner or admin of the group. Deleting
    /// again changes nothing.
    ///
    /// Who runs a group is the groups domain's to say, and it sits above chat:
    /// the caller answers `moderates(group_id)`, whether the actor is an owner or
    /// admin of that group, asked only when they delete another's message in a
    /// group's conversation.
    pub async fn delete<Moderates>(
        &self,
        actor: Uuid,
        message_id: Uuid,
        moderates: impl FnOnce(Uuid) -> Moderates,
    ) -> AppResult<Message>
    where
        Moderates: Future<Output = AppResult<bool>>,
    {
        let (message, membership) = self.message_for(actor, message_id).await?;
        // A tombstone reaches the other side like an edit: not after an
        // unmatch.
        self.check_may_write(actor, &membership).await?;
        if message.sender_id != Some(actor) {
            let moderates = match membership.conversation.group_id {
                Some(group_id) => moderates(group_id).await?,
                None => false,
            };
            if !moderates {
                return Err(AppError::forbidden(
                    "only its sender, or a group's owner or admins, may delete a message",
                ));
            }
        }
        if message.deleted_at.is_some() {
            return Ok(message);
        }
        let txn = self.db.begin().await?;
        // Only a live message: of two deletions at once, one tombstones it
        // and tells; the other changes nothing.
        let tombstoned = message::Entity::update_many()
            .col_expr(message::Column::Body, Expr::value(""))
            .col_expr(message::Column::DeletedAt, Expr::value(now()))
            .filter(message::Column::Id.eq(message_id))
            .filter(message::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
        let deleted = message::Entity::find_by_id(message_id)
            .one(&txn)
            .await?
            .ok_or_else(message_not_found)?;
        if tombstoned.rows_affected == 0 {
            return Ok(Message::from(deleted));
        }
        message_reaction::Entity::delete_many()
            .filter(message_reaction::Column::MessageId.eq(message_id))
            .exec(&txn)
            .await?;
        // Its pictures go with its body (the media sweeper removes them).
        media::release_message_attachments(&txn, message_id).await?;
        let message = Message::from(deleted);
        self.outbox
            .append(&txn, outbox_events::message_deleted(actor, &message))
            .await?;
        txn.commit().await?;
        self.publish(
            message.conversation_id,
            Event::MessageDeleted {
                message: message.clone(),
            },
        );
        Ok(message)
    }

    /// A message of a conversation the viewer takes part in (its history
    /// stays theirs to read across a block), with their place in it;
    /// `NOT_FOUND` otherwise. Whether they may still write to it is
    /// `check_may_write`'s to say, as for a send: across a block, `NOT_FOUND`
    /// to the one blocked, `FORBIDDEN` to the blocker.
    pub(super) async fn message_for(
        &self,
        viewer: Uuid,
        message_id: Uuid,
    ) -> AppResult<(Message, Membership)> {
        let message = message::Entity::find_by_id(message_id)
            .one(&self.db)
            .await?
            .ok_or_else(message_not_found)?;
        let membership = self
            .membership(viewer, message.conversation_id)
            .await?
            .ok_or_else(message_not_found)?;
        Ok((Message::from(message), membership))
    }
}

/// A message body: trimmed, 1 to 4000 characters, with no control characters
/// but line breaks and tabs (PostgreSQL cannot even store a NUL).
pub fn parse_body(raw: &str) -> AppResult<String> {
    let body = raw.trim();
    if body.is_empty() || body.chars().count() > MAX_BODY_CHARS {
        return Err(AppError::bad_input(
            "body",
            format!("body must be 1 to {MAX_BODY_CHARS} characters"),
        ));
    }
    if body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(AppError::bad_input(
            "body",
            "body contains control characters",
        ));
    }
    Ok(body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_trimmed_and_bounded() {
        assert_eq!(parse_body("  hi  ").unwrap(), "hi");
        assert!(parse_body(" \n ").is_err());
        assert!(parse_body(&"x".repeat(MAX_BODY_CHARS + 1)).is_err());
        assert!(parse_body(&"é".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(parse_body("a\tb\r\nc").is_ok());
        assert!(parse_body("a\u{0}b").is_err());
    }
}
