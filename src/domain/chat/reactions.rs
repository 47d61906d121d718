//! Reactions: one emoji per user per message, counted per emoji.

use std::collections::HashMap;

use entity::message_reaction;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait},
};
use uuid::Uuid;

use super::{Chat, Message, now, outbox_events};
use crate::{
    domain::events::Event,
    error::{AppError, AppResult},
};

/// An emoji may be a sequence (flags, skin tones, families), but not a sentence.
const MAX_EMOJI_CHARS: usize = 10;
/// Different emoji on one message.
pub const MAX_DISTINCT_REACTIONS: usize = 20;

/// One emoji on a message: how many reacted with it, and whether the viewer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    pub viewer_reacted: bool,
}

impl Chat {
    /// Reacts to a message; a user has one reaction per message, so a new emoji
    /// replaces theirs. Reacting with the one you have changes nothing.
    pub async fn react(&self, user: Uuid, message_id: Uuid, emoji: &str) -> AppResult<Message> {
        let emoji = parse_emoji(emoji)?;
        let (message, membership) = self.message_for(user, message_id).await?;
        self.check_may_write(user, &membership).await?;
        if message.deleted_at.is_some() {
            return Err(AppError::conflict("messageId", "the message was deleted"));
        }
        let mine = message_reaction::Entity::find_by_id((message_id, user))
            .one(&self.db)
            .await?;
        if mine.as_ref().is_some_and(|r| r.emoji == emoji) {
            return Ok(message);
        }
        let distinct: Vec<String> = message_reaction::Entity::find()
            .select_only()
            .column(message_reaction::Column::Emoji)
            .distinct()
            .filter(message_reaction::Column::MessageId.eq(message_id))
            .into_tuple()
            .all(&self.db)
            .await?;
        if !distinct.contains(&emoji) && distinct.len() >= MAX_DISTINCT_REACTIONS {
            return Err(AppError::conflict(
                "emoji",
                format!("a message holds at most {MAX_DISTINCT_REACTIONS} different reactions"),
            ));
        }
        let txn = self.db.begin().await?;
        let written = message_reaction::Entity::insert(message_reaction::ActiveModel {
            message_id: Set(message_id),
            user_id: Set(user),
            emoji: Set(emoji.clone()),
            created_at: Set(now()),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                message_reaction::Column::MessageId,
                message_reaction::Column::UserId,
            ])
            .update_columns([
                message_reaction::Column::Emoji,
                message_reaction::Column::CreatedAt,
            ])
            // The emoji they have already is no change (two reactions at
            // once): nothing written, nothing told.
            .action_and_where(
                Expr::col((message_reaction::Entity, message_reaction::Column::Emoji)).ne(
                    Expr::col((Alias::new("excluded"), message_reaction::Column::Emoji)),
                ),
            )
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if written == 0 {
            txn.rollback().await?;
            return Ok(message);
        }
        self.outbox
            .append(
                &txn,
                outbox_events::reaction("reaction.added", user, &message, &emoji),
            )
            .await?;
        txn.commit().await?;
        self.publish(
            message.conversation_id,
            Event::ReactionChanged {
                conversation_id: message.conversation_id,
                message_id,
                user_id: user,
                emoji: Some(emoji),
            },
        );
        Ok(message)
    }

    /// Takes back the user's reaction if it is `emoji`; otherwise changes nothing.
    pub async fn unreact(&self, user: Uuid, message_id: Uuid, emoji: &str) -> AppResult<Message> {
        let emoji = parse_emoji(emoji)?;
        let (message, membership) = self.message_for(user, message_id).await?;
        // Taking a reaction back reaches the other side as adding one does.
        self.check_may_write(user, &membership).await?;
        let txn = self.db.begin().await?;
        let removed = message_reaction::Entity::delete_many()
            .filter(message_reaction::Column::MessageId.eq(message_id))
            .filter(message_reaction::Column::UserId.eq(user))
            .filter(message_reaction::Column::Emoji.eq(&emoji))
            .exec(&txn)
            .await?;
        if removed.rows_affected > 0 {
            self.outbox
                .append(
                    &txn,
                    outbox_events::reaction("reaction.removed", user, &message, &emoji),
                )
                .await?;
        }
        txn.commit().await?;
        if removed.rows_affected > 0 {
            self.publish(
                message.conversation_id,
                Event::ReactionChanged {
                    conversation_id: message.conversation_id,
                    message_id,
                    user_id: user,
                    emoji: None,
                },
            );
        }
        Ok(message)
    }

    /// Each message's reactions as `viewer` sees them, most used first: one query.
    pub async fn reactions(
        &self,
        viewer: Uuid,
        messages: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<Reaction>>, sea_orm::DbErr> {
        let rows = message_reaction::Entity::find()
            .filter(message_reaction::Column::MessageId.is_in(messages.iter().copied()))
            .order_by_asc(message_reaction::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let mut found: HashMap<Uuid, Vec<Reaction>> = HashMap::new();
        for row in rows {
            let list = found.entry(row.message_id).or_default();
            let mine = row.user_id == viewer;
            match list.iter_mut().find(|r| r.emoji == row.emoji) {
                Some(reaction) => {
                    reaction.count += 1;
                    reaction.viewer_reacted |= mine;
                }
                None => list.push(Reaction {
                    emoji: row.emoji,
                    count: 1,
                    viewer_reacted: mine,
                }),
            }
        }
        // Most used first; among equals, the one used first (a stable sort of
        // the rows' order).
        for list in found.values_mut() {
            list.sort_by_key(|r| std::cmp::Reverse(r.count));
        }
        Ok(found)
    }
}

/// A reaction: one emoji (a short sequence at most), no letters or spaces.
pub fn parse_emoji(raw: &str) -> AppResult<String> {
    let emoji = raw.trim();
    let plausible = !emoji.is_empty()
        && emoji.chars().count() <= MAX_EMOJI_CHARS
        && emoji
            .chars()
            .all(|c| !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control());
    if !plausible {
        return Err(AppError::bad_input(
            "emoji",
            format!("emoji must be one emoji (at most {MAX_EMOJI_CHARS} characters)"),
        ));
    }
    Ok(emoji.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactions_are_emoji_not_words() {
        for ok in ["👍", "❤️", "👨‍👩‍👧‍👦", "🇵🇹", " 🎉 "] {
            assert!(parse_emoji(ok).is_ok(), "{ok}");
        }
        for bad in ["", "ok", "👍 👍", "a👍", &"🎉".repeat(11)] {
            assert!(parse_emoji(bad).is_err(), "{bad}");
        }
    }
}
