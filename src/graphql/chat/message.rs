//! The `Message` type and its reactions.

use async_graphql::{Context, ID, Object, SimpleObject, dataloader::DataLoader};
use chrono::{DateTime, Utc};

use super::{Conversation, PARTICIPANTS_SHOWN};
use crate::{
    domain::chat::Message as ChatMessage,
    error::AppError,
    graphql::{
        ContextExt,
        ids::{self, NodeKind},
        loaders::{ReactionsLoader, ReadersLoader},
        media::{self, Attachment},
        users::{User, load_user},
    },
};

pub struct Message(pub ChatMessage);

/// A message in a conversation. Only the conversation's participants see it.
/// A deleted message stays in its place as a tombstone: `body` null,
/// `deletedAt` set.
#[Object]
impl Message {
    /// The message's global ID (for `node`, replies, edits and reactions).
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::Message, self.0.id)
    }

    /// 1, 2, 3… within the conversation, with no gaps.
    async fn seq(&self) -> i64 {
        self.0.seq
    }

    /// The conversation it is in; null once the viewer no longer takes part
    /// in it.
    async fn conversation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Conversation>> {
        let viewer = ctx.require_viewer().await?;
        Ok(ctx
            .state()
            .chat
            .membership(viewer.user_id, self.0.conversation_id)
            .await?
            .map(Conversation))
    }

    /// Null once the sender's account is deleted.
    async fn sender(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.sender_id {
            Some(id) => Ok(load_user(ctx, id).await?),
            None => Ok(None),
        }
    }

    /// The text, up to 4000 characters (empty only when the message carries
    /// attachments). Null once the message is deleted (a
    /// tombstone keeps its place).
    async fn body(&self) -> Option<&str> {
        self.0.deleted_at.is_none().then_some(self.0.body.as_str())
    }

    /// The message this one answers (maybe a tombstone by now); null when
    /// it answers none.
    async fn reply_to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Message>> {
        let Some(reply_to) = self.0.reply_to_id else {
            return Ok(None);
        };
        let replied = ctx
            .state()
            .chat
            .messages_by_id(&[reply_to])
            .await?
            .into_iter()
            .next();
        Ok(replied.map(Message))
    }

    /// Images sent with it (at most 10), in upload order; empty once the
    /// message is deleted. Only the conversation's participants see them.
    #[graphql(
        complexity = "crate::graphql::pagination::list_cost(crate::domain::media::MAX_ATTACHMENTS_PER_MESSAGE, child_complexity)"
    )]
    async fn attachments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Attachment>> {
        if self.0.deleted_at.is_some() {
            return Ok(Vec::new());
        }
        Ok(media::attachments_of(ctx, self.0.id).await?)
    }

    /// Each emoji with its count, most used first: at most 20 different ones.
    #[graphql(
        complexity = "crate::graphql::pagination::list_cost(crate::domain::chat::MAX_DISTINCT_REACTIONS, child_complexity)"
    )]
    async fn reactions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Reaction>> {
        let viewer = ctx.require_viewer().await?;
        Ok(ctx
            .data_unchecked::<DataLoader<ReactionsLoader>>()
            .load_one((viewer.user_id, self.0.id))
            .await
            .map_err(|err| AppError::Internal(anyhow::anyhow!("loading reactions: {err}")))?
            .unwrap_or_default()
            .into_iter()
            .map(|r| Reaction {
                emoji: r.emoji,
                count: r.count,
                viewer_reacted: r.viewer_reacted,
            })
            .collect())
    }

    /// Participants other than the sender who have read this far: the first
    /// 20, in the order they joined.
    #[graphql(
        complexity = "crate::graphql::pagination::list_cost(PARTICIPANTS_SHOWN, child_complexity)"
    )]
    async fn read_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let readers = ctx
            .data_unchecked::<DataLoader<ReadersLoader>>()
            .load_one((self.0.conversation_id, self.0.seq))
            .await
            .map_err(|err| AppError::Internal(anyhow::anyhow!("loading readers: {err}")))?
            .unwrap_or_default();
        let mut users = Vec::new();
        for id in readers
            .into_iter()
            .filter(|id| Some(*id) != self.0.sender_id)
        {
            if users.len() == PARTICIPANTS_SHOWN {
                break;
            }
            if let Some(user) = load_user(ctx, id).await? {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// When it was sent.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When its body last changed; null if never edited.
    async fn edited_at(&self) -> Option<DateTime<Utc>> {
        self.0.edited_at
    }

    /// When it was deleted; null while it stands.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }
}

/// One emoji on a message.
#[derive(SimpleObject)]
pub struct Reaction {
    /// The emoji (at most 10 characters: one emoji, maybe a sequence).
    pub emoji: String,
    /// How many participants reacted with it.
    pub count: i64,
    /// True when the viewer's own reaction is this emoji.
    pub viewer_reacted: bool,
}
