//! Conversations and messages in GraphQL: the `Conversation` and `Message` types,
//! `conversations`, `conversation`, the message mutations, and the `messageAdded`
//! subscription (its stream is `domain::chat::feed`; `conversationEvents` is
//! `conversation_events`).
//!
//! - `conversation`: the `Conversation` type and its message pages.
//! - `message`: the `Message` type.
//! - `mutations`: sending, editing, deleting, reacting, typing, read marks.
//! - `subscription`: `messageAdded`.

mod conversation;
mod message;
mod mutations;
mod subscription;

pub use conversation::{Conversation, ConversationConnection, ConversationKind, MessageConnection};
pub use message::{Message, Reaction};
pub use mutations::{
    ChatMutation, EditMessageInput, MarkConversationReadInput, ReactionInput, SendMessageInput,
    SetTypingInput,
};
pub use subscription::ChatSubscription;

use async_graphql::{
    Context, ID, Object,
    connection::{Connection, Edge},
};
use chrono::DateTime;
use uuid::Uuid;

use crate::{
    error::AppError,
    graphql::{
        ContextExt,
        ids::{self, NodeKind},
        pagination::{Page, encode_cursor, not_a_cursor},
    },
};

/// How many participants `Conversation.participants` lists.
pub const PARTICIPANTS_SHOWN: usize = 20;

#[derive(Default)]
pub struct ChatQuery;

#[Object]
impl ChatQuery {
    /// The viewer's conversations (direct and group), most recent activity
    /// first.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "How many to return: 0 to 100 (more is `BAD_USER_INPUT`); 20 when left out."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "An `endCursor` (or edge `cursor`) of the previous page: return what comes after it."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<ConversationConnection> {
        let viewer = ctx.require_viewer().await?;
        let page = Page::forward(first, after)?;
        // The cursor is `activity-in-micros:id`.
        let after = page
            .after
            .as_deref()
            .map(|cursor| {
                let (micros, id) = cursor.split_once(':').ok_or_else(not_a_cursor)?;
                let micros = micros.parse::<i64>().map_err(|_| not_a_cursor())?;
                let at = DateTime::from_timestamp_micros(micros).ok_or_else(not_a_cursor)?;
                Ok::<_, AppError>((at, Uuid::try_parse(id).map_err(|_| not_a_cursor())?))
            })
            .transpose()?;
        let mut found = ctx
            .state()
            .chat
            .conversations(viewer.user_id, after, page.fetch_limit())
            .await?;
        let has_next = found.len() > page.first;
        found.truncate(page.first);
        let mut connection = Connection::new(page.after.is_some(), has_next);
        connection.edges.extend(found.into_iter().map(|membership| {
            let cursor = format!(
                "{}:{}",
                membership.conversation.last_activity_at.timestamp_micros(),
                membership.conversation.id
            );
            Edge::new(encode_cursor(&cursor), Conversation(membership))
        }));
        Ok(connection)
    }

    /// A conversation by ID; null unless the viewer takes part in it.
    async fn conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A `Conversation.id`.")] id: ID,
    ) -> async_graphql::Result<Option<Conversation>> {
        let Some(key) = ids::decode_as(&id, NodeKind::Conversation) else {
            return Ok(None);
        };
        find_conversation(ctx, key).await
    }
}

/// A conversation the viewer takes part in; null for anyone else.
pub async fn find_conversation(
    ctx: &Context<'_>,
    id: Uuid,
) -> async_graphql::Result<Option<Conversation>> {
    let Some(viewer) = ctx.viewer().await? else {
        return Ok(None);
    };
    Ok(ctx
        .state()
        .chat
        .membership(viewer.user_id, id)
        .await?
        .map(Conversation))
}

/// The GROUP conversation of a group, for `Group.conversation`.
pub async fn group_conversation(
    ctx: &Context<'_>,
    group_id: Uuid,
) -> async_graphql::Result<Option<Conversation>> {
    let Some(viewer) = ctx.viewer().await? else {
        return Ok(None);
    };
    Ok(ctx
        .state()
        .chat
        .group_membership(viewer.user_id, group_id)
        .await?
        .map(Conversation))
}
