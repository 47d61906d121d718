//! The `Conversation` type: a conversation as its participant sees it, and its
//! pages of messages.

use async_graphql::{
    Context, Enum, ID, Object,
    connection::{Connection, Edge, EmptyFields},
    dataloader::DataLoader,
};
use chrono::{DateTime, Utc};

use super::{Message, PARTICIPANTS_SHOWN};
use crate::{
    domain::chat::{Kind, Membership, Window},
    error::{AppError, AppResult},
    graphql::{
        ContextExt,
        groups::{Group, load_group},
        ids::{self, NodeKind},
        loaders::{LastMessageLoader, ParticipantsLoader},
        pagination::{Page, decode_cursor, encode_cursor, not_a_cursor, page_size},
        users::{User, load_user},
    },
};

/// Whom a conversation is between.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ConversationKind {
    /// Two users (opened by `directConversation`, or by a match).
    Direct,
    /// A group's members; `Conversation.group` is the group.
    Group,
}

/// A conversation as its participant sees it.
pub struct Conversation(pub Membership);

/// A conversation the viewer takes part in, as they see it (their unread
/// count and read position). Only its participants see it.
#[Object]
impl Conversation {
    /// The conversation's global ID (for `node`, `conversation` and the
    /// message mutations and subscriptions).
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::Conversation, self.0.conversation.id)
    }

    /// Direct or a group's.
    async fn kind(&self) -> ConversationKind {
        match Kind::of(&self.0.conversation) {
            Kind::Direct => ConversationKind::Direct,
            Kind::Group => ConversationKind::Group,
        }
    }

    /// The first 20 participants, in the order they joined (a direct
    /// conversation's two; a group's members, as `Group.members` pages them all).
    #[graphql(
        complexity = "crate::graphql::pagination::list_cost(PARTICIPANTS_SHOWN, child_complexity)"
    )]
    async fn participants(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let ids = ctx
            .data_unchecked::<DataLoader<ParticipantsLoader>>()
            .load_one(self.0.conversation.id)
            .await
            .map_err(|err| AppError::Internal(anyhow::anyhow!("loading participants: {err}")))?
            .unwrap_or_default();
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(user) = load_user(ctx, id).await? {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// The group, for a GROUP conversation; null for a DIRECT one.
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        match self.0.conversation.group_id {
            Some(group_id) => load_group(ctx, group_id).await,
            None => Ok(None),
        }
    }

    /// The latest message (maybe a tombstone); null before the first.
    async fn last_message(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Message>> {
        let conversation = &self.0.conversation;
        if conversation.last_seq == 0 {
            return Ok(None);
        }
        Ok(ctx
            .data_unchecked::<DataLoader<LastMessageLoader>>()
            .load_one((conversation.id, conversation.last_seq))
            .await
            .map_err(|err| AppError::Internal(anyhow::anyhow!("loading a message: {err}")))?
            .map(Message))
    }

    /// Messages after the viewer's read pointer; their own never count.
    async fn unread_count(&self) -> i64 {
        self.0.unread()
    }

    /// The seq of the latest message; 0 before the first.
    async fn last_seq(&self) -> i64 {
        self.0.conversation.last_seq
    }

    /// The highest seq the viewer has read (0 before any); moved by
    /// `markConversationRead`.
    async fn viewer_last_read_seq(&self) -> i64 {
        self.0.participant.last_read_seq
    }

    /// Messages in seq order. `first`/`after` pages forward from the start (or
    /// from a cursor); `last`/`before` pages back from the end (or a cursor).
    /// With neither, the latest 20. Mixing the two directions is
    /// `BAD_USER_INPUT`.
    #[graphql(complexity = "crate::graphql::pagination::cost(first.or(last), child_complexity)")]
    async fn messages(
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
        #[graphql(
            desc = "How many to return, counting back from the end (or from `before`): 0 to 100; 20 when left out."
        )]
        last: Option<i32>,
        #[graphql(
            desc = "A `startCursor` (or edge `cursor`) of the page after: return what comes before it."
        )]
        before: Option<String>,
    ) -> async_graphql::Result<MessageConnection> {
        let forward = first.is_some() || after.is_some();
        if forward && (last.is_some() || before.is_some()) {
            return Err(AppError::bad_input(
                "first",
                "page forward (first/after) or back (last/before), not both",
            )
            .into());
        }
        let chat = &ctx.state().chat;
        let conversation = self.0.conversation.id;
        let (mut rows, has_previous, has_next);
        if forward {
            let page = Page::forward(first, after)?;
            let after_seq = page
                .after
                .as_deref()
                .map(parse_seq)
                .transpose()?
                .unwrap_or(0);
            rows = chat
                .messages(
                    conversation,
                    Window::After {
                        seq: after_seq,
                        limit: page.fetch_limit(),
                    },
                )
                .await?;
            has_next = rows.len() > page.first;
            rows.truncate(page.first);
            has_previous = after_seq > 0;
        } else {
            let count = page_size(last, "last")?;
            let before_seq = before.as_deref().map(decode_seq_cursor).transpose()?;
            rows = chat
                .messages(
                    conversation,
                    Window::Before {
                        seq: before_seq,
                        limit: count as u64 + 1,
                    },
                )
                .await?;
            has_previous = rows.len() > count;
            if has_previous {
                rows.remove(0);
            }
            has_next = before_seq.is_some();
        }
        let mut connection = Connection::new(has_previous, has_next);
        connection.edges.extend(
            rows.into_iter()
                .map(|m| Edge::new(encode_cursor(&m.seq.to_string()), Message(m))),
        );
        Ok(connection)
    }

    /// When it last had a message (or, before any, was opened): what
    /// `conversations` orders by.
    async fn last_activity_at(&self) -> DateTime<Utc> {
        self.0.conversation.last_activity_at
    }

    /// When it was opened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.conversation.created_at
    }
}

pub type MessageConnection = Connection<String, Message, EmptyFields, EmptyFields>;
pub type ConversationConnection = Connection<String, Conversation, EmptyFields, EmptyFields>;

fn parse_seq(text: &str) -> AppResult<i64> {
    text.parse::<i64>().map_err(|_| not_a_cursor())
}

/// The seq inside a `before` cursor.
fn decode_seq_cursor(cursor: &str) -> AppResult<i64> {
    decode_cursor(cursor, "before")?
        .parse::<i64>()
        .map_err(|_| AppError::bad_input("before", "before is not a cursor from this list"))
}
