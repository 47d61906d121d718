//! The `conversationEvents` subscription: everything that happens in one
//! conversation (messages added, edited and deleted, reactions, read receipts,
//! others typing), live, as one union.

use async_graphql::{Context, ID, SimpleObject, Subscription, Union};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use crate::{
    domain::chat::activity::{self, Activity},
    graphql::{
        ContextExt,
        chat::Message,
        ids::{self, NodeKind},
        live,
        users::User,
    },
};

/// A new message.
#[derive(SimpleObject)]
pub struct MessageAddedEvent {
    /// The message.
    pub message: Message,
}

/// A message's body changed.
#[derive(SimpleObject)]
pub struct MessageEditedEvent {
    /// The message, with its new body and `editedAt`.
    pub message: Message,
}

/// A message became a tombstone.
#[derive(SimpleObject)]
pub struct MessageDeletedEvent {
    /// The tombstone: `body` null, `deletedAt` set.
    pub message: Message,
}

/// Someone reacted to a message, changed their reaction, or took it back.
#[derive(SimpleObject)]
pub struct ReactionChangedEvent {
    /// The `Message.id` reacted to.
    pub message_id: ID,
    /// Who reacted; null if their account is gone (or they blocked the
    /// viewer).
    pub user: Option<User>,
    /// Their reaction now; null when they took it back.
    pub emoji: Option<String>,
}

/// Someone read the conversation up to `upToSeq`.
#[derive(SimpleObject)]
pub struct ReadReceiptEvent {
    /// Who read; null if their account is gone (or they blocked the viewer).
    pub user: Option<User>,
    /// The seq they have read up to (their `viewerLastReadSeq`).
    pub up_to_seq: i64,
}

/// Someone started or stopped typing; forget it after `expiresAt`.
#[derive(SimpleObject)]
pub struct TypingEvent {
    /// Who is typing; null if their account is gone (or they blocked the
    /// viewer).
    pub user: Option<User>,
    /// True when they started (or still are), false when they stopped.
    pub typing: bool,
    /// When to stop showing them as typing unless renewed (6 seconds on).
    pub expires_at: DateTime<Utc>,
}

/// One thing that happened in a conversation, told by `conversationEvents`.
#[derive(Union)]
pub enum ConversationEvent {
    MessageAdded(MessageAddedEvent),
    MessageEdited(MessageEditedEvent),
    MessageDeleted(MessageDeletedEvent),
    ReactionChanged(ReactionChangedEvent),
    ReadReceipt(ReadReceiptEvent),
    Typing(TypingEvent),
}

#[derive(Default)]
pub struct ConversationEventsSubscription;

#[Subscription]
impl ConversationEventsSubscription {
    /// Everything that happens in one conversation: messages added, edited and
    /// deleted, reactions, read receipts and others typing. Live only (a client
    /// refetches on resubscribing); ends like `messageAdded`, and after falling
    /// behind, with an error saying so.
    async fn conversation_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The `Conversation.id` to follow; one the viewer does not take part in is `NOT_FOUND`."
        )]
        conversation_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ConversationEvent>> + use<>>
    {
        // Boxed, for memory: see "Boxed setup" in `live`.
        Box::pin(open_conversation_events(ctx, conversation_id)).await
    }
}

async fn open_conversation_events(
    ctx: &Context<'_>,
    conversation_id: ID,
) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ConversationEvent>> + use<>> {
    let viewer = ctx.require_viewer().await?;
    let key = ids::expect(&conversation_id, NodeKind::Conversation)?;
    let state = ctx.state().clone();
    let activity = activity::follow(
        &state.chat,
        state.social.clone(),
        state.db.clone(),
        &state.pubsub,
        viewer.user_id,
        key,
    )
    .await?;
    let events = live::stop_on_lag(activity).map(|next| next.map(ConversationEvent::from));
    Ok(live::while_session_lives(ctx, viewer, events).await?)
}

impl From<Activity> for ConversationEvent {
    fn from(activity: Activity) -> Self {
        match activity {
            Activity::MessageAdded(message) => Self::MessageAdded(MessageAddedEvent {
                message: Message(message),
            }),
            Activity::MessageEdited(message) => Self::MessageEdited(MessageEditedEvent {
                message: Message(message),
            }),
            Activity::MessageDeleted(message) => Self::MessageDeleted(MessageDeletedEvent {
                message: Message(message),
            }),
            Activity::ReactionChanged {
                message_id,
                user,
                emoji,
            } => Self::ReactionChanged(ReactionChangedEvent {
                message_id: ids::encode(NodeKind::Message, message_id),
                user: user.map(User::new),
                emoji,
            }),
            Activity::ReadReceipt { user, up_to_seq } => Self::ReadReceipt(ReadReceiptEvent {
                user: user.map(User::new),
                up_to_seq,
            }),
            Activity::Typing {
                user,
                typing,
                expires_at,
            } => Self::Typing(TypingEvent {
                user: user.map(User::new),
                typing,
                expires_at,
            }),
        }
    }
}
