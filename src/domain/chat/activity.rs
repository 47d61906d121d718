//! Everything that happens in one conversation, as one participant may see it:
//! the stream behind `conversationEvents`. Live only (a client refetches when
//! it subscribes again); it ends where the viewer's access ends (removed from
//! the group, the group deleted, a block between the pair), and after falling
//! behind, with the lag.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{conversation, user};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use super::{
    Chat, Message,
    feed::{ends_access, listen},
};
use crate::{
    domain::{
        events::{Event, Events, Lagged},
        social::Social,
        users,
    },
    error::{AppError, AppResult},
    infra::db::Db,
};

/// One thing that happened in the conversation. Users are as the viewer may
/// see them: `None` for one who blocked the viewer (or is gone).
pub enum Activity {
    MessageAdded(Message),
    MessageEdited(Message),
    /// The message is a tombstone now.
    MessageDeleted(Message),
    /// `user` reacted with `emoji`, or took their reaction back (`None`).
    ReactionChanged {
        message_id: Uuid,
        user: Option<user::Model>,
        emoji: Option<String>,
    },
    ReadReceipt {
        user: Option<user::Model>,
        up_to_seq: i64,
    },
    /// Someone else started or stopped typing; forget it after `expires_at`.
    Typing {
        user: Option<user::Model>,
        typing: bool,
        expires_at: DateTime<Utc>,
    },
}

/// What a subscriber makes of an event: something to deliver, the end of
/// their access, or nothing.
enum Seen {
    Deliver(Box<Result<Activity, Lagged>>),
    End,
    Ignore,
}

/// What turning events into activity needs, owned by the stream.
struct Viewing {
    db: Db,
    social: Social,
    conversation: conversation::Model,
    viewer: Uuid,
}

/// The viewer's live view of `conversation_id`. Listens before it checks
/// access, so nothing between the check and the first event is missed.
pub async fn follow(
    chat: &Chat,
    social: Social,
    db: Db,
    pubsub: &Events,
    viewer: Uuid,
    conversation_id: Uuid,
) -> AppResult<impl Stream<Item = Result<Activity, Lagged>> + use<>> {
    let not_found = || AppError::not_found("conversation not found");
    let conversation = chat.find(conversation_id).await?.ok_or_else(not_found)?;
    let live = listen(pubsub, conversation_id, viewer, conversation.group_id).await;
    let membership = chat
        .readable(viewer, conversation_id)
        .await?
        .ok_or_else(not_found)?;
    let viewing = Arc::new(Viewing {
        db,
        social,
        conversation: membership.conversation,
        viewer,
    });
    Ok(live
        .then(move |event| {
            let viewing = viewing.clone();
            // Boxed, so the stream does not carry a database read's future
            // while it waits.
            Box::pin(async move {
                match event {
                    Ok(event) => viewing.see(&event).await,
                    Err(lagged) => Seen::Deliver(Box::new(Err(lagged))),
                }
            })
        })
        .take_while(|seen| futures_util::future::ready(!matches!(seen, Seen::End)))
        .filter_map(|seen| {
            futures_util::future::ready(match seen {
                Seen::Deliver(activity) => Some(*activity),
                _ => None,
            })
        }))
}

impl Viewing {
    async fn see(&self, event: &Event) -> Seen {
        if ends_access(event, &self.conversation, self.viewer) {
            return Seen::End;
        }
        let ours = |id: &Uuid| *id == self.conversation.id;
        let activity = match event {
            Event::MessageAdded { message } if ours(&message.conversation_id) => {
                Activity::MessageAdded(message.clone())
            }
            Event::MessageEdited { message } if ours(&message.conversation_id) => {
                Activity::MessageEdited(message.clone())
            }
            Event::MessageDeleted { message } if ours(&message.conversation_id) => {
                Activity::MessageDeleted(message.clone())
            }
            Event::ReactionChanged {
                conversation_id,
                message_id,
                user_id,
                emoji,
            } if ours(conversation_id) => Activity::ReactionChanged {
                message_id: *message_id,
                user: self.user(*user_id).await,
                emoji: emoji.clone(),
            },
            Event::ReadReceipt {
                conversation_id,
                user_id,
                up_to_seq,
            } if ours(conversation_id) => Activity::ReadReceipt {
                user: self.user(*user_id).await,
                up_to_seq: *up_to_seq,
            },
            // Your own typing is no news to you.
            Event::Typing {
                conversation_id,
                user_id,
                typing,
                expires_at,
            } if ours(conversation_id) && *user_id != self.viewer => Activity::Typing {
                user: self.user(*user_id).await,
                typing: *typing,
                expires_at: *expires_at,
            },
            _ => return Seen::Ignore,
        };
        Seen::Deliver(Box::new(Ok(activity)))
    }

    /// The user an event names, as the viewer may see them (a user who
    /// blocked the viewer shows as nobody).
    async fn user(&self, id: Uuid) -> Option<user::Model> {
        if id != self.viewer && self.social.hides_from(id, self.viewer).await.ok()? {
            return None;
        }
        users::find(&self.db, id).await.ok().flatten()
    }
}
