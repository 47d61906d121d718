//! Conversations and messages in GraphQL: the `Conversation` and `Message` types,
//! `conversations`, `conversation`, the message mutations, and the `messageAdded`
//! subscription (its stream is `message_feed`; `conversationEvents` is
//! `conversation_events`).

use async_graphql::{
    Context, Enum, ID, InputObject, Object, SimpleObject, Subscription,
    connection::{Connection, Edge, EmptyFields},
    dataloader::DataLoader,
};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use crate::{
    domain::{
        chat::{Kind, Membership, Message as ChatMessage, Outgoing, Window},
        groups,
    },
    error::{AppError, AppResult},
    graphql::{
        ContextExt,
        groups::{Group, load_group},
        ids::{self, NodeKind},
        live,
        loaders::{LastMessageLoader, ParticipantsLoader, ReactionsLoader, ReadersLoader},
        message_feed::{Feed, listen_each},
        pagination::{Page, decode_cursor, encode_cursor, not_a_cursor, page_size},
        users::{User, load_user},
    },
    infra::ratelimit::Action,
};

/// How many participants `Conversation.participants` lists.
pub const PARTICIPANTS_SHOWN: usize = 20;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ConversationKind {
    Direct,
    Group,
}

/// A conversation as its participant sees it.
pub struct Conversation(pub Membership);

#[Object]
impl Conversation {
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::Conversation, self.0.conversation.id)
    }

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

    /// The group, for a GROUP conversation.
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        match self.0.conversation.group_id {
            Some(group_id) => load_group(ctx, group_id).await,
            None => Ok(None),
        }
    }

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

    /// The highest seq the viewer has read.
    async fn viewer_last_read_seq(&self) -> i64 {
        self.0.participant.last_read_seq
    }

    /// Messages in seq order. `first`/`after` pages forward from the start (or
    /// from a cursor); `last`/`before` pages back from the end (or a cursor).
    /// With neither, the latest 20. Cursors are seqs.
    #[graphql(complexity = "crate::graphql::pagination::cost(first.or(last), child_complexity)")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
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

    async fn last_activity_at(&self) -> DateTime<Utc> {
        self.0.conversation.last_activity_at
    }

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

pub struct Message(pub ChatMessage);

#[Object]
impl Message {
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::Message, self.0.id)
    }

    /// 1, 2, 3… within the conversation, with no gaps.
    async fn seq(&self) -> i64 {
        self.0.seq
    }

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

    /// Null once the message is deleted (a tombstone keeps its place).
    async fn body(&self) -> Option<&str> {
        self.0.deleted_at.is_none().then_some(self.0.body.as_str())
    }

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

    /// Each emoji with its count, most used first.
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

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn edited_at(&self) -> Option<DateTime<Utc>> {
        self.0.edited_at
    }

    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }
}

/// One emoji on a message.
#[derive(SimpleObject)]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    pub viewer_reacted: bool,
}

#[derive(Default)]
pub struct ChatQuery;

#[Object]
impl ChatQuery {
    /// The viewer's conversations, most recent activity first.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
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

    /// Null unless the viewer takes part in it.
    async fn conversation(
        &self,
        ctx: &Context<'_>,
        id: ID,
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

#[derive(InputObject)]
pub struct SendMessageInput {
    pub conversation_id: ID,
    /// 1 to 4000 characters.
    pub body: String,
    /// Your own id for this message (1 to 64 characters): sending again with
    /// the same one returns the first message and notifies nobody twice.
    pub client_message_id: String,
    pub reply_to_id: Option<ID>,
}

#[derive(InputObject)]
pub struct EditMessageInput {
    pub message_id: ID,
    /// 1 to 4000 characters.
    pub body: String,
}

#[derive(InputObject)]
pub struct ReactionInput {
    pub message_id: ID,
    /// One emoji; you have one reaction per message, so a new one replaces yours.
    pub emoji: String,
}

#[derive(InputObject)]
pub struct SetTypingInput {
    pub conversation_id: ID,
    pub typing: bool,
}

#[derive(InputObject)]
pub struct MarkConversationReadInput {
    pub conversation_id: ID,
    /// Everything up to this seq is read (never moves back).
    pub up_to_seq: i64,
}

#[derive(Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    /// The conversation between you and a user you may message (friends, by
    /// default; never across a block), opened on first use.
    async fn direct_conversation(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<Conversation> {
        let viewer = ctx.require_viewer().await?;
        let other = ids::expect(&user_id, NodeKind::User)?;
        Ok(Conversation(
            ctx.state()
                .chat
                .direct_conversation(viewer.user_id, other)
                .await?,
        ))
    }

    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> async_graphql::Result<Message> {
        let viewer = ctx.require_viewer().await?;
        ctx.state()
            .limiter
            .check(Action::MessagePerUser, &viewer.user_id.to_string())
            .await?;
        let conversation_id = ids::expect(&input.conversation_id, NodeKind::Conversation)?;
        let reply_to_id = input
            .reply_to_id
            .as_ref()
            .map(|id| {
                ids::decode_as(id, NodeKind::Message).ok_or_else(|| {
                    AppError::bad_input(
                        "replyToId",
                        "replyToId is not a message of this conversation",
                    )
                })
            })
            .transpose()?;
        let message = ctx
            .state()
            .chat
            .send(
                viewer.user_id,
                Outgoing {
                    conversation_id,
                    body: input.body,
                    client_message_id: input.client_message_id,
                    reply_to_id,
                },
            )
            .await?;
        Ok(Message(message))
    }

    /// Changes your message's body.
    async fn edit_message(
        &self,
        ctx: &Context<'_>,
        input: EditMessageInput,
    ) -> async_graphql::Result<Message> {
        let viewer = ctx.require_viewer().await?;
        let id = ids::expect(&input.message_id, NodeKind::Message)?;
        Ok(Message(
            ctx.state()
                .chat
                .edit(viewer.user_id, id, &input.body)
                .await?,
        ))
    }

    /// Leaves a tombstone in the message's place: its sender, or an owner or
    /// admin of the group.
    async fn delete_message(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
    ) -> async_graphql::Result<Message> {
        let viewer = ctx.require_viewer().await?;
        let id = ids::expect(&message_id, NodeKind::Message)?;
        let state = ctx.state();
        // Whether the viewer runs the group, should the message be another's
        // in a group's conversation: the groups domain's to say.
        let moderates = async |group_id| {
            Ok(groups::role_of(&state.db, group_id, viewer.user_id)
                .await?
                .is_some_and(groups::Role::manages))
        };
        Ok(Message(
            state.chat.delete(viewer.user_id, id, moderates).await?,
        ))
    }

    async fn add_reaction(
        &self,
        ctx: &Context<'_>,
        input: ReactionInput,
    ) -> async_graphql::Result<Message> {
        let viewer = ctx.require_viewer().await?;
        let id = ids::expect(&input.message_id, NodeKind::Message)?;
        Ok(Message(
            ctx.state()
                .chat
                .react(viewer.user_id, id, &input.emoji)
                .await?,
        ))
    }

    async fn remove_reaction(
        &self,
        ctx: &Context<'_>,
        input: ReactionInput,
    ) -> async_graphql::Result<Message> {
        let viewer = ctx.require_viewer().await?;
        let id = ids::expect(&input.message_id, NodeKind::Message)?;
        Ok(Message(
            ctx.state()
                .chat
                .unreact(viewer.user_id, id, &input.emoji)
                .await?,
        ))
    }

    /// Tells the conversation you are typing (or stopped). Nothing is stored;
    /// the indicator expires by itself after a few seconds unless renewed.
    async fn set_typing(
        &self,
        ctx: &Context<'_>,
        input: SetTypingInput,
    ) -> async_graphql::Result<bool> {
        let viewer = ctx.require_viewer().await?;
        let id = ids::expect(&input.conversation_id, NodeKind::Conversation)?;
        let state = ctx.state();
        state
            .limiter
            .check(Action::TypingPerUser, &viewer.user_id.to_string())
            .await?;
        state
            .chat
            .set_typing(viewer.user_id, id, input.typing)
            .await?;
        Ok(true)
    }

    async fn mark_conversation_read(
        &self,
        ctx: &Context<'_>,
        input: MarkConversationReadInput,
    ) -> async_graphql::Result<Conversation> {
        let viewer = ctx.require_viewer().await?;
        let conversation_id = ids::expect(&input.conversation_id, NodeKind::Conversation)?;
        Ok(Conversation(
            ctx.state()
                .chat
                .mark_read(viewer.user_id, conversation_id, input.up_to_seq)
                .await?,
        ))
    }
}

#[derive(Default)]
pub struct ChatSubscription;

#[Subscription]
impl ChatSubscription {
    /// New messages, the viewer's own included (their other devices), of one
    /// conversation, or of all the viewer's when `conversationId` is left out
    /// (the most recent 1,000, and any they join meanwhile). With `sinceSeq`
    /// (one conversation only), first every stored message after it, then live
    /// ones: in seq order, with no gap and no duplicate. A conversation's feed
    /// ends when the viewer leaves it (removed from the group, or a block).
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        conversation_id: Option<ID>,
        since_seq: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Message>> + use<>> {
        // Boxed, for memory: see "Boxed setup" in `live`.
        Box::pin(open_message_added(ctx, conversation_id, since_seq)).await
    }
}

async fn open_message_added(
    ctx: &Context<'_>,
    conversation_id: Option<ID>,
    since_seq: Option<i64>,
) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Message>> + use<>> {
    let viewer = ctx.require_viewer().await?;
    if since_seq.is_some_and(|seq| seq < 0) {
        return Err(AppError::bad_input("sinceSeq", "sinceSeq must not be negative").into());
    }
    let state = ctx.state().clone();
    let feed = match conversation_id {
        None if since_seq.is_some() => {
            return Err(AppError::bad_input(
                "sinceSeq",
                "sinceSeq needs a conversationId: seqs count within one conversation",
            )
            .into());
        }
        None => Feed::everything(state.chat.clone(), state.pubsub.clone(), viewer.user_id).await?,
        Some(id) => {
            let key = ids::expect(&id, NodeKind::Conversation)?;
            let not_found = || AppError::not_found("conversation not found");
            let conversation = state.chat.find(key).await?.ok_or_else(not_found)?;
            // Listen first, then check access and read where the
            // conversation stands: nothing sent or revoked in between is
            // missed.
            let live = listen_each(&state.pubsub, key, viewer.user_id, conversation.group_id).await;
            let membership = state
                .chat
                .readable(viewer.user_id, key)
                .await?
                .ok_or_else(not_found)?;
            let conversation = membership.conversation;
            if since_seq.is_some_and(|seq| seq > conversation.last_seq) {
                return Err(AppError::bad_input(
                    "sinceSeq",
                    format!(
                        "sinceSeq is past the conversation's last message ({})",
                        conversation.last_seq
                    ),
                )
                .into());
            }
            let last = since_seq.unwrap_or(conversation.last_seq);
            Feed::one(
                state.chat.clone(),
                state.pubsub.clone(),
                viewer.user_id,
                conversation,
                live,
                last,
                since_seq.is_some(),
            )
        }
    };
    let messages = futures_util::stream::unfold(feed, Feed::next).map(|m| m.map(Message));
    Ok(live::while_session_lives(ctx, viewer, messages).await?)
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
