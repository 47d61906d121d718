//! The `conversationEvents` subscription: everything that happens in one
//! conversation (messages added, edited and deleted, reactions, read receipts,
//! others typing), live, as one union.

use std::sync::Arc;

use async_graphql::{Context, ID, SimpleObject, Subscription, Union};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use crate::{
    domain::events::Event,
    error::AppError,
    graphql::{
        ContextExt,
        chat::Message,
        ids::{self, NodeKind},
        live,
        message_feed::{ends_access, listen},
        users::User,
    },
};

/// A new message.
#[derive(SimpleObject)]
pub struct MessageAddedEvent {
    pub message: Message,
}

/// A message's body changed.
#[derive(SimpleObject)]
pub struct MessageEditedEvent {
    pub message: Message,
}

/// A message became a tombstone.
#[derive(SimpleObject)]
pub struct MessageDeletedEvent {
    pub message: Message,
}

/// Someone reacted to a message, changed their reaction, or took it back.
#[derive(SimpleObject)]
pub struct ReactionChangedEvent {
    pub message_id: ID,
    pub user: Option<User>,
    /// Their reaction now; null when they took it back.
    pub emoji: Option<String>,
}

/// Someone read the conversation up to `upToSeq`.
#[derive(SimpleObject)]
pub struct ReadReceiptEvent {
    pub user: Option<User>,
    pub up_to_seq: i64,
}

/// Someone started or stopped typing; forget it after `expiresAt`.
#[derive(SimpleObject)]
pub struct TypingEvent {
    pub user: Option<User>,
    pub typing: bool,
    pub expires_at: DateTime<Utc>,
}

#[derive(Union)]
pub enum ConversationEvent {
    MessageAdded(MessageAddedEvent),
    MessageEdited(MessageEditedEvent),
    MessageDeleted(MessageDeletedEvent),
    ReactionChanged(ReactionChangedEvent),
    ReadReceipt(ReadReceiptEvent),
    Typing(TypingEvent),
}

/// What a conversation's subscriber makes of an event: something to deliver,
/// the end of their access, or nothing.
enum Seen {
    Deliver(Box<async_graphql::Result<ConversationEvent>>),
    End,
    Ignore,
}

/// The user an event names, as the viewer may see them (a user who blocked the
/// viewer shows as null).
async fn event_user(context: &EventContext, id: Uuid) -> Option<User> {
    if id != context.viewer && context.social.hides_from(id, context.viewer).await.ok()? {
        return None;
    }
    crate::domain::users::find(&context.db, id)
        .await
        .ok()
        .flatten()
        .map(User::new)
}

/// What turning events into `ConversationEvent`s needs, owned by the stream.
struct EventContext {
    db: crate::infra::db::Db,
    social: crate::domain::social::Social,
    conversation: entity::conversation::Model,
    viewer: Uuid,
}

impl EventContext {
    async fn see(&self, event: &Event) -> Seen {
        if ends_access(event, &self.conversation, self.viewer) {
            return Seen::End;
        }
        let ours = |id: &Uuid| *id == self.conversation.id;
        let delivered = match event {
            Event::MessageAdded { message } if ours(&message.conversation_id) => {
                ConversationEvent::MessageAdded(MessageAddedEvent {
                    message: Message(message.clone()),
                })
            }
            Event::MessageEdited { message } if ours(&message.conversation_id) => {
                ConversationEvent::MessageEdited(MessageEditedEvent {
                    message: Message(message.clone()),
                })
            }
            Event::MessageDeleted { message } if ours(&message.conversation_id) => {
                ConversationEvent::MessageDeleted(MessageDeletedEvent {
                    message: Message(message.clone()),
                })
            }
            Event::ReactionChanged {
                conversation_id,
                message_id,
                user_id,
                emoji,
            } if ours(conversation_id) => {
                ConversationEvent::ReactionChanged(ReactionChangedEvent {
                    message_id: ids::encode(NodeKind::Message, *message_id),
                    user: event_user(self, *user_id).await,
                    emoji: emoji.clone(),
                })
            }
            Event::ReadReceipt {
                conversation_id,
                user_id,
                up_to_seq,
            } if ours(conversation_id) => ConversationEvent::ReadReceipt(ReadReceiptEvent {
                user: event_user(self, *user_id).await,
                up_to_seq: *up_to_seq,
            }),
            // Your own typing is no news to you.
            Event::Typing {
                conversation_id,
                user_id,
                typing,
                expires_at,
            } if ours(conversation_id) && *user_id != self.viewer => {
                ConversationEvent::Typing(TypingEvent {
                    user: event_user(self, *user_id).await,
                    typing: *typing,
                    expires_at: *expires_at,
                })
            }
            _ => return Seen::Ignore,
        };
        Seen::Deliver(Box::new(Ok(delivered)))
    }
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
    let not_found = || AppError::not_found("conversation not found");
    let conversation = state.chat.find(key).await?.ok_or_else(not_found)?;
    let live =
        live::stop_on_lag(listen(&state.pubsub, key, viewer.user_id, conversation.group_id).await);
    let membership = state
        .chat
        .readable(viewer.user_id, key)
        .await?
        .ok_or_else(not_found)?;
    let context = Arc::new(EventContext {
        db: state.db.clone(),
        social: state.social.clone(),
        conversation: membership.conversation,
        viewer: viewer.user_id,
    });
    let events = live
        .then(move |event| {
            let context = context.clone();
            // Boxed, so the stream does not carry a database read's future
            // while it waits.
            Box::pin(async move {
                match event {
                    Ok(event) => context.see(&event).await,
                    Err(lagged) => Seen::Deliver(Box::new(Err(lagged))),
                }
            })
        })
        .take_while(|seen| futures_util::future::ready(!matches!(seen, Seen::End)))
        .filter_map(|seen| {
            futures_util::future::ready(match seen {
                Seen::Deliver(event) => Some(*event),
                _ => None,
            })
        });
    Ok(live::while_session_lives(ctx, viewer, events).await?)
}
